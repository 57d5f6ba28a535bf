#include "groupcover/obfuscate.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <set>

#include "groupcover/linalg.h"
#include "tensor/half.h"
#include "test_util.h"

namespace cml::groupcover {
namespace {

using testing::cosine;
using testing::random_matrix;

TEST(Linalg, InverseAndCondition) {
  std::vector<double> a = {4, 1, 0, 3}, inv;
  ASSERT_TRUE(invert_small(a, 2, inv));
  EXPECT_NEAR(inv[0], 0.25, 1e-15);
  EXPECT_NEAR(inv[1], -1.0 / 12, 1e-15);
  EXPECT_NEAR(inv[3], 1.0 / 3, 1e-15);
  std::vector<double> diag = {10, 0, 0, 0, 2, 0, 0, 0, 1};
  EXPECT_NEAR(condition_number(diag, 3), 10.0, 1e-9);
  std::vector<double> sing = {1, 2, 2, 4};
  EXPECT_FALSE(invert_small(sing, 2, inv));
  EXPECT_FALSE(std::isfinite(condition_number(sing, 2)));
  EXPECT_EQ(tensor::f16_to_f32(0x3C00), 1.0f);
  EXPECT_EQ(tensor::f16_to_f32(0xC000), -2.0f);
  EXPECT_EQ(tensor::bf16_to_f32(0x3F80), 1.0f);
}

TEST(Obfuscate, GroupsPartitionRowsIntoDissimilarGroups) {
  for (int64_t out : {2, 3, 7, 16, 37, 100}) {
    auto w = random_matrix(out, 24, 100 + out);
    ObfuscationConfig c;
    c.chunk_rows = 32;
    std::vector<uint32_t> off, rows;
    ASSERT_TRUE(group_rows(w, out, 24, c, off, rows).is_ok());
    std::set<uint32_t> seen(rows.begin(), rows.end());
    EXPECT_EQ(seen.size(), size_t(out));
    EXPECT_EQ(off.back(), uint32_t(out));
    for (size_t k = 0; k + 1 < off.size(); ++k) {
      EXPECT_GE(off[k + 1] - off[k], 2u) << "singleton group would expose a scaled row";
      EXPECT_LE(off[k + 1] - off[k], 2u * c.group_size);
    }
  }
  std::vector<uint32_t> off, rows;
  EXPECT_FALSE(group_rows(random_matrix(1, 8, 1), 1, 8, {}, off, rows).is_ok());
}

TEST(Obfuscate, PairsMostDissimilarRows) {
  // Rows come in exact ± pairs: the pairing must put each row with its negation (cos = −1).
  const int64_t out = 16, in = 32;
  auto base = random_matrix(out / 2, in, 7);
  std::vector<float> w;
  for (int64_t i = 0; i < out / 2; ++i) {
    w.insert(w.end(), base.begin() + i * in, base.begin() + (i + 1) * in);
    for (int64_t j = 0; j < in; ++j) w.push_back(-base[size_t(i * in + j)]);
  }
  ObfuscationConfig c;
  c.group_size = 2;
  std::vector<uint32_t> off, rows;
  ASSERT_TRUE(group_rows(w, out, in, c, off, rows).is_ok());
  ASSERT_EQ(off.size(), size_t(out / 2 + 1));
  for (size_t k = 0; k + 1 < off.size(); ++k) EXPECT_EQ(rows[off[k]] / 2, rows[off[k] + 1] / 2);
}

TEST(Obfuscate, RestoreIsExactUpToFloatAndBoundsHold) {
  const int64_t out = 96, in = 64;
  auto w = random_matrix(out, in, 11);
  auto bias = random_matrix(1, out, 12);
  ObfuscationConfig c;
  auto om = obfuscate_matrix({w.data(), tensor::DType::kF32, out, in, false}, bias.data(), c);
  ASSERT_TRUE(om.is_ok()) << om.status().to_string();
  ASSERT_TRUE(om->secrets.validate().is_ok());
  EXPECT_LE(om->stats.max_condition, c.max_condition);
  EXPECT_LE(om->stats.max_self_cos, c.max_dominance);
  EXPECT_EQ(om->stats.over_bound_groups, 0);
  // Every kept mix has cond ≤ bound (checked again from the stored inverse: cond(A⁻¹) = cond(A)).
  size_t pos = 0;
  for (size_t k = 0; k < om->secrets.n_groups(); ++k) {
    const int sz = int(om->secrets.group_offsets[k + 1] - om->secrets.group_offsets[k]);
    std::span<const double> inv(om->secrets.inv_mix.data() + pos, size_t(sz * sz));
    EXPECT_LE(condition_number(inv, sz), c.max_condition * (1 + 1e-9));
    pos += size_t(sz * sz);
  }
  auto x = random_matrix(5, in, 13);
  std::vector<float> xt(x.size()), z(size_t(5 * out)), y(size_t(5 * out));
  permute_rows(om->secrets, x.data(), 5, xt.data());
  gemm_abt(xt.data(), om->w2.data(), z.data(), 5, out, in);
  restore_rows(om->secrets, z.data(), nullptr, nullptr, 5, bias.data(), y.data(), out);
  auto ref = testing::reference(w, bias.data(), x.data(), 5, out, in);
  EXPECT_LT(testing::max_row_rel_error(y.data(), ref, 5, out), 2e-5);
}

TEST(Obfuscate, PermuteRowsGathersByThePermutation) {
  const int64_t out = 8, in = 101;  // a width that leaves every vector path a tail
  auto w = random_matrix(out, in, 31);
  auto om = obfuscate_matrix({w.data(), tensor::DType::kF32, out, in, false}, nullptr, ObfuscationConfig{});
  ASSERT_TRUE(om.is_ok());
  auto x = random_matrix(3, in, 32);
  std::vector<float> xt(x.size());
  permute_rows(om->secrets, x.data(), 3, xt.data());
  for (int64_t t = 0; t < 3; ++t)
    for (int64_t j = 0; j < in; ++j)
      ASSERT_EQ(xt[size_t(t * in + j)], x[size_t(t * in + om->secrets.perm[size_t(j)])]) << t << "," << j;
}

TEST(Obfuscate, NoRowOfWAndNoScaledRowInWorkerMatrix) {
  const int64_t out = 128, in = 96;
  auto w = random_matrix(out, in, 21);
  ObfuscationConfig c;
  auto om = obfuscate_matrix({w.data(), tensor::DType::kF32, out, in, false}, nullptr, c);
  ASSERT_TRUE(om.is_ok());
  // Undo the permutation (the strongest view: attacker knows π) and compare every W' row with every W row.
  std::vector<float> wprime(w.size());
  for (int64_t i = 0; i < out; ++i)
    for (int64_t j = 0; j < in; ++j) wprime[size_t(i * in + om->secrets.perm[size_t(j)])] = om->w2[size_t(i * in + j)];
  double worst_known = 0, worst_unknown = 0;
  for (int64_t i = 0; i < out; ++i)
    for (int64_t k = 0; k < out; ++k) {
      worst_known = std::max(worst_known, std::fabs(cosine(&wprime[size_t(i * in)], &w[size_t(k * in)], in)));
      worst_unknown = std::max(worst_unknown, std::fabs(cosine(&om->w2[size_t(i * in)], &w[size_t(k * in)], in)));
    }
  EXPECT_LE(worst_known, c.max_dominance + 1e-6);
  EXPECT_LT(worst_unknown, 0.6);
}

TEST(Obfuscate, FreshRandomnessEveryRun) {
  const int64_t out = 32, in = 40;
  auto w = random_matrix(out, in, 31);
  MatrixView v{w.data(), tensor::DType::kF32, out, in, false};
  auto a = obfuscate_matrix(v, nullptr, {});
  auto b = obfuscate_matrix(v, nullptr, {});
  ASSERT_TRUE(a.is_ok() && b.is_ok());
  EXPECT_NE(a->secrets.perm, b->secrets.perm);
  EXPECT_NE(a->w2, b->w2);
  EXPECT_NE(a->secrets.inv_mix, b->secrets.inv_mix);
}

TEST(Obfuscate, TransposedAndHalfPrecisionInputs) {
  const int64_t out = 12, in = 8;
  auto w = random_matrix(out, in, 41);
  std::vector<float> wt(w.size());
  for (int64_t i = 0; i < out; ++i)
    for (int64_t j = 0; j < in; ++j) wt[size_t(j * out + i)] = w[size_t(i * in + j)];
  auto rows = to_f32_rows({wt.data(), tensor::DType::kF32, out, in, true});
  ASSERT_TRUE(rows.is_ok());
  EXPECT_EQ(*rows, w);
  std::vector<uint16_t> bf(w.size());
  for (size_t i = 0; i < w.size(); ++i) {
    uint32_t bits;
    std::memcpy(&bits, &w[i], 4);
    bf[i] = uint16_t(bits >> 16);
  }
  auto b = to_f32_rows({bf.data(), tensor::DType::kBF16, out, in, false});
  ASSERT_TRUE(b.is_ok());
  for (size_t i = 0; i < w.size(); ++i) EXPECT_NEAR((*b)[i], w[i], std::fabs(w[i]) / 64 + 1e-6);
  EXPECT_FALSE(to_f32_rows({bf.data(), tensor::DType::kI32, out, in, false}).is_ok());
  std::vector<float> bad = w;
  bad[3] = NAN;
  EXPECT_FALSE(obfuscate_matrix({bad.data(), tensor::DType::kF32, out, in, false}, nullptr, {}).is_ok());
}

TEST(Obfuscate, ConfigValidation) {
  ObfuscationConfig c;
  c.group_size = 3;
  EXPECT_FALSE(validate(c).is_ok());
  c = {};
  c.max_condition = 1.0;
  EXPECT_FALSE(validate(c).is_ok());
  c = {};
  c.max_dominance = 1.0;
  EXPECT_FALSE(validate(c).is_ok());
  EXPECT_TRUE(validate(ObfuscationConfig{}).is_ok());
}

}  // namespace
}  // namespace cml::groupcover
