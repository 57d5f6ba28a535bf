// The agreement suite every LinearBackend must pass: products against a naive double-precision reference
// over odd shapes, fused parts, bias, transposed storage, 1 and many rows, F32/F16/BF16 (and mixtures),
// concurrent run() calls, and the contract's error cases.
//
// To check a backend, include this header in exactly one .cpp of its test binary and instantiate:
//
//   INSTANTIATE_TEST_SUITE_P(MyBackend, LinearBackendAgreement,
//       ::testing::Values(cml::model::testing::BackendFactory{
//           "my_backend", [] { return std::make_unique<MyBackend>(...); }, /*rel_tol=*/1e-5}),
//       cml::model::testing::factory_name);
//
// The tolerance is relative to Σ_k |x_k · w_k| of each output (the natural scale of its rounding error).
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "model/linear_backend.h"
#include "tensor/half.h"

namespace cml::model::testing {

struct BackendFactory {
  std::string name;
  std::function<std::unique_ptr<LinearBackend>()> make;
  double rel_tol = 1e-5;
  // False for backends whose results differ in the last bits between calls (GroupCover draws a fresh
  // random mask per call); ConcurrentRunsAgree then compares within rel_tol instead of bit for bit.
  bool deterministic = true;
};

inline std::string factory_name(const ::testing::TestParamInfo<BackendFactory>& info) {
  return info.param.name;
}

// One part of a test op, with its data (rounded to its dtype) and the same values as f32 in [out, in].
struct TestPart {
  int64_t out = 0, in = 0;
  tensor::DType dtype = tensor::DType::kF32;
  bool transposed = false;
  bool bias = false;
  std::vector<uint8_t> bytes;  // stored weight (layout per `transposed`)
  std::vector<float> w;        // [out, in], the exact values the stored weight represents
  std::vector<float> b;        // [out]
};

class AgreementRng {
 public:
  explicit AgreementRng(uint64_t s) : s_(s) {}
  float next() {  // uniform [-1, 1)
    s_ = s_ * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<float>(s_ >> 40) * (2.0f / 16777216.0f) - 1.0f;
  }

