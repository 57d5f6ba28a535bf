#include "tensor/kernels.h"

#include <algorithm>
#include <cmath>

#include "base/status.h"

namespace cml::tensor {

void rmsnorm(const float* x, const float* w, float* y, int64_t rows, int64_t dim, float eps) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * dim;
    float* yr = y + r * dim;
    float ss = 0.0f;
    for (int64_t i = 0; i < dim; ++i) ss += xr[i] * xr[i];
    ss /= static_cast<float>(dim);
    ss += eps;
    ss = 1.0f / std::sqrt(ss);
    for (int64_t i = 0; i < dim; ++i) yr[i] = w[i] * (ss * xr[i]);
  }
}

void layernorm(const float* x, const float* g, const float* b, float* y, int64_t rows, int64_t dim, float eps) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * dim;
    float* yr = y + r * dim;
    double sum = 0.0;
    for (int64_t i = 0; i < dim; ++i) sum += xr[i];
    const double mean = sum / static_cast<double>(dim);
    double var = 0.0;
    for (int64_t i = 0; i < dim; ++i) {
      const double d = xr[i] - mean;
      var += d * d;
    }
    var /= static_cast<double>(dim);
    const float inv = static_cast<float>(1.0 / std::sqrt(var + eps));
    const float m = static_cast<float>(mean);
    for (int64_t i = 0; i < dim; ++i) {
      const float n = (xr[i] - m) * inv;
      yr[i] = b ? n * g[i] + b[i] : n * g[i];
    }
  }
}

void softmax(float* x, int64_t n) {
  if (n <= 0) return;
  float mx = x[0];
  for (int64_t i = 1; i < n; ++i) mx = std::max(mx, x[i]);
  float sum = 0.0f;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - mx);
    sum += x[i];
  }
  for (int64_t i = 0; i < n; ++i) x[i] /= sum;
}

void gelu_tanh(float* x, int64_t n) {
  constexpr float kC = 0.7978845608028654f;  // sqrt(2/pi)
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i];
    x[i] = 0.5f * v * (1.0f + std::tanh(kC * (v + 0.044715f * v * v * v)));
  }
}

void silu(float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = x[i] * (1.0f / (1.0f + std::exp(-x[i])));
}

void swiglu(float* gate, const float* up, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    gate[i] = g * (1.0f / (1.0f + std::exp(-g))) * up[i];
  }
}

void add_inplace(float* y, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += x[i];
}

RopeTable::RopeTable(int64_t rot_dim, float theta) : rot_dim_(rot_dim), theta_(theta) {}

void RopeTable::reserve(int64_t positions) {
  if (positions <= rows_) return;
  const int64_t half = rot_dim_ / 2;
  const int64_t rows = std::max(positions, rows_ * 2);  // grow geometrically
  cos_.resize(static_cast<size_t>(rows * half));
  sin_.resize(cos_.size());
  for (int64_t p = rows_; p < rows; ++p) {
    for (int64_t i = 0; i < half; ++i) {
      const float freq = 1.0f / std::pow(theta_, static_cast<float>(2 * i) / static_cast<float>(rot_dim_));
      const float val = static_cast<float>(p) * freq;
      cos_[static_cast<size_t>(p * half + i)] = std::cos(val);
      sin_[static_cast<size_t>(p * half + i)] = std::sin(val);
    }
  }
  rows_ = rows;
}

void RopeTable::apply(float* x, int64_t n_heads, int64_t head_dim, int64_t pos, RopeStyle style) const {
  const int64_t half = rot_dim_ / 2;
  CML_CHECK(pos >= 0 && pos < rows_);
  const float* c = cos_.data() + pos * half;
  const float* s = sin_.data() + pos * half;
  for (int64_t h = 0; h < n_heads; ++h) {
    float* xh = x + h * head_dim;
    for (int64_t i = 0; i < half; ++i) {
      const int64_t a = style == RopeStyle::kInterleaved ? 2 * i : i;
      const int64_t b = style == RopeStyle::kInterleaved ? 2 * i + 1 : i + half;
      const float v0 = xh[a], v1 = xh[b];
      xh[a] = v0 * c[i] - v1 * s[i];
      xh[b] = v0 * s[i] + v1 * c[i];
    }
  }
}

void attention(const AttentionShape& s, const float* q, int64_t q_stride, int64_t n_tokens, int64_t start_pos,
               const float* k, const float* v, int64_t kv_stride, float* out, int64_t out_stride, ThreadPool* pool) {
  const float div = std::sqrt(static_cast<float>(s.head_dim));
  const int64_t group = s.n_heads / s.n_kv_heads;
  const int64_t hd = s.head_dim;
  const int64_t ctx = start_pos + n_tokens;
  auto one = [&](int64_t task, std::vector<float>& att) {
    const int64_t t = task / s.n_heads, h = task % s.n_heads;
    const int64_t kvh = h / group;
    const int64_t len = start_pos + t + 1;
    const float* qh = q + t * q_stride + h * hd;
    att.resize(static_cast<size_t>(len));
    for (int64_t p = 0; p < len; ++p) {
      const float* kp = k + p * kv_stride + kvh * hd;
      float dot = 0.0f;
      for (int64_t i = 0; i < hd; ++i) dot += qh[i] * kp[i];
      att[static_cast<size_t>(p)] = dot / div;
    }
    softmax(att.data(), len);
    float* oh = out + t * out_stride + h * hd;
    std::fill(oh, oh + hd, 0.0f);
    for (int64_t p = 0; p < len; ++p) {
      const float* vp = v + p * kv_stride + kvh * hd;
      const float a = att[static_cast<size_t>(p)];
      for (int64_t i = 0; i < hd; ++i) oh[i] += a * vp[i];
    }
  };
  const int64_t tasks = n_tokens * s.n_heads;
  // Small jobs run inline: waking workers costs more than a few thousand flops.
  if (pool == nullptr || pool->size() == 1 || tasks * ctx * hd < 32768) {
    std::vector<float> att;
    att.reserve(static_cast<size_t>(ctx));
    for (int64_t task = 0; task < tasks; ++task) one(task, att);
    return;
  }
  pool->parallel_for(tasks, 1, [&](int64_t b, int64_t e) {
    thread_local std::vector<float> att;
    for (int64_t task = b; task < e; ++task) one(task, att);
  });
}

}  // namespace cml::tensor
