#include "groupcover/restore.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <cmath>
#include <cstring>

#include "base/status.h"
#include "tensor/half.h"

namespace cml::groupcover {
namespace {

constexpr int kL = RestorePlan::kLanes;

// d[i] = double(z[i]) − c·double(u[i]) (u null: d[i] = double(z[i])), as restore_rows computes it.
void demask_portable(const float* z, const float* u, double c, int64_t n, double* d) {
  if (u) {
    for (int64_t i = 0; i < n; ++i) d[i] = double(z[i]) - c * double(u[i]);
  } else {
    for (int64_t i = 0; i < n; ++i) d[i] = double(z[i]);
  }
}

#if defined(__x86_64__)
#define CML_RESTORE_AVX512 __attribute__((target("avx512f,avx512vl")))

CML_RESTORE_AVX512 void demask_avx512(const float* z, const float* u, double c, int64_t n, double* d) {
  int64_t i = 0;
  if (u) {
    const __m512d cv = _mm512_set1_pd(c);
    for (; i + 8 <= n; i += 8) {
      const __m512d zd = _mm512_cvtps_pd(_mm256_loadu_ps(z + i));
      const __m512d ud = _mm512_cvtps_pd(_mm256_loadu_ps(u + i));
      _mm512_storeu_pd(d + i, _mm512_sub_pd(zd, _mm512_mul_pd(cv, ud)));
    }
  } else {
    for (; i + 8 <= n; i += 8) _mm512_storeu_pd(d + i, _mm512_cvtps_pd(_mm256_loadu_ps(z + i)));
  }
  demask_portable(z + i, u ? u + i : nullptr, c, n - i, d + i);
}

// Blocks of kL groups of four: y[g_l[i]] = float(Σ_j inv_l(i, j)·d[g_l[j]] + b), summed from 0.0 in j order.
CML_RESTORE_AVX512 void blocks_avx512(const int32_t* idx, const double* inv, const float* bias, int64_t n_blocks,
                                      const double* d, float* yr) {
  for (int64_t b = 0; b < n_blocks; ++b, idx += 4 * kL, inv += 16 * kL) {
    const __m256i i0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(idx));
    const __m256i i1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(idx + kL));
    const __m256i i2 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(idx + 2 * kL));
    const __m256i i3 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(idx + 3 * kL));
    const __m512d d0 = _mm512_i32gather_pd(i0, d, 8);
    const __m512d d1 = _mm512_i32gather_pd(i1, d, 8);
    const __m512d d2 = _mm512_i32gather_pd(i2, d, 8);
    const __m512d d3 = _mm512_i32gather_pd(i3, d, 8);
    __m512d acc[4];
    for (int i = 0; i < 4; ++i) {
      const double* m = inv + 4 * i * kL;
      __m512d v = _mm512_setzero_pd();
      v = _mm512_add_pd(v, _mm512_mul_pd(_mm512_loadu_pd(m), d0));
      v = _mm512_add_pd(v, _mm512_mul_pd(_mm512_loadu_pd(m + kL), d1));
      v = _mm512_add_pd(v, _mm512_mul_pd(_mm512_loadu_pd(m + 2 * kL), d2));
      v = _mm512_add_pd(v, _mm512_mul_pd(_mm512_loadu_pd(m + 3 * kL), d3));
      const __m512d bv = bias ? _mm512_cvtps_pd(_mm256_loadu_ps(bias + i * kL)) : _mm512_setzero_pd();
      acc[i] = _mm512_add_pd(v, bv);
    }
    _mm256_i32scatter_ps(yr, i0, _mm512_cvtpd_ps(acc[0]), 4);
    _mm256_i32scatter_ps(yr, i1, _mm512_cvtpd_ps(acc[1]), 4);
    _mm256_i32scatter_ps(yr, i2, _mm512_cvtpd_ps(acc[2]), 4);
    _mm256_i32scatter_ps(yr, i3, _mm512_cvtpd_ps(acc[3]), 4);
    if (bias) bias += 4 * kL;
  }
}

// AVX2 (without FMA, so that no multiply and add are fused: the same bits as the portable loops).
#define CML_RESTORE_AVX2 __attribute__((target("avx2")))

CML_RESTORE_AVX2 void demask_avx2(const float* z, const float* u, double c, int64_t n, double* d) {
  int64_t i = 0;
  if (u) {
    const __m256d cv = _mm256_set1_pd(c);
    for (; i + 4 <= n; i += 4) {
      const __m256d zd = _mm256_cvtps_pd(_mm_loadu_ps(z + i)), ud = _mm256_cvtps_pd(_mm_loadu_ps(u + i));
      _mm256_storeu_pd(d + i, _mm256_sub_pd(zd, _mm256_mul_pd(cv, ud)));
    }
  } else {
    for (; i + 4 <= n; i += 4) _mm256_storeu_pd(d + i, _mm256_cvtps_pd(_mm_loadu_ps(z + i)));
  }
  demask_portable(z + i, u ? u + i : nullptr, c, n - i, d + i);
}

