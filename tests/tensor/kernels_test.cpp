// Kernels against naive double-precision references.
#include "tensor/kernels.h"

#include <gtest/gtest.h>

#include <bit>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "tensor/half.h"
#include "tensor/linear.h"
#include "tensor/tensor.h"
#include "tensor/thread_pool.h"

namespace cml::tensor {
namespace {

std::vector<float> randv(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 g(seed);
  std::uniform_real_distribution<float> d(-scale, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(g);
  return v;
}

TEST(Half, F16RoundTripsEveryValue) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = f16_to_f32(static_cast<uint16_t>(h));
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(f16_to_f32(f32_to_f16(f))));
      continue;
    }
    ASSERT_EQ(f32_to_f16(f), h) << std::hex << h;
  }
}

TEST(Half, F16KnownValuesAndRounding) {
  EXPECT_EQ(f32_to_f16(1.0f), 0x3c00);
  EXPECT_EQ(f32_to_f16(-2.0f), 0xc000);
  EXPECT_EQ(f32_to_f16(65504.0f), 0x7bff);
  EXPECT_EQ(f32_to_f16(1e6f), 0x7c00);                    // overflow to inf
  EXPECT_EQ(f32_to_f16(5.960464477539063e-08f), 0x0001);  // smallest subnormal
  EXPECT_EQ(f32_to_f16(2.0e-8f), 0x0000);
  EXPECT_EQ(f32_to_f16(1.0f + 1.0f / 2048), 0x3c00);  // tie rounds to even
  EXPECT_EQ(f32_to_f16(1.0f + 3.0f / 2048), 0x3c02);
  EXPECT_FLOAT_EQ(f16_to_f32(0x3555), 0.333251953125f);
}

TEST(Half, Bf16Rounding) {
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(bf16_to_f32(0x3f80), 1.0f);
  uint32_t u = 0x3f808000;  // exactly halfway between 0x3f80 and 0x3f81: to even
  float f;
  std::memcpy(&f, &u, 4);
  EXPECT_EQ(f32_to_bf16(f), 0x3f80);
  u = 0x3f818000;
  std::memcpy(&f, &u, 4);
  EXPECT_EQ(f32_to_bf16(f), 0x3f82);
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(std::nanf("")))));
}

TEST(Half, BulkConversionMatchesScalar) {
  // Every 16-bit pattern, at lengths that leave each vector path a tail.
  std::vector<uint16_t> h(65536);
  for (size_t i = 0; i < h.size(); ++i) h[i] = static_cast<uint16_t>(i);
  for (int64_t n : {int64_t{65536}, int64_t{65533}, int64_t{7}}) {
    std::vector<float> a(h.size(), -1.0f), b(h.size(), -1.0f);
    convert_to_f32(DType::kBF16, h.data(), a.data(), n);
    convert_to_f32(DType::kF16, h.data(), b.data(), n);
    for (int64_t i = 0; i < n; ++i) {
      const float sa = bf16_to_f32(h[size_t(i)]);
      ASSERT_EQ(std::memcmp(&a[size_t(i)], &sa, 4), 0) << i;
      const float s = f16_to_f32(h[size_t(i)]);
      if (!std::isnan(s))
        ASSERT_EQ(std::memcmp(&b[size_t(i)], &s, 4), 0) << i;
      else
        ASSERT_TRUE(std::isnan(b[size_t(i)])) << i;
    }
    if (n < 65536) {  // nothing written past n
      EXPECT_EQ(a[size_t(n)], -1.0f);
      EXPECT_EQ(b[size_t(n)], -1.0f);
    }
  }
}

TEST(TensorType, OwnedBorrowedReshapeConvert) {
  Tensor t = Tensor::zeros(DType::kF32, {2, 3});
  EXPECT_EQ(t.numel(), 6);
  EXPECT_EQ(t.nbytes(), 24u);
  EXPECT_TRUE(t.owned());
  t.mutable_data<float>()[5] = 2.5f;
  auto r = t.reshape({3, 2});
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->data<float>()[5], 2.5f);  // shares storage
  EXPECT_FALSE(t.reshape({4, 2}).is_ok());
  auto h = t.to(DType::kBF16);
  ASSERT_TRUE(h.is_ok());
  EXPECT_EQ(h->data<uint16_t>()[5], f32_to_bf16(2.5f));
  float buf[4] = {1, 2, 3, 4};
  Tensor v = Tensor::borrow(DType::kF32, {4}, buf);
  EXPECT_FALSE(v.owned());
  EXPECT_FALSE(v.writable());
  EXPECT_EQ(v.clone().data<float>()[3], 4.0f);
  EXPECT_FALSE(checked_numel(std::vector<int64_t>{1LL << 40, 1LL << 40}).is_ok());
  EXPECT_FALSE(Tensor::zeros(DType::kI32, {1}).to(DType::kF32).is_ok());
}

