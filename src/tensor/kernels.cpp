#include "tensor/kernels.h"

#include <algorithm>
#include <cmath>

#include "base/status.h"
#include "tensor/half.h"
#include "tensor/reduce_avx2.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

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

namespace {

// GELU through the identity 0.5 (1 + tanh(u)) = 1 / (1 + e^(-2u)): one exp and one division, no
// cancellation anywhere (x / (1 + e^(-2u)) keeps the relative accuracy of exp for every sign of x).
constexpr float kGeluC = 0.7978845608028654f;  // sqrt(2/pi)
constexpr float kGeluCubic = 0.044715f;

#if defined(__x86_64__)
// e^x in 16 lanes, within a few ulp over the whole float range: x = n ln2 + r with |r| <= ln2/2 (ln2 in
// two parts), e^r by its degree-7 Taylor polynomial (truncation < 6e-9 relative), then scaled by 2^n
// (scalef handles overflow to inf, gradual underflow and NaN). Results are clamped to [-104, 89] first,
// outside which e^x is 0 or inf in float anyway.
__attribute__((target("avx512f,fma"))) __m512 exp_avx512(__m512 x) {
  // max/min return their second operand when either is NaN: keep x there so that NaN passes through.
  x = _mm512_min_ps(_mm512_set1_ps(89.0f), _mm512_max_ps(_mm512_set1_ps(-104.0f), x));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.42860682030941723e-6f), r);
  __m512 p = _mm512_set1_ps(1.0f / 5040.0f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(p, n);
}

__attribute__((target("avx512f,fma"))) void gelu_tanh_avx512(float* x, int64_t n) {
  const __m512 c2 = _mm512_set1_ps(-2.0f * kGeluC), cubic = _mm512_set1_ps(kGeluCubic), one = _mm512_set1_ps(1.0f);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = static_cast<__mmask16>(n - i >= 16 ? 0xffffu : (1u << (n - i)) - 1);
    const __m512 v = _mm512_maskz_loadu_ps(m, x + i);
    // -2u = -2c (v + 0.044715 v^3)
    const __m512 u2 = _mm512_mul_ps(c2, _mm512_fmadd_ps(_mm512_mul_ps(cubic, v), _mm512_mul_ps(v, v), v));
    _mm512_mask_storeu_ps(x + i, m, _mm512_div_ps(v, _mm512_add_ps(one, exp_avx512(u2))));
  }
}

// The same e^x and GELU in 8 lanes with the same bits: AVX2 has no scalef, so 2^n is applied as two exact
// powers of two (n = n1 + n2 with both halves normal), whose product with p rounds once, as scalef does.
__attribute__((target("avx2,fma"))) __m256 exp_avx2(__m256 x) {
  x = _mm256_min_ps(_mm256_set1_ps(89.0f), _mm256_max_ps(_mm256_set1_ps(-104.0f), x));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693145751953125f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.42860682030941723e-6f), r);
  __m256 p = _mm256_set1_ps(1.0f / 5040.0f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  // n is in [-150, 128] (NaN lanes carry NaN in p, which any product keeps).
  const __m256i ni = _mm256_cvtps_epi32(n);
  const __m256i n1 = _mm256_srai_epi32(ni, 1), n2 = _mm256_sub_epi32(ni, n1);
  const __m256i bias = _mm256_set1_epi32(127);
  const __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, bias), 23));
  const __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, bias), 23));
  return _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
}

__attribute__((target("avx2,fma"))) void gelu_tanh_avx2(float* x, int64_t n) {
  const __m256 c2 = _mm256_set1_ps(-2.0f * kGeluC), cubic = _mm256_set1_ps(kGeluCubic), one = _mm256_set1_ps(1.0f);
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  for (int64_t i = 0; i < n; i += 8) {
    const __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(std::min<int64_t>(n - i, 8))), lane);
    const __m256 v = _mm256_maskload_ps(x + i, m);
    const __m256 u2 = _mm256_mul_ps(c2, _mm256_fmadd_ps(_mm256_mul_ps(cubic, v), _mm256_mul_ps(v, v), v));
    _mm256_maskstore_ps(x + i, m, _mm256_div_ps(v, _mm256_add_ps(one, exp_avx2(u2))));
  }
}
#endif

}  // namespace