 private:
  uint64_t s_;
};

inline TestPart make_test_part(int64_t out, int64_t in, tensor::DType dt, bool transposed, bool bias,
                               AgreementRng& rng) {
  TestPart p;
  p.out = out;
  p.in = in;
  p.dtype = dt;
  p.transposed = transposed;
  p.bias = bias;
  const size_t esz = tensor::dtype_size(dt);
  p.w.resize(static_cast<size_t>(out * in));
  p.bytes.resize(p.w.size() * esz);
  for (int64_t o = 0; o < out; ++o) {
    for (int64_t k = 0; k < in; ++k) {
      const float v = rng.next();
      const size_t idx = static_cast<size_t>(transposed ? k * out + o : o * in + k);
      float stored = v;
      if (dt == tensor::DType::kF32) {
        std::memcpy(p.bytes.data() + idx * 4, &v, 4);
      } else {
        const uint16_t h = dt == tensor::DType::kBF16 ? tensor::f32_to_bf16(v) : tensor::f32_to_f16(v);
        std::memcpy(p.bytes.data() + idx * 2, &h, 2);
        stored = dt == tensor::DType::kBF16 ? tensor::bf16_to_f32(h) : tensor::f16_to_f32(h);
      }
      p.w[static_cast<size_t>(o * in + k)] = stored;
    }
  }
  if (bias) {
    p.b.resize(static_cast<size_t>(out));
    for (auto& v : p.b) v = rng.next();
  }
  return p;
}

class LinearBackendAgreement : public ::testing::TestWithParam<BackendFactory> {
 protected:
  // Registers `parts` as one op, runs `rows` rows, compares with the double reference.
  void check(std::vector<TestPart>& parts, int64_t rows, uint64_t seed) {
    auto backend = GetParam().make();
    ASSERT_TRUE(backend);
    std::vector<LinearPart> lp;
    int64_t total = 0;
    for (size_t i = 0; i < parts.size(); ++i) {
      LinearPart q;
      q.name = "part" + std::to_string(i);
      q.out_features = parts[i].out;
      q.in_features = parts[i].in;
      q.dtype = parts[i].dtype;
      q.weight = parts[i].bytes.data();
      q.transposed = parts[i].transposed;
      q.bias = parts[i].bias ? parts[i].b.data() : nullptr;
      lp.push_back(q);
      total += parts[i].out;
    }
    auto id = backend->add(lp);
    ASSERT_TRUE(id.is_ok()) << id.status().to_string();
    ASSERT_TRUE(backend->finalize().is_ok());
    EXPECT_EQ(backend->out_features(*id), total);
    const int64_t in = parts[0].in;
    AgreementRng rng(seed);
    std::vector<float> x(static_cast<size_t>(rows * in));
    for (auto& v : x) v = rng.next();
    std::vector<float> y(static_cast<size_t>(rows * total), std::nanf(""));
    const Status st = backend->run(*id, x.data(), rows, y.data());
    ASSERT_TRUE(st.is_ok()) << st.to_string();
    int64_t col = 0;
    for (const TestPart& p : parts) {
      for (int64_t r = 0; r < rows; ++r) {
        for (int64_t o = 0; o < p.out; ++o) {
          double ref = p.bias ? p.b[static_cast<size_t>(o)] : 0.0, scale = p.bias ? std::fabs(ref) : 0.0;
          for (int64_t k = 0; k < in; ++k) {
            const double t =
                static_cast<double>(x[static_cast<size_t>(r * in + k)]) * p.w[static_cast<size_t>(o * in + k)];
            ref += t;
            scale += std::fabs(t);
          }
          const double got = y[static_cast<size_t>(r * total + col + o)];
          ASSERT_NEAR(got, ref, GetParam().rel_tol * scale + 1e-30)
              << "row " << r << " output " << col + o << " of " << total;
        }
      }
      col += p.out;
    }
  }
};

TEST_P(LinearBackendAgreement, SinglePartShapesDtypesLayouts) {
  const int64_t shapes[][2] = {{1, 1}, {7, 13}, {33, 17}, {64, 64}, {100, 257}, {300, 129}, {19, 1000}};
  const int64_t row_counts[] = {1, 2, 5, 8, 9, 31};
  uint64_t seed = 1;
  for (auto dt : {tensor::DType::kF32, tensor::DType::kF16, tensor::DType::kBF16}) {
    for (bool transposed : {false, true}) {
      for (const auto& s : shapes) {
        for (int64_t rows : row_counts) {
          SCOPED_TRACE(std::string(tensor::dtype_name(dt)) + (transposed ? " transposed " : " ") +
                       std::to_string(s[0]) + "x" + std::to_string(s[1]) + " rows " + std::to_string(rows));
          AgreementRng rng(++seed);
          std::vector<TestPart> parts{make_test_part(s[0], s[1], dt, transposed, rows % 2 == 1, rng)};
          check(parts, rows, seed);
          if (HasFatalFailure()) return;
        }
      }
    }
  }
}

TEST_P(LinearBackendAgreement, FusedPartsWithBiasAndMixedLayouts) {
  for (int64_t rows : {1, 3, 8, 12, 64}) {
    SCOPED_TRACE("rows " + std::to_string(rows));
    AgreementRng rng(static_cast<uint64_t>(rows) * 7919);
    std::vector<TestPart> parts;
    parts.push_back(make_test_part(48, 40, tensor::DType::kF32, false, true, rng));   // Q
    parts.push_back(make_test_part(16, 40, tensor::DType::kF32, false, false, rng));  // K (GQA width)
    parts.push_back(make_test_part(16, 40, tensor::DType::kBF16, true, true, rng));   // V
    parts.push_back(make_test_part(5, 40, tensor::DType::kF16, false, true, rng));    // odd tail
    check(parts, rows, 99 + static_cast<uint64_t>(rows));
    if (HasFatalFailure()) return;
  }
}

TEST_P(LinearBackendAgreement, SeveralOpsKeepTheirIds) {
  auto backend = GetParam().make();
  AgreementRng rng(5);
  TestPart a = make_test_part(8, 16, tensor::DType::kF32, false, false, rng);
  TestPart b = make_test_part(24, 8, tensor::DType::kF32, true, false, rng);
  LinearPart pa{"a", 8, 16, tensor::DType::kF32, a.bytes.data(), false, nullptr};
  LinearPart pb{"b", 24, 8, tensor::DType::kF32, b.bytes.data(), true, nullptr};
  auto ia = backend->add(std::span<const LinearPart>(&pa, 1));
  auto ib = backend->add(std::span<const LinearPart>(&pb, 1));
  ASSERT_TRUE(ia.is_ok() && ib.is_ok());
  ASSERT_NE(*ia, *ib);
  ASSERT_TRUE(backend->finalize().is_ok());
  EXPECT_EQ(backend->out_features(*ia), 8);
  EXPECT_EQ(backend->out_features(*ib), 24);
  std::vector<float> x(8, 0.5f), y(24);
  ASSERT_TRUE(backend->run(*ib, x.data(), 1, y.data()).is_ok());
  for (int64_t o = 0; o < 24; ++o) {
    double ref = 0;
    for (int64_t k = 0; k < 8; ++k) ref += 0.5 * b.w[static_cast<size_t>(o * 8 + k)];
    EXPECT_NEAR(y[static_cast<size_t>(o)], ref, 1e-5);
  }
}

TEST_P(LinearBackendAgreement, ConcurrentRunsAgree) {
  auto backend = GetParam().make();
  AgreementRng rng(11);
  TestPart p = make_test_part(200, 96, tensor::DType::kBF16, false, true, rng);
  LinearPart lp{"w", 200, 96, tensor::DType::kBF16, p.bytes.data(), false, p.b.data()};
  auto id = backend->add(std::span<const LinearPart>(&lp, 1));
  ASSERT_TRUE(id.is_ok());
  ASSERT_TRUE(backend->finalize().is_ok());
  std::vector<float> x(96 * 4);
  for (auto& v : x) v = rng.next();
  std::vector<float> want(200 * 4);
  ASSERT_TRUE(backend->run(*id, x.data(), 4, want.data()).is_ok());
  std::vector<std::vector<float>> got(4, std::vector<float>(200 * 4));
  std::vector<int> ok(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i)
        ok[static_cast<size_t>(t)] += backend->run(*id, x.data(), 4, got[static_cast<size_t>(t)].data()).is_ok();
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < 4; ++t) {
    EXPECT_EQ(ok[static_cast<size_t>(t)], 20);
    if (GetParam().deterministic) {
      EXPECT_EQ(got[static_cast<size_t>(t)], want);
    } else {
      for (size_t i = 0; i < want.size(); ++i)
        EXPECT_NEAR(got[static_cast<size_t>(t)][i], want[i], 1e-3 * (1.0 + std::fabs(want[i])));
    }
  }
}

TEST_P(LinearBackendAgreement, RejectsInvalidOps) {
  auto backend = GetParam().make();
  std::vector<float> w(64, 1.0f);
  LinearPart a{"a", 4, 16, tensor::DType::kF32, w.data(), false, nullptr};
  LinearPart b{"b", 4, 8, tensor::DType::kF32, w.data(), false, nullptr};
  std::vector<LinearPart> mismatched{a, b};
  EXPECT_FALSE(backend->add(mismatched).is_ok());
  EXPECT_FALSE(backend->add(std::span<const LinearPart>()).is_ok());
  LinearPart f64{"f64", 2, 2, tensor::DType::kF64, w.data(), false, nullptr};
  EXPECT_FALSE(backend->add(std::span<const LinearPart>(&f64, 1)).is_ok());
  LinearPart null_w{"null", 2, 2, tensor::DType::kF32, nullptr, false, nullptr};
  EXPECT_FALSE(backend->add(std::span<const LinearPart>(&null_w, 1)).is_ok());
  ASSERT_TRUE(backend->finalize().is_ok());
  std::vector<float> x(16), y(16);
  EXPECT_FALSE(backend->run(12345, x.data(), 1, y.data()).is_ok());
}

}  // namespace cml::model::testing