TEST(ThreadPoolTest, CoversEveryTaskOnce) {
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    for (int64_t n : {1, 5, 16, 1000}) {
      std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
      pool.parallel_for(n, 16, [&](int64_t b, int64_t e) {
        EXPECT_TRUE(b % 16 == 0);
        for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)]++;
      });
      for (auto& h : hits) ASSERT_EQ(h.load(), 1);
    }
  }
}

TEST(ThreadPoolTest, JobsWithGapsAndBackToBack) {
  // Every task runs exactly once whether workers are spinning, asleep, or waking up late (gaps of a few
  // milliseconds between some jobs put them to sleep; others follow immediately).
  for (int threads : {2, 3}) {
    ThreadPool pool(threads);
    for (int job = 0; job < 60; ++job) {
      if (job % 10 == 9) std::this_thread::sleep_for(std::chrono::milliseconds(3));
      const int64_t n = 1 + job % 7;
      std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
      pool.run(n, [&](int64_t t) { hits[static_cast<size_t>(t)]++; });
      for (auto& h : hits) ASSERT_EQ(h.load(), 1);
    }
  }  // destroyed with workers asleep or spinning
}

void naive_linear(const std::vector<float>& w, int64_t out, int64_t in, bool transposed, const float* x, int64_t rows,
                  std::vector<double>& y) {
  y.assign(static_cast<size_t>(rows * out), 0.0);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t o = 0; o < out; ++o) {
      double s = 0;
      for (int64_t k = 0; k < in; ++k) {
        s += static_cast<double>(x[r * in + k]) * w[static_cast<size_t>(transposed ? k * out + o : o * in + k)];
      }
      y[static_cast<size_t>(r * out + o)] = s;
    }
  }
}

struct LinearCase {
  DType dtype;
  bool transposed;
};

class LinearTest : public ::testing::TestWithParam<LinearCase> {};

TEST_P(LinearTest, GemvAndBlasMatchNaive) {
  const auto [dt, transposed] = GetParam();
  ThreadPool pool(2);
  for (auto [out, in] : {std::pair<int64_t, int64_t>{1, 1}, {17, 31}, {64, 48}, {130, 257}, {3, 1024}}) {
    std::vector<float> wf = randv(static_cast<size_t>(out * in), 3);
    std::vector<uint8_t> store(wf.size() * dtype_size(dt));
    convert_from_f32(wf.data(), dt, store.data(), static_cast<int64_t>(wf.size()));
    convert_to_f32(dt, store.data(), wf.data(), static_cast<int64_t>(wf.size()));  // the exact stored values
    WeightView w{dt, store.data(), out, in, transposed};
    for (int64_t rows : {1, 2, 3, 4, 5, 8, 9, 20}) {
      std::vector<float> x = randv(static_cast<size_t>(rows * in), 7);
      std::vector<double> ref;
      naive_linear(wf, out, in, transposed, x.data(), rows, ref);
      for (int path = 0; path < 3; ++path) {
        std::vector<float> y(static_cast<size_t>(rows * out), -1.0f);
        if (path == 0) linear_gemv(w, x.data(), in, rows, y.data(), out, &pool);
        if (path == 1) linear_blas(w, x.data(), in, rows, y.data(), out, &pool);
        if (path == 2) linear(w, x.data(), in, rows, y.data(), out, nullptr);
        for (size_t i = 0; i < y.size(); ++i) {
          ASSERT_NEAR(y[i], ref[i], 1e-5 * in) << "path " << path << " " << out << "x" << in << " rows " << rows;
        }
      }
    }
  }
}

TEST_P(LinearTest, GemvRowsDoNotDependOnBatchOrThreads) {
  const auto [dt, transposed] = GetParam();
  const int64_t out = 77, in = 301;
  std::vector<float> wf = randv(static_cast<size_t>(out * in), 5);
  std::vector<uint8_t> store(wf.size() * dtype_size(dt));
  convert_from_f32(wf.data(), dt, store.data(), static_cast<int64_t>(wf.size()));
  WeightView w{dt, store.data(), out, in, transposed};
  std::vector<float> x = randv(static_cast<size_t>(8 * in), 9);
  ThreadPool pool(2);
  // Every group size has its own kernel instance (and tile width); each must give the 1-row numbers.
  for (int64_t rows = 2; rows <= 8; ++rows) {
    std::vector<float> batch(static_cast<size_t>(rows * out));
    linear_gemv(w, x.data(), in, rows, batch.data(), out, &pool);
    for (int64_t r = 0; r < rows; ++r) {
      std::vector<float> one(static_cast<size_t>(out));
      linear_gemv(w, x.data() + r * in, in, 1, one.data(), out, nullptr);
      ASSERT_EQ(0, std::memcmp(one.data(), batch.data() + r * out, static_cast<size_t>(out) * 4))
          << rows << " rows, row " << r;
    }
  }
}

