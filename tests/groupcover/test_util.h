// Shared helpers for the GroupCover tests: random matrices, reference products, relative errors.
#pragma once

#include <cmath>
#include <random>
#include <vector>

#include "groupcover/model_bundle.h"
#include "model/linear_backend.h"

namespace cml::groupcover::testing {

inline std::vector<float> random_matrix(int64_t rows, int64_t cols, uint64_t seed, float scale = 1.0f) {
  std::mt19937_64 g(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> m(static_cast<size_t>(rows * cols));
  for (float& v : m) v = d(g);
  return m;
}

// y = x·Wᵀ + b in double, W row-major [out, in].
inline std::vector<double> reference(const std::vector<float>& w, const float* bias, const float* x, int64_t rows,
                                     int64_t out, int64_t in) {
  std::vector<double> y(static_cast<size_t>(rows * out));
  for (int64_t t = 0; t < rows; ++t)
    for (int64_t i = 0; i < out; ++i) {
      double acc = bias ? bias[i] : 0.0;
      for (int64_t j = 0; j < in; ++j) acc += double(w[size_t(i * in + j)]) * x[t * in + j];
      y[size_t(t * out + i)] = acc;
    }
  return y;
}

// max over rows of ‖y_t − ref_t‖ / ‖ref_t‖.
inline double max_row_rel_error(const float* y, const std::vector<double>& ref, int64_t rows, int64_t out) {
  double worst = 0;
  for (int64_t t = 0; t < rows; ++t) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < out; ++i) {
      const double d = y[t * out + i] - ref[size_t(t * out + i)];
      num += d * d;
      den += ref[size_t(t * out + i)] * ref[size_t(t * out + i)];
    }
    worst = std::max(worst, std::sqrt(num / std::max(den, 1e-300)));
  }
  return worst;
}

inline double cosine(const float* a, const float* b, int64_t n) {
  double ab = 0, aa = 0, bb = 0;
  for (int64_t i = 0; i < n; ++i) {
    ab += double(a[i]) * b[i];
    aa += double(a[i]) * a[i];
    bb += double(b[i]) * b[i];
  }
  return (aa == 0 || bb == 0) ? 0.0 : ab / std::sqrt(aa * bb);
}

}  // namespace cml::groupcover::testing