// blocks_avx512 four lanes at a time, with gathers; AVX2 has no scatter, so the four results per row go
// out as scalar stores.
CML_RESTORE_AVX2 void blocks_avx2(const int32_t* idx, const double* inv, const float* bias, int64_t n_blocks,
                                  const double* d, float* yr) {
  for (int64_t b = 0; b < n_blocks; ++b, idx += 4 * kL, inv += 16 * kL) {
    for (int h = 0; h < kL; h += 4) {
      __m128i ix[4];
      __m256d dj[4];
      for (int j = 0; j < 4; ++j) {
        ix[j] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(idx + j * kL + h));
        dj[j] = _mm256_i32gather_pd(d, ix[j], 8);
      }
      for (int i = 0; i < 4; ++i) {
        const double* m = inv + 4 * i * kL + h;
        __m256d v = _mm256_setzero_pd();
        for (int j = 0; j < 4; ++j) v = _mm256_add_pd(v, _mm256_mul_pd(_mm256_loadu_pd(m + j * kL), dj[j]));
        const __m256d bv = bias ? _mm256_cvtps_pd(_mm_loadu_ps(bias + i * kL + h)) : _mm256_setzero_pd();
        alignas(16) float out[4];
        _mm_store_ps(out, _mm256_cvtpd_ps(_mm256_add_pd(v, bv)));
        alignas(16) int32_t at[4];
        _mm_store_si128(reinterpret_cast<__m128i*>(at), ix[i]);
        for (int l = 0; l < 4; ++l) yr[at[l]] = out[l];
      }
    }
    if (bias) bias += 4 * kL;
  }
}
#endif

void blocks_portable(const int32_t* idx, const double* inv, const float* bias, int64_t n_blocks, const double* d,
                     float* yr) {
  for (int64_t b = 0; b < n_blocks; ++b, idx += 4 * kL, inv += 16 * kL) {
    for (int l = 0; l < kL; ++l) {
      double dj[4];
      for (int j = 0; j < 4; ++j) dj[j] = d[idx[j * kL + l]];
      for (int i = 0; i < 4; ++i) {
        double v = 0.0;
        for (int j = 0; j < 4; ++j) v += inv[(4 * i + j) * kL + l] * dj[j];
        yr[idx[i * kL + l]] = float(v + (bias ? double(bias[i * kL + l]) : 0.0));
      }
    }
    if (bias) bias += 4 * kL;
  }
}

}  // namespace

RestorePlan::RestorePlan(const MatrixSecrets& s, const float* bias) : out_(s.out) {
  CML_CHECK(s.out >= 0 && s.out <= INT32_MAX);
  const size_t ng = s.n_groups();
  const uint32_t* offs = s.group_offsets.data();
  std::vector<size_t> fours, inv_at(ng);
  size_t inv_off = 0;
  for (size_t k = 0; k < ng; ++k) {
    const size_t sz = offs[k + 1] - offs[k];
    inv_at[k] = inv_off;
    inv_off += sz * sz;
    if (sz == 4) fours.push_back(k);
  }
  n_blocks_ = int64_t(fours.size() / kL);
  const size_t in_blocks = size_t(n_blocks_) * kL;
  idx4_.resize(in_blocks * 4);
  inv4_.resize(in_blocks * 16);
  if (bias) bias4_.resize(in_blocks * 4);
  for (size_t n = 0; n < in_blocks; ++n) {
    const size_t k = fours[n], b = n / kL, l = n % kL;
    const uint32_t* g = s.group_rows.data() + offs[k];
    for (int j = 0; j < 4; ++j) {
      idx4_[(b * 4 + j) * kL + l] = int32_t(g[j]);
      if (bias) bias4_[(b * 4 + j) * kL + l] = bias[g[j]];
    }
    for (int e = 0; e < 16; ++e) inv4_[(b * 16 + e) * kL + l] = s.inv_mix[inv_at[k] + e];
  }
  // The rest, in the secrets' order.
  std::vector<bool> blocked(ng, false);
  for (size_t n = 0; n < in_blocks; ++n) blocked[fours[n]] = true;
  rest_off_.push_back(0);
  for (size_t k = 0; k < ng; ++k) {
    if (blocked[k]) continue;
    const size_t sz = offs[k + 1] - offs[k];
    for (size_t i = 0; i < sz; ++i) {
      const uint32_t row = s.group_rows[offs[k] + i];
      rest_rows_.push_back(row);
      if (bias) rest_bias_.push_back(bias[row]);
    }
    rest_inv_.insert(rest_inv_.end(), s.inv_mix.begin() + ptrdiff_t(inv_at[k]),
                     s.inv_mix.begin() + ptrdiff_t(inv_at[k] + sz * sz));
    rest_off_.push_back(uint32_t(rest_rows_.size()));
  }
}