void gelu_tanh(float* x, int64_t n) {
#if defined(__x86_64__)
  if (cpu_features().avx512) return gelu_tanh_avx512(x, n);
  if (cpu_features().avx2) return gelu_tanh_avx2(x, n);
#endif
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i];
    x[i] = v / (1.0f + std::exp(-2.0f * kGeluC * (v + kGeluCubic * v * v * v)));
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

namespace {

#if defined(__x86_64__)
#define CML_KERNEL_AVX512 __attribute__((target("avx512f,fma")))

// Dot product and y += a·x over one head (n = head size), 16 lanes at a time with a fixed lane-wise order.
CML_KERNEL_AVX512 float dot_avx512(const float* a, const float* b, int64_t n) {
  __m512 acc = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) acc = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc);
  if (i < n) {
    const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1);
    acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), acc);
  }
  return _mm512_reduce_add_ps(acc);
}
CML_KERNEL_AVX512 void axpy_avx512(float* y, float a, const float* x, int64_t n) {
  const __m512 av = _mm512_set1_ps(a);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm512_storeu_ps(y + i, _mm512_fmadd_ps(av, _mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i)));
  if (i < n) {
    const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1);
    _mm512_mask_storeu_ps(y + i, m,
                          _mm512_fmadd_ps(av, _mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i)));
  }
}

// One query head against `len` cached positions, for heads of at most 16·NB values: the query and the
// output stay in registers, scores are computed four positions at a time, then one softmax and one pass
// over the values. Per position the arithmetic is exactly that of dot_avx512 / axpy_avx512 (same lanes,
// same order), so results equal the per-position form bit for bit.
template <int NB>
CML_KERNEL_AVX512 void head_attention_avx512(const float* qh, const float* k, const float* v, int64_t stride,
                                             int64_t len, int64_t hd, float div, float* att, float* oh) {
  const int64_t tail = hd - 16 * (NB - 1);  // 1..16 values in the last block
  const __mmask16 last = static_cast<__mmask16>(tail == 16 ? 0xffffu : (1u << tail) - 1);
  auto mask = [&](int b) { return b == NB - 1 ? last : static_cast<__mmask16>(0xffff); };
  __m512 q[NB];
  for (int b = 0; b < NB; ++b) q[b] = _mm512_maskz_loadu_ps(mask(b), qh + 16 * b);
  int64_t p = 0;
  for (; p + 4 <= len; p += 4) {
    const float* k0 = k + p * stride;
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (int b = 0; b < NB; ++b) {
      const __mmask16 m = mask(b);
      a0 = _mm512_fmadd_ps(q[b], _mm512_maskz_loadu_ps(m, k0 + 16 * b), a0);
      a1 = _mm512_fmadd_ps(q[b], _mm512_maskz_loadu_ps(m, k0 + stride + 16 * b), a1);
      a2 = _mm512_fmadd_ps(q[b], _mm512_maskz_loadu_ps(m, k0 + 2 * stride + 16 * b), a2);
      a3 = _mm512_fmadd_ps(q[b], _mm512_maskz_loadu_ps(m, k0 + 3 * stride + 16 * b), a3);
    }
    att[p] = _mm512_reduce_add_ps(a0) / div;
    att[p + 1] = _mm512_reduce_add_ps(a1) / div;
    att[p + 2] = _mm512_reduce_add_ps(a2) / div;
    att[p + 3] = _mm512_reduce_add_ps(a3) / div;
  }
  for (; p < len; ++p) {
    __m512 a = _mm512_setzero_ps();
    for (int b = 0; b < NB; ++b) a = _mm512_fmadd_ps(q[b], _mm512_maskz_loadu_ps(mask(b), k + p * stride + 16 * b), a);
    att[p] = _mm512_reduce_add_ps(a) / div;
  }
  softmax(att, len);
  __m512 o[NB];
  for (int b = 0; b < NB; ++b) o[b] = _mm512_setzero_ps();
  for (p = 0; p < len; ++p) {
    const __m512 w = _mm512_set1_ps(att[p]);
    const float* vp = v + p * stride;
    for (int b = 0; b < NB; ++b) o[b] = _mm512_fmadd_ps(w, _mm512_maskz_loadu_ps(mask(b), vp + 16 * b), o[b]);
  }
  for (int b = 0; b < NB; ++b) _mm512_mask_storeu_ps(oh + 16 * b, mask(b), o[b]);
}