TEST_P(LinearTest, GemvGivesTheSameBitsWhereverXLies) {
  // linear_gemv copies an x that is not 64-byte aligned (start or row stride) into aligned rows for the
  // dot form; the numbers must not depend on where x lies, and x must not be written.
  const auto [dt, transposed] = GetParam();
  const int64_t out = 150, in = 301, rows = 5;
  std::vector<float> wf = randv(static_cast<size_t>(out * in), 23);
  std::vector<uint8_t> store(wf.size() * dtype_size(dt));
  convert_from_f32(wf.data(), dt, store.data(), static_cast<int64_t>(wf.size()));
  WeightView w{dt, store.data(), out, in, transposed};
  const std::vector<float> x = randv(static_cast<size_t>(rows * in), 29);
  constexpr int64_t kLd = 304;  // a multiple of 16: every row 64-byte aligned when the base is
  std::unique_ptr<float, decltype(&std::free)> base(
      static_cast<float*>(std::aligned_alloc(64, static_cast<size_t>((rows * (kLd + 16) + 16) * 4))), &std::free);
  ASSERT_NE(base, nullptr);
  const auto place = [&](int64_t off, int64_t ld) {
    float* p = base.get() + off;
    for (int64_t r = 0; r < rows; ++r) std::memcpy(p + r * ld, x.data() + r * in, static_cast<size_t>(in) * 4);
    return p;
  };
  ThreadPool pool(2);
  std::vector<float> want(static_cast<size_t>(rows * out));
  linear_gemv(w, place(0, kLd), kLd, rows, want.data(), out, nullptr);
  for (int64_t off : {0, 1, 4, 15, 16}) {
    for (int64_t ld : {in, kLd, kLd + 1}) {
      for (ThreadPool* p : {static_cast<ThreadPool*>(nullptr), &pool}) {
        float* xp = place(off, ld);
        std::vector<float> y(want.size(), -1.0f);
        linear_gemv(w, xp, ld, rows, y.data(), out, p);
        ASSERT_EQ(0, std::memcmp(y.data(), want.data(), y.size() * 4)) << "offset " << off << ", ldx " << ld;
        for (int64_t r = 0; r < rows; ++r)
          ASSERT_EQ(0, std::memcmp(xp + r * ld, x.data() + r * in, static_cast<size_t>(in) * 4)) << "x written";
      }
    }
  }
}

TEST_P(LinearTest, BlasDoesNotDependOnThreads) {
  // OpenBLAS's kernels give a column different bits depending on how many columns one call covers;
  // linear_blas must cut the output the same way whatever the pool size.
  const auto [dt, transposed] = GetParam();
  for (auto [out, in] : {std::pair<int64_t, int64_t>{768, 768}, {1000, 96}, {3072, 64}}) {
    std::vector<float> wf = randv(static_cast<size_t>(out * in), 11);
    std::vector<uint8_t> store(wf.size() * dtype_size(dt));
    convert_from_f32(wf.data(), dt, store.data(), static_cast<int64_t>(wf.size()));
    WeightView w{dt, store.data(), out, in, transposed};
    const int64_t rows = 12;
    std::vector<float> x = randv(static_cast<size_t>(rows * in), 13);
    std::vector<float> one(static_cast<size_t>(rows * out));
    linear_blas(w, x.data(), in, rows, one.data(), out, nullptr);
    for (int threads : {2, 3}) {
      ThreadPool pool(threads);
      std::vector<float> many(one.size(), -1.0f);
      linear_blas(w, x.data(), in, rows, many.data(), out, &pool);
      ASSERT_EQ(0, std::memcmp(one.data(), many.data(), one.size() * 4)) << out << "x" << in << ", " << threads;
    }
  }
}

