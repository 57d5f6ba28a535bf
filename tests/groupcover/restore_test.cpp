#include "groupcover/restore.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>

namespace cml::groupcover {
namespace {

// Random secrets of `out` rows in groups of `g` (a random partition; the leftover rows join the last
// group, as obfuscate_matrix folds a leftover into a neighbour), with random inverse mixes.
MatrixSecrets random_secrets(int64_t out, int g, std::mt19937_64& rng) {
  MatrixSecrets s;
  s.out = out;
  s.in = 1;
  s.perm = {0};
  std::vector<uint32_t> rows(static_cast<size_t>(out));
  std::iota(rows.begin(), rows.end(), 0u);
  std::shuffle(rows.begin(), rows.end(), rng);
  s.group_rows = rows;
  const int64_t n_groups = std::max<int64_t>(1, out / g);
  for (int64_t k = 0; k < n_groups; ++k) s.group_offsets.push_back(uint32_t(k * g));
  s.group_offsets.push_back(uint32_t(out));
  std::normal_distribution<double> nd;
  for (int64_t k = 0; k < n_groups; ++k) {
    const size_t sz = s.group_offsets[size_t(k) + 1] - s.group_offsets[size_t(k)];
    for (size_t e = 0; e < sz * sz; ++e) s.inv_mix.push_back(nd(rng));
  }
  return s;
}

// The straightforward restore: per row, per group, y[g_i] = Σ_j inv(i, j)·(double(z[g_j]) − c·double(u[g_j])) + b.
std::vector<float> reference(const MatrixSecrets& s, const float* z, const float* u, const float* scale, int64_t rows,
                             const float* bias, int64_t stride, float fill) {
  std::vector<float> y(size_t(rows * stride), fill);
  for (int64_t t = 0; t < rows; ++t) {
    const double c = scale ? double(scale[t]) : 0.0;
    const double* inv = s.inv_mix.data();
    for (size_t k = 0; k < s.n_groups(); ++k) {
      const uint32_t* g = s.group_rows.data() + s.group_offsets[k];
      const int n = int(s.group_offsets[k + 1] - s.group_offsets[k]);
      for (int i = 0; i < n; ++i) {
        double v = 0.0;
        for (int j = 0; j < n; ++j) {
          const double d =
              u ? double(z[t * s.out + g[j]]) - c * double(u[t * s.out + g[j]]) : double(z[t * s.out + g[j]]);
          v += inv[i * n + j] * d;
        }
        y[size_t(t * stride + g[i])] = float(v + (bias ? double(bias[g[i]]) : 0.0));
      }
      inv += n * n;
    }
  }
  return y;
}

TEST(Restore, PlanIsBitIdenticalToTheStraightforwardRestore) {
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<float> uf(-3.0f, 3.0f);
  for (int g : {1, 2, 3, 4, 5, 8}) {
    for (int64_t out : {int64_t(203), int64_t(1031)}) {
      const MatrixSecrets s = random_secrets(out, g, rng);
      ASSERT_TRUE(s.validate().is_ok());
      for (int64_t rows : {1, 7}) {
        std::vector<float> z(static_cast<size_t>(rows * out)), u(z.size()), bias(static_cast<size_t>(out)),
            scale(static_cast<size_t>(rows));
        for (float& f : z) f = uf(rng) * 64.0f;
        for (float& f : u) f = uf(rng);
        for (float& f : bias) f = uf(rng);
        for (int64_t t = 0; t < rows; ++t) scale[size_t(t)] = std::ldexp(1.0f, int(t % 9) - 2);
        for (bool masked : {false, true}) {
          for (bool with_bias : {false, true}) {
            SCOPED_TRACE("g=" + std::to_string(g) + " out=" + std::to_string(out) + " rows=" + std::to_string(rows) +
                         " masked=" + std::to_string(masked) + " bias=" + std::to_string(with_bias));
            const float* up = masked ? u.data() : nullptr;
            const float* sp = masked ? scale.data() : nullptr;
            const float* bp = with_bias ? bias.data() : nullptr;
            const int64_t stride = out + 3;  // the padding between rows must stay untouched
            const float fill = -12345.0f;
            const auto ref = reference(s, z.data(), up, sp, rows, bp, stride, fill);
            const RestorePlan plan(s, bp);
            std::vector<double> work;
            std::vector<float> y(ref.size(), fill), yp(ref.size(), fill), yl(ref.size(), fill);
            plan.run(z.data(), up, sp, rows, y.data(), stride, work);
            plan.run_portable(z.data(), up, sp, rows, yp.data(), stride, work);
            restore_rows(s, z.data(), up, sp, rows, bp, yl.data(), stride);
            EXPECT_EQ(0, std::memcmp(y.data(), ref.data(), ref.size() * sizeof(float)));
            EXPECT_EQ(0, std::memcmp(yp.data(), ref.data(), ref.size() * sizeof(float)));
            EXPECT_EQ(0, std::memcmp(yl.data(), ref.data(), ref.size() * sizeof(float)));
          }
        }
      }
    }
  }
}

TEST(Restore, PlanKeepsSignedZerosAndSpecialValuesLikeTheReference) {
  // A zero mix row gives 0.0 + (−0)… sums; the reference starts every sum at +0.0 and adds the bias (or
  // +0.0) last, and the plan must do the same.
  std::mt19937_64 rng(11);
  MatrixSecrets s = random_secrets(64, 4, rng);
  for (size_t e = 0; e < s.inv_mix.size(); e += 5) s.inv_mix[e] = 0.0;
  std::vector<float> z(64), bias(64);
  for (size_t i = 0; i < z.size(); ++i) {
    z[i] = (i % 3 == 0) ? -0.0f : float(i) - 30.0f;
    bias[i] = (i % 4 == 0) ? -0.0f : 0.5f;
  }
  for (const float* bp : {static_cast<const float*>(nullptr), static_cast<const float*>(bias.data())}) {
    const auto ref = reference(s, z.data(), nullptr, nullptr, 1, bp, 64, 0.0f);
    const RestorePlan plan(s, bp);
    std::vector<double> work;
    std::vector<float> y(64), yp(64);
    plan.run(z.data(), nullptr, nullptr, 1, y.data(), 64, work);
    plan.run_portable(z.data(), nullptr, nullptr, 1, yp.data(), 64, work);
    EXPECT_EQ(0, std::memcmp(y.data(), ref.data(), ref.size() * sizeof(float)));
    EXPECT_EQ(0, std::memcmp(yp.data(), ref.data(), ref.size() * sizeof(float)));
  }
}

TEST(Restore, MaskingHelpersEqualThePlainLoops) {
  std::mt19937_64 rng(3);
  std::uniform_real_distribution<float> uf(-100.0f, 100.0f);
  for (int64_t n : {0, 1, 15, 16, 17, 40, 768, 1001}) {
    for (int special = 0; special < 3; ++special) {
      std::vector<float> x(static_cast<size_t>(n)), r(x.size());
      for (float& f : x) f = uf(rng);
      for (float& f : r) f = uf(rng) / 128.0f;
      if (n > 0 && special == 1) x[size_t(n / 2)] = std::nanf("");  // skipped by the max, as before
      if (n > 0 && special == 2) x[size_t(n - 1)] = -INFINITY;
      float want = 0.0f;
      for (float f : x) want = std::max(want, std::fabs(f));
      const float got = max_abs(x.data(), n);
      EXPECT_EQ(std::memcmp(&got, &want, sizeof(float)), 0) << n << " " << special;
      std::vector<float> z1 = x, z2 = x;
      for (size_t i = 0; i < z1.size(); ++i) z1[i] += 4.0f * r[i];
      add_scaled(z2.data(), r.data(), 4.0f, n);
      if (n > 0) EXPECT_EQ(std::memcmp(z1.data(), z2.data(), z1.size() * sizeof(float)), 0) << n;
      // The input permutation.
      MatrixSecrets s;
      s.in = n;
      s.perm.resize(size_t(n));
      std::iota(s.perm.begin(), s.perm.end(), 0u);
      std::shuffle(s.perm.begin(), s.perm.end(), rng);
      std::vector<float> xt(x.size() * 2), twice(x);
      twice.insert(twice.end(), x.begin(), x.end());
      permute_rows(s, twice.data(), 2, xt.data());
      for (int64_t t = 0; t < 2; ++t)
        for (int64_t j = 0; j < n; ++j)
          EXPECT_EQ(std::memcmp(&xt[size_t(t * n + j)], &x[s.perm[size_t(j)]], sizeof(float)), 0);
    }
  }
}

}  // namespace
}  // namespace cml::groupcover