void RestorePlan::run_rest(const double* d, float* yr) const {
  const double* inv = rest_inv_.data();
  const bool has_bias = !rest_bias_.empty();
  for (size_t k = 0; k + 1 < rest_off_.size(); ++k) {
    const uint32_t* g = rest_rows_.data() + rest_off_[k];
    const int n = int(rest_off_[k + 1] - rest_off_[k]);
    for (int i = 0; i < n; ++i) {
      double v = 0.0;
      for (int j = 0; j < n; ++j) v += inv[i * n + j] * d[g[j]];
      yr[g[i]] = float(v + (has_bias ? double(rest_bias_[rest_off_[k] + size_t(i)]) : 0.0));
    }
    inv += n * n;
  }
}

void RestorePlan::run_with(const Kernels& k, const float* z2, const float* u, const float* scale, int64_t rows,
                           float* y, int64_t y_stride, std::vector<double>& work) const {
  if (work.size() < size_t(out_)) work.resize(size_t(out_));
  const float* b4 = bias4_.empty() ? nullptr : bias4_.data();
  for (int64_t t = 0; t < rows; ++t) {
    const double c = scale ? double(scale[t]) : 0.0;
    k.demask(z2 + t * out_, u ? u + t * out_ : nullptr, c, out_, work.data());
    float* yr = y + t * y_stride;
    k.blocks(idx4_.data(), inv4_.data(), b4, n_blocks_, work.data(), yr);
    run_rest(work.data(), yr);
  }
}

void RestorePlan::run_portable(const float* z2, const float* u, const float* scale, int64_t rows, float* y,
                               int64_t y_stride, std::vector<double>& work) const {
  run_with({demask_portable, blocks_portable}, z2, u, scale, rows, y, y_stride, work);
}

void RestorePlan::run(const float* z2, const float* u, const float* scale, int64_t rows, float* y, int64_t y_stride,
                      std::vector<double>& work) const {
#if defined(__x86_64__)
  if (tensor::cpu_features().avx512)
    return run_with({demask_avx512, blocks_avx512}, z2, u, scale, rows, y, y_stride, work);
  if (tensor::cpu_features().avx2) return run_with({demask_avx2, blocks_avx2}, z2, u, scale, rows, y, y_stride, work);
#endif
  run_portable(z2, u, scale, rows, y, y_stride, work);
}

namespace {

float max_abs_portable(const float* x, int64_t n) {
  float m = 0.0f;
  for (int64_t i = 0; i < n; ++i) m = std::max(m, std::fabs(x[i]));
  return m;
}

void add_scaled_portable(float* z, const float* r, float c, int64_t n) {
  for (int64_t i = 0; i < n; ++i) z[i] += c * r[i];
}

#if defined(__x86_64__)
CML_RESTORE_AVX512 float max_abs_avx512(const float* x, int64_t n) {
  // max_ps(a, m) returns m when a is NaN, as std::max(m, a) does; max is order-independent otherwise.
  __m512 m = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) m = _mm512_max_ps(_mm512_abs_ps(_mm512_loadu_ps(x + i)), m);
  float lanes[16];
  _mm512_storeu_ps(lanes, m);
  float r = max_abs_portable(x + i, n - i);
  for (float v : lanes) r = std::max(r, v);
  return r;
}

CML_RESTORE_AVX512 void add_scaled_avx512(float* z, const float* r, float c, int64_t n) {
  const __m512 cv = _mm512_set1_ps(c);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm512_storeu_ps(z + i, _mm512_add_ps(_mm512_loadu_ps(z + i), _mm512_mul_ps(cv, _mm512_loadu_ps(r + i))));
  add_scaled_portable(z + i, r + i, c, n - i);
}

CML_RESTORE_AVX2 float max_abs_avx2(const float* x, int64_t n) {
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  __m256 m = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) m = _mm256_max_ps(_mm256_and_ps(_mm256_loadu_ps(x + i), abs_mask), m);
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, m);
  float r = max_abs_portable(x + i, n - i);
  for (float v : lanes) r = std::max(r, v);
  return r;
}

CML_RESTORE_AVX2 void add_scaled_avx2(float* z, const float* r, float c, int64_t n) {
  const __m256 cv = _mm256_set1_ps(c);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(z + i, _mm256_add_ps(_mm256_loadu_ps(z + i), _mm256_mul_ps(cv, _mm256_loadu_ps(r + i))));
  add_scaled_portable(z + i, r + i, c, n - i);
}
#endif

}  // namespace

float max_abs(const float* x, int64_t n) {
#if defined(__x86_64__)
  if (tensor::cpu_features().avx512) return max_abs_avx512(x, n);
  if (tensor::cpu_features().avx2) return max_abs_avx2(x, n);
#endif
  return max_abs_portable(x, n);
}

void add_scaled(float* z, const float* r, float c, int64_t n) {
#if defined(__x86_64__)
  if (tensor::cpu_features().avx512) return add_scaled_avx512(z, r, c, n);
  if (tensor::cpu_features().avx2) return add_scaled_avx2(z, r, c, n);
#endif
  add_scaled_portable(z, r, c, n);
}

}  // namespace cml::groupcover