// A scalar model of the vector kernels' arithmetic (the AVX-512 kernels' lanes; the AVX2 kernels hold each
// 16-lane accumulator as two halves and must give the same bits). Dot form: per row, two 16-lane FMA
// accumulators over alternate 16-blocks of k (for BF16 the lanes take the even and the odd elements of
// each 32-block), zero-padded tail, then _mm512_reduce_add_ps's order. Axpy form: one FMA per k, in k
// order, from zero.
float model_dot(DType dt, const float* w, const float* x, int64_t in) {
  float a0[16] = {}, a1[16] = {};
  const int64_t full = in / 32 * 32, rem = in - full;
  const bool split = dt == DType::kBF16;
  for (int64_t k = 0; k < full; k += 32) {
    for (int i = 0; i < 16; ++i) {
      const int64_t e = split ? k + 2 * i : k + i, f = split ? k + 2 * i + 1 : k + 16 + i;
      a0[i] = std::fma(w[e], x[e], a0[i]);
      a1[i] = std::fma(w[f], x[f], a1[i]);
    }
  }
  const auto lane = [&](int64_t i) { return i < rem ? std::pair{w[full + i], x[full + i]} : std::pair{0.0f, 0.0f}; };
  if (rem > 0) {
    for (int i = 0; i < 16; ++i) a0[i] = std::fma(lane(i).first, lane(i).second, a0[i]);
  }
  if (rem > 16) {
    for (int i = 0; i < 16; ++i) a1[i] = std::fma(lane(16 + i).first, lane(16 + i).second, a1[i]);
  }
  float s[16], t3[8], t6[4];
  for (int i = 0; i < 16; ++i) s[i] = a0[i] + a1[i];
  for (int i = 0; i < 8; ++i) t3[i] = s[8 + i] + s[i];
  for (int i = 0; i < 4; ++i) t6[i] = t3[4 + i] + t3[i];
  return (t6[0] + t6[2]) + (t6[1] + t6[3]);
}