#define CML_KERNEL_AVX2 __attribute__((target("avx2,fma")))

// The AVX-512 head kernel's arithmetic in 8-lane halves (each 16-lane block is a low and a high half, the
// reduction repeats _mm512_reduce_add_ps), so AVX2 hosts compute the same bits.
template <int NB>
CML_KERNEL_AVX2 void head_attention_avx2(const float* qh, const float* k, const float* v, int64_t stride, int64_t len,
                                         int64_t hd, float div, float* att, float* oh) {
  constexpr int H = 2 * NB;  // 8-lane halves
  // Lane masks of each half: all lanes below hd (masked lanes load as zero and are never stored).
  __m256i m[H];
  for (int h = 0; h < H; ++h) {
    const int64_t n = std::clamp<int64_t>(hd - 8 * h, 0, 8);
    m[h] = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  __m256 q[H];
  for (int h = 0; h < H; ++h) q[h] = _mm256_maskload_ps(qh + 8 * h, m[h]);
  int64_t p = 0;
  for (; p + 2 <= len; p += 2) {
    const float* k0 = k + p * stride;
    __m256 a0lo = _mm256_setzero_ps(), a0hi = a0lo, a1lo = a0lo, a1hi = a0lo;
    for (int b = 0; b < NB; ++b) {
      a0lo = _mm256_fmadd_ps(q[2 * b], _mm256_maskload_ps(k0 + 16 * b, m[2 * b]), a0lo);
      a0hi = _mm256_fmadd_ps(q[2 * b + 1], _mm256_maskload_ps(k0 + 16 * b + 8, m[2 * b + 1]), a0hi);
      a1lo = _mm256_fmadd_ps(q[2 * b], _mm256_maskload_ps(k0 + stride + 16 * b, m[2 * b]), a1lo);
      a1hi = _mm256_fmadd_ps(q[2 * b + 1], _mm256_maskload_ps(k0 + stride + 16 * b + 8, m[2 * b + 1]), a1hi);
    }
    att[p] = internal::reduce16_avx2(a0lo, a0hi) / div;
    att[p + 1] = internal::reduce16_avx2(a1lo, a1hi) / div;
  }
  for (; p < len; ++p) {
    const float* kp = k + p * stride;
    __m256 lo = _mm256_setzero_ps(), hi = lo;
    for (int b = 0; b < NB; ++b) {
      lo = _mm256_fmadd_ps(q[2 * b], _mm256_maskload_ps(kp + 16 * b, m[2 * b]), lo);
      hi = _mm256_fmadd_ps(q[2 * b + 1], _mm256_maskload_ps(kp + 16 * b + 8, m[2 * b + 1]), hi);
    }
    att[p] = internal::reduce16_avx2(lo, hi) / div;
  }
  softmax(att, len);
  __m256 o[H];
  for (int h = 0; h < H; ++h) o[h] = _mm256_setzero_ps();
  for (p = 0; p < len; ++p) {
    const __m256 w = _mm256_set1_ps(att[p]);
    const float* vp = v + p * stride;
    for (int h = 0; h < H; ++h) o[h] = _mm256_fmadd_ps(w, _mm256_maskload_ps(vp + 8 * h, m[h]), o[h]);
  }
  for (int h = 0; h < H; ++h) _mm256_maskstore_ps(oh + 8 * h, m[h], o[h]);
}

using HeadAttentionFn = void (*)(const float*, const float*, const float*, int64_t, int64_t, int64_t, float, float*,
                                 float*);

// The register-resident kernel for heads of up to 128 values (AVX-512, else AVX2), or null.
HeadAttentionFn head_attention_kernel(int64_t hd) {
  if (hd < 1 || hd > 128) return nullptr;
  static constexpr HeadAttentionFn kAvx512[8] = {
      head_attention_avx512<1>, head_attention_avx512<2>, head_attention_avx512<3>, head_attention_avx512<4>,
      head_attention_avx512<5>, head_attention_avx512<6>, head_attention_avx512<7>, head_attention_avx512<8>};
  static constexpr HeadAttentionFn kAvx2[8] = {head_attention_avx2<1>, head_attention_avx2<2>, head_attention_avx2<3>,
                                               head_attention_avx2<4>, head_attention_avx2<5>, head_attention_avx2<6>,
                                               head_attention_avx2<7>, head_attention_avx2<8>};
  if (cpu_features().avx512) return kAvx512[(hd + 15) / 16 - 1];
  if (cpu_features().avx2) return kAvx2[(hd + 15) / 16 - 1];
  return nullptr;
}
#endif

float head_dot(const float* a, const float* b, int64_t n) {
#if defined(__x86_64__)
  if (cpu_features().avx512) return dot_avx512(a, b, n);
#endif
  float d = 0.0f;
  for (int64_t i = 0; i < n; ++i) d += a[i] * b[i];
  return d;
}

void head_axpy(float* y, float a, const float* x, int64_t n) {
#if defined(__x86_64__)
  if (cpu_features().avx512) return axpy_avx512(y, a, x, n);
#endif
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

// One query head against `len` positions, one position at a time (heads the kernels above do not cover).
void head_attention(const float* qh, const float* k, const float* v, int64_t stride, int64_t len, int64_t hd, float div,
                    float* att, float* oh) {
  for (int64_t p = 0; p < len; ++p) att[p] = head_dot(qh, k + p * stride, hd) / div;
  softmax(att, len);
  std::fill(oh, oh + hd, 0.0f);
  for (int64_t p = 0; p < len; ++p) head_axpy(oh, att[p], v + p * stride, hd);
}

}  // namespace

void attention(const AttentionShape& s, const float* q, int64_t q_stride, int64_t n_tokens, int64_t start_pos,
               const float* k, const float* v, int64_t kv_stride, float* out, int64_t out_stride, ThreadPool* pool) {
  const float div = std::sqrt(static_cast<float>(s.head_dim));
  const int64_t group = s.n_heads / s.n_kv_heads;
  const int64_t hd = s.head_dim;
  const int64_t ctx = start_pos + n_tokens;
  HeadAttentionFn head = head_attention;
#if defined(__x86_64__)
  if (HeadAttentionFn f = head_attention_kernel(hd)) head = f;
#endif
  auto one = [&](int64_t task, std::vector<float>& att) {
    const int64_t t = task / s.n_heads, h = task % s.n_heads;
    const int64_t kvh = h / group;
    const int64_t len = start_pos + t + 1;
    att.resize(static_cast<size_t>(len));
    head(q + t * q_stride + h * hd, k + kvh * hd, v + kvh * hd, kv_stride, len, hd, div, att.data(),
         out + t * out_stride + h * hd);
  };
  const int64_t tasks = n_tokens * s.n_heads;
  // Jobs under ~1M multiply-adds (a decode step up to a context of ~680 for GPT-2 small's 12 heads of 64)
  // run inline: they take tens of microseconds, about what waking a sleeping worker costs.
  if (pool == nullptr || pool->size() == 1 || 2 * tasks * ctx * hd < (int64_t(1) << 20)) {
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