TEST_P(LinearTest, GemvMatchesTheAvx512Arithmetic) {
  if (std::string(linear_isa()) == "portable") GTEST_SKIP() << "no vector decode kernel on this CPU";
  const auto [dt, transposed] = GetParam();
  // in: no tail, a tail of 13 (< 16) and of 20 (> 16); out: tile edges and an 8-lane tail.
  for (auto [out, in] : {std::pair<int64_t, int64_t>{96, 64}, {77, 301}, {45, 308}, {130, 20}}) {
    std::vector<float> wf = randv(static_cast<size_t>(out * in), 17);
    std::vector<uint8_t> store(wf.size() * dtype_size(dt));
    convert_from_f32(wf.data(), dt, store.data(), static_cast<int64_t>(wf.size()));
    convert_to_f32(dt, store.data(), wf.data(), static_cast<int64_t>(wf.size()));
    WeightView w{dt, store.data(), out, in, transposed};
    for (int64_t rows = 1; rows <= 8; ++rows) {
      std::vector<float> x = randv(static_cast<size_t>(rows * in), 19);
      std::vector<float> y(static_cast<size_t>(rows * out), -1.0f), want(y.size());
      linear_gemv(w, x.data(), in, rows, y.data(), out, nullptr);
      std::vector<float> wrow(static_cast<size_t>(in));
      for (int64_t r = 0; r < rows; ++r) {
        for (int64_t o = 0; o < out; ++o) {
          float v = 0.0f;
          if (transposed) {
            for (int64_t k = 0; k < in; ++k) v = std::fma(x[r * in + k], wf[k * out + o], v);
          } else {
            v = model_dot(dt, wf.data() + o * in, x.data() + r * in, in);
          }
          want[r * out + o] = v;
        }
      }
      for (size_t i = 0; i < y.size(); ++i) {
        ASSERT_EQ(std::bit_cast<uint32_t>(y[i]), std::bit_cast<uint32_t>(want[i]))
            << linear_isa() << " " << out << "x" << in << " rows " << rows << " at " << i << ": " << y[i] << " vs "
            << want[i];
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(All, LinearTest,
                         ::testing::Values(LinearCase{DType::kF32, false}, LinearCase{DType::kF32, true},
                                           LinearCase{DType::kF16, false}, LinearCase{DType::kF16, true},
                                           LinearCase{DType::kBF16, false}, LinearCase{DType::kBF16, true}),
                         [](const auto& i) {
                           return std::string(dtype_name(i.param.dtype)) + (i.param.transposed ? "_T" : "");
                         });

TEST(Kernels, RmsNorm) {
  const int64_t rows = 3, dim = 37;
  auto x = randv(rows * dim, 1), w = randv(dim, 2);
  std::vector<float> y(x.size());
  rmsnorm(x.data(), w.data(), y.data(), rows, dim, 1e-5f);
  for (int64_t r = 0; r < rows; ++r) {
    double ss = 0;
    for (int64_t i = 0; i < dim; ++i) ss += double(x[r * dim + i]) * x[r * dim + i];
    const double inv = 1.0 / std::sqrt(ss / dim + 1e-5);
    for (int64_t i = 0; i < dim; ++i) EXPECT_NEAR(y[r * dim + i], w[i] * x[r * dim + i] * inv, 1e-5);
  }
}

TEST(Kernels, LayerNorm) {
  const int64_t rows = 2, dim = 50;
  auto x = randv(rows * dim, 3, 4.0f), g = randv(dim, 4), b = randv(dim, 5);
  for (auto& v : x) v += 3.0f;  // non-zero mean
  std::vector<float> y(x.size());
  layernorm(x.data(), g.data(), b.data(), y.data(), rows, dim, 1e-5f);
  for (int64_t r = 0; r < rows; ++r) {
    double m = 0, v = 0;
    for (int64_t i = 0; i < dim; ++i) m += x[r * dim + i];
    m /= dim;
    for (int64_t i = 0; i < dim; ++i) v += (x[r * dim + i] - m) * (x[r * dim + i] - m);
    v /= dim;
    for (int64_t i = 0; i < dim; ++i) {
      EXPECT_NEAR(y[r * dim + i], (x[r * dim + i] - m) / std::sqrt(v + 1e-5) * g[i] + b[i], 1e-5);
    }
  }
}

TEST(Kernels, SoftmaxStableAndNormalised) {
  std::vector<float> x{1000.0f, 1001.0f, 999.0f, -1e30f};
  softmax(x.data(), 4);
  const double e0 = std::exp(-1.0), e2 = std::exp(-2.0), s = e0 + 1 + e2;
  EXPECT_NEAR(x[0], e0 / s, 1e-6);
  EXPECT_NEAR(x[1], 1 / s, 1e-6);
  EXPECT_NEAR(x[2], e2 / s, 1e-6);
  EXPECT_EQ(x[3], 0.0f);
}

TEST(Kernels, Activations) {
  auto x = randv(101, 6, 6.0f);
  auto g = x, s = x, sw = x;
  auto up = randv(101, 7);
  gelu_tanh(g.data(), 101);
  silu(s.data(), 101);
  swiglu(sw.data(), up.data(), 101);
  for (size_t i = 0; i < x.size(); ++i) {
    const double v = x[i];
    EXPECT_NEAR(g[i], 0.5 * v * (1 + std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v))), 1e-5);
    EXPECT_NEAR(s[i], v / (1 + std::exp(-v)), 1e-5);
    EXPECT_NEAR(sw[i], v / (1 + std::exp(-v)) * up[i], 1e-5);
  }
}

// 0.5 v (1 + tanh(u)) written as v / (1 + e^(-2u)) (the same function; without the cancellation of
// 1 + tanh(u) for very negative u), in long double.
double gelu_reference(double v) {
  const long double x = v;
  const long double u = std::sqrt(2.0L / M_PIl) * (x + 0.044715L * x * x * x);
  return static_cast<double>(x / (1.0L + std::exp(-2.0L * u)));
}

TEST(Kernels, GeluAccurateOverTheRange) {
  std::vector<float> x;
  for (float v = -14.0f; v <= 14.0f; v += 0.0037f) x.push_back(v);
  for (float v :
       {0.0f, -0.0f, 1e-30f, -1e-30f, 1e-42f, -1e-42f, 1e-4f, -1e-4f, 30.0f, -30.0f, 1e20f, -1e20f, 3e38f, -3e38f})
    x.push_back(v);
  auto y = x;
  gelu_tanh(y.data(), static_cast<int64_t>(y.size()));
  for (size_t i = 0; i < x.size(); ++i) {
    const double ref = gelu_reference(x[i]);
    if (std::fabs(x[i]) < 10) {  // the identity agrees with the tanh form where that has no cancellation
      const double v = x[i];
      EXPECT_NEAR(ref, 0.5 * v * (1 + std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v))), 1e-12);
    }
    // A few float ulps relative to the exact value (or below the smallest normal float), plus what the
    // float rounding of the argument of e^(-2u) amounts to (|2u| ulps) where x is very negative.
    const double two_u = std::fabs(2 * std::sqrt(2 / M_PI) * (x[i] + 0.044715 * x[i] * x[i] * x[i]));
    const double tol = x[i] < 0 ? 2e-6 + 3e-7 * std::min(two_u, 300.0) : 2e-6;
    EXPECT_NEAR(y[i], ref, tol * std::fabs(ref) + 1e-37) << "x = " << x[i];
  }
}

// The vector GELU's arithmetic (exp by range reduction, a degree-7 polynomial and one scaling by 2^n; the
// AVX2 kernel must give the AVX-512 kernel's bits).
TEST(Kernels, GeluMatchesTheAvx512Arithmetic) {
  if (std::string(linear_isa()) == "portable") GTEST_SKIP() << "no vector GELU on this CPU";
  const auto model_exp = [](float x) {
    x = std::min(89.0f, std::max(-104.0f, x));
    const float n = std::nearbyint(x * 1.44269504088896341f);
    float r = std::fma(-n, 0.693145751953125f, x);
    r = std::fma(-n, 1.42860682030941723e-6f, r);
    float p = 1.0f / 5040.0f;
    for (float c : {1.0f / 720.0f, 1.0f / 120.0f, 1.0f / 24.0f, 1.0f / 6.0f, 0.5f, 1.0f, 1.0f}) p = std::fma(p, r, c);
    return std::ldexp(p, static_cast<int>(n));
  };
  std::vector<float> x;
  for (float v = -12.0f; v <= 12.0f; v += 0.0137f) x.push_back(v);
  for (float v : {-80.0f, -30.0f, 0.0f, -0.0f, 1e-30f, -1e-30f, 30.0f, 80.0f, 1e20f, -1e20f}) x.push_back(v);
  std::vector<float> y = x;
  gelu_tanh(y.data(), static_cast<int64_t>(y.size()));
  const float c = 0.7978845608028654f;
  for (size_t i = 0; i < x.size(); ++i) {
    const float v = x[i];
    const float u2 = (-2.0f * c) * std::fma(0.044715f * v, v * v, v);
    const float want = v / (1.0f + model_exp(u2));
    ASSERT_EQ(std::bit_cast<uint32_t>(y[i]), std::bit_cast<uint32_t>(want)) << linear_isa() << " x " << v;
  }
}

TEST(Kernels, GeluSpecialValues) {
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> x{inf, -inf, std::nanf(""), 0.0f, -0.0f, -1e20f};
  gelu_tanh(x.data(), static_cast<int64_t>(x.size()));
  EXPECT_EQ(x[0], inf);
  EXPECT_TRUE(std::isnan(x[1]));  // as the formula: -inf * (1 + tanh(-inf)) = -inf * 0
  EXPECT_TRUE(std::isnan(x[2]));
  EXPECT_EQ(x[3], 0.0f);
  EXPECT_EQ(x[4], 0.0f);
  EXPECT_EQ(x[5], 0.0f);
}

TEST(Kernels, GeluEveryLengthTouchesOnlyItsElements) {
  for (int64_t n = 0; n <= 40; ++n) {
    auto x = randv(static_cast<size_t>(n) + 8, static_cast<uint32_t>(20 + n), 5.0f);
    auto y = x;
    gelu_tanh(y.data(), n);
    for (int64_t i = 0; i < n; ++i) EXPECT_NEAR(y[i], gelu_reference(x[i]), 2e-5 * std::fabs(y[i]) + 1e-37);
    for (size_t i = static_cast<size_t>(n); i < x.size(); ++i) EXPECT_EQ(y[i], x[i]);
    // Element i does not depend on where the vector starts or ends.
    for (int64_t i = 0; i < n; ++i) {
      float one = x[static_cast<size_t>(i)];
      gelu_tanh(&one, 1);
      EXPECT_EQ(one, y[static_cast<size_t>(i)]);
    }
  }
}

TEST(Kernels, RopeBothStyles) {
  const int64_t heads = 2, hd = 8, pos = 5;
  RopeTable table(hd, 10000.0f);
  table.reserve(16);
  for (auto style : {RopeStyle::kInterleaved, RopeStyle::kHalf}) {
    auto x = randv(heads * hd, 8);
    auto y = x;
    table.apply(y.data(), heads, hd, pos, style);
    for (int64_t h = 0; h < heads; ++h) {
      for (int64_t i = 0; i < hd / 2; ++i) {
        const double th = pos * std::pow(10000.0, -2.0 * i / hd);
        const int64_t a = style == RopeStyle::kInterleaved ? 2 * i : i;
        const int64_t b = style == RopeStyle::kInterleaved ? 2 * i + 1 : i + hd / 2;
        const double x0 = x[h * hd + a], x1 = x[h * hd + b];
        EXPECT_NEAR(y[h * hd + a], x0 * std::cos(th) - x1 * std::sin(th), 1e-5);
        EXPECT_NEAR(y[h * hd + b], x0 * std::sin(th) + x1 * std::cos(th), 1e-5);
      }
    }
  }
  // Position 0 is the identity.
  auto x = randv(hd, 9), y = x;
  table.apply(y.data(), 1, hd, 0, RopeStyle::kInterleaved);
  EXPECT_EQ(x, y);
}

TEST(Kernels, CausalGqaAttention) {
  const AttentionShape s{4, 2, 8};
  const int64_t start = 3, n = 4, ctx = start + n, kvd = s.n_kv_heads * s.head_dim, qd = s.n_heads * s.head_dim;
  auto q = randv(n * qd, 10), k = randv(ctx * kvd, 11), v = randv(ctx * kvd, 12);
  ThreadPool pool(2);
  for (ThreadPool* p : {static_cast<ThreadPool*>(nullptr), &pool}) {
    std::vector<float> out(static_cast<size_t>(n * qd));
    attention(s, q.data(), qd, n, start, k.data(), v.data(), kvd, out.data(), qd, p);
    for (int64_t t = 0; t < n; ++t) {
      for (int64_t h = 0; h < s.n_heads; ++h) {
        const int64_t kh = h / 2, len = start + t + 1;
        std::vector<double> sc(static_cast<size_t>(len));
        double mx = -1e300, sum = 0;
        for (int64_t j = 0; j < len; ++j) {
          double d = 0;
          for (int64_t i = 0; i < s.head_dim; ++i) d += double(q[t * qd + h * 8 + i]) * k[j * kvd + kh * 8 + i];
          sc[j] = d / std::sqrt(8.0);
          mx = std::max(mx, sc[j]);
        }
        for (auto& e : sc) sum += (e = std::exp(e - mx));
        for (int64_t i = 0; i < s.head_dim; ++i) {
          double o = 0;
          for (int64_t j = 0; j < len; ++j) o += sc[j] / sum * v[j * kvd + kh * 8 + i];
          EXPECT_NEAR(out[t * qd + h * 8 + i], o, 1e-5);
        }
      }
    }
  }
}

// Scalar double-precision reference of attention() for one token row.
void attention_reference(const AttentionShape& s, const float* q, const float* k, const float* v, int64_t kvd,
                         int64_t len, std::vector<double>& out) {
  const int64_t hd = s.head_dim, group = s.n_heads / s.n_kv_heads;
  out.assign(static_cast<size_t>(s.n_heads * hd), 0.0);
  for (int64_t h = 0; h < s.n_heads; ++h) {
    const int64_t kh = h / group;
    std::vector<double> sc(static_cast<size_t>(len));
    double mx = -1e300, sum = 0;
    for (int64_t j = 0; j < len; ++j) {
      double d = 0;
      for (int64_t i = 0; i < hd; ++i) d += double(q[h * hd + i]) * k[j * kvd + kh * hd + i];
      sc[j] = d / std::sqrt(double(hd));
      mx = std::max(mx, sc[j]);
    }
    for (auto& e : sc) sum += (e = std::exp(e - mx));
    for (int64_t i = 0; i < hd; ++i) {
      for (int64_t j = 0; j < len; ++j) out[h * hd + i] += sc[j] / sum * v[j * kvd + kh * hd + i];
    }
  }
}

TEST(Kernels, AttentionHeadSizesAndLengths) {
  // Head sizes around the 16-lane blocks and past the register-resident kernel's 128; lengths around its
  // four positions at a time.
  ThreadPool pool2(2), pool3(3);
  for (int64_t hd : {1, 7, 8, 15, 16, 17, 31, 48, 64, 100, 128, 129, 160}) {
    const AttentionShape s{6, 3, hd};
    const int64_t kvd = s.n_kv_heads * hd, qd = s.n_heads * hd;
    for (int64_t start : {0, 3, 9}) {
      const int64_t n = 5, ctx = start + n;
      auto q = randv(static_cast<size_t>(n * qd), uint32_t(hd * 31 + start));
      auto k = randv(static_cast<size_t>(ctx * kvd), uint32_t(hd * 37 + start), 2.0f);
      auto v = randv(static_cast<size_t>(ctx * kvd), uint32_t(hd * 41 + start));
      std::vector<float> first;
      for (ThreadPool* p : {static_cast<ThreadPool*>(nullptr), &pool2, &pool3}) {
        std::vector<float> out(static_cast<size_t>(n * qd), -7.0f);
        attention(s, q.data(), qd, n, start, k.data(), v.data(), kvd, out.data(), qd, p);
        if (first.empty()) {
          first = out;
          for (int64_t t = 0; t < n; ++t) {
            std::vector<double> ref;
            attention_reference(s, q.data() + t * qd, k.data(), v.data(), kvd, start + t + 1, ref);
            for (int64_t i = 0; i < qd; ++i) {
              ASSERT_NEAR(out[t * qd + i], ref[i], 1e-5) << "hd " << hd << " start " << start << " t " << t;
            }
          }
        }
        EXPECT_EQ(std::memcmp(out.data(), first.data(), out.size() * sizeof(float)), 0) << "hd " << hd;
      }
      // Each row equals what a one-token (decode) step at that position computes, bit for bit.
      for (int64_t t = 0; t < n; ++t) {
        std::vector<float> one(static_cast<size_t>(qd));
        attention(s, q.data() + t * qd, qd, 1, start + t, k.data(), v.data(), kvd, one.data(), qd, nullptr);
        EXPECT_EQ(std::memcmp(one.data(), first.data() + t * qd, one.size() * sizeof(float)), 0) << "hd " << hd;
      }
    }
  }
}

// The head kernels' arithmetic (AVX-512 lanes; the AVX2 kernel must give the same bits): scores as
// one 16-lane FMA accumulator over the head's 16-blocks (zero past head_dim), reduced in
// _mm512_reduce_add_ps's order, divided; softmax; each output value one FMA per position in order.
TEST(Kernels, AttentionMatchesTheAvx512Arithmetic) {
  if (std::string(linear_isa()) == "portable") GTEST_SKIP() << "no vector attention kernel on this CPU";
  for (int64_t hd : {7, 16, 20, 64, 128}) {
    const AttentionShape s{2, 1, hd};
    const int64_t len = 9;
    auto q = randv(static_cast<size_t>(2 * hd), uint32_t(hd));
    auto k = randv(static_cast<size_t>(len * hd), uint32_t(hd + 1), 2.0f);
    auto v = randv(static_cast<size_t>(len * hd), uint32_t(hd + 2));
    std::vector<float> out(static_cast<size_t>(2 * hd));
    attention(s, q.data(), 2 * hd, 1, len - 1, k.data(), v.data(), hd, out.data(), 2 * hd, nullptr);
    const float div = std::sqrt(static_cast<float>(hd));
    for (int64_t h = 0; h < 2; ++h) {
      std::vector<float> att(static_cast<size_t>(len));
      for (int64_t p = 0; p < len; ++p) {
        float lanes[16] = {};
        for (int64_t i = 0; i < (hd + 15) / 16 * 16; ++i) {
          const bool in = i < hd;
          lanes[i % 16] = std::fma(in ? q[h * hd + i] : 0.0f, in ? k[p * hd + i] : 0.0f, lanes[i % 16]);
        }
        float t3[8], t6[4];
        for (int i = 0; i < 8; ++i) t3[i] = lanes[8 + i] + lanes[i];
        for (int i = 0; i < 4; ++i) t6[i] = t3[4 + i] + t3[i];
        att[p] = ((t6[0] + t6[2]) + (t6[1] + t6[3])) / div;
      }
      softmax(att.data(), len);
      for (int64_t i = 0; i < hd; ++i) {
        float o = 0.0f;
        for (int64_t p = 0; p < len; ++p) o = std::fma(att[p], v[p * hd + i], o);
        ASSERT_EQ(std::bit_cast<uint32_t>(out[h * hd + i]), std::bit_cast<uint32_t>(o))
            << linear_isa() << " hd " << hd << " head " << h << " value " << i;
      }
    }
  }
}

TEST(Kernels, AttentionLongContextInParallel) {
  // Big enough to be spread over the pool: the same numbers with and without it.
  const AttentionShape s{12, 12, 64};
  const int64_t kvd = 768, n = 3, start = 700, ctx = start + n;
  auto q = randv(static_cast<size_t>(n * kvd), 50), k = randv(static_cast<size_t>(ctx * kvd), 51);
  auto v = randv(static_cast<size_t>(ctx * kvd), 52);
  std::vector<float> a(static_cast<size_t>(n * kvd)), b(a.size());
  ThreadPool pool(2);
  attention(s, q.data(), kvd, n, start, k.data(), v.data(), kvd, a.data(), kvd, nullptr);
  attention(s, q.data(), kvd, n, start, k.data(), v.data(), kvd, b.data(), kvd, &pool);
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0);
  std::vector<double> ref;
  attention_reference(s, q.data() + 2 * kvd, k.data(), v.data(), kvd, ctx, ref);
  for (int64_t i = 0; i < kvd; ++i) EXPECT_NEAR(a[2 * kvd + i], ref[i], 1e-5);
}

TEST(Kernels, AttentionNonFiniteValues) {
  for (int64_t hd : {8, 64, 129}) {
    const AttentionShape s{2, 1, hd};
    const int64_t len = 6;
    auto q = randv(static_cast<size_t>(2 * hd), 60), k = randv(static_cast<size_t>(len * hd), 61);
    auto v = randv(static_cast<size_t>(len * hd), 62);
    v[static_cast<size_t>(3 * hd + 1)] = std::nanf("");  // one NaN value at position 3
    std::vector<float> out(static_cast<size_t>(2 * hd));
    attention(s, q.data(), 2 * hd, 1, len - 1, k.data(), v.data(), hd, out.data(), 2 * hd, nullptr);
    for (int64_t h = 0; h < 2; ++h) {
      for (int64_t i = 0; i < hd; ++i) EXPECT_EQ(std::isnan(out[h * hd + i]), i == 1) << hd << " " << i;
    }
    // An infinite key with a positive query component gives an infinite score: softmax turns it into NaN
    // (inf - inf), so every output of both heads is NaN, never a silently finite value.
    k[static_cast<size_t>(2 * hd)] = std::numeric_limits<float>::infinity();
    q[0] = q[static_cast<size_t>(hd)] = 1.0f;
    v[static_cast<size_t>(3 * hd + 1)] = 0.5f;
    attention(s, q.data(), 2 * hd, 1, len - 1, k.data(), v.data(), hd, out.data(), 2 * hd, nullptr);
    for (float o : out) EXPECT_TRUE(std::isnan(o));
  }
}

}  // namespace
}  // namespace cml::tensor
