#include "tensor/linear.h"

#if defined(__GNUC__) && !defined(__clang__)
// GCC 12 reports false positives inside its own AVX-512 intrinsic headers.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <type_traits>
#include <vector>

#include "tensor/half.h"
#include "tensor/reduce_avx2.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace cml::tensor {

namespace {

// A per-thread scratch buffer of floats, 64-byte aligned, that only grows.
class AlignedScratch {
 public:
  float* get(size_t n) {
    if (n > cap_) {
      const size_t bytes = (n * sizeof(float) + 63) / 64 * 64;
      float* p = static_cast<float*>(std::aligned_alloc(64, bytes));
      if (p == nullptr) throw std::bad_alloc();
      data_.reset(p);
      cap_ = bytes / sizeof(float);
    }
    return data_.get();
  }

 private:
  struct Free {
    void operator()(float* p) const { std::free(p); }
  };
  std::unique_ptr<float, Free> data_;
  size_t cap_ = 0;
};

// ---- portable decode kernels -------------------------------------------------------------------------

template <DType D>
inline float load1(const void* base, int64_t i) {
  if constexpr (D == DType::kF32) return static_cast<const float*>(base)[i];
  if constexpr (D == DType::kBF16) return bf16_to_f32(static_cast<const uint16_t*>(base)[i]);
  if constexpr (D == DType::kF16) return f16_to_f32(static_cast<const uint16_t*>(base)[i]);
  return 0.0f;
}

template <DType D>
void dot_portable(const WeightView& w, const float* x, int64_t ldx, int64_t rows, float* y, int64_t ldy, int64_t ob,
                  int64_t oe) {
  const size_t esz = dtype_size(D);
  for (int64_t o = ob; o < oe; ++o) {
    const void* row = static_cast<const char*>(w.data) + static_cast<size_t>(o * w.in) * esz;
    for (int64_t r = 0; r < rows; ++r) {
      const float* xr = x + r * ldx;
      float acc = 0.0f;
      for (int64_t k = 0; k < w.in; ++k) acc += load1<D>(row, k) * xr[k];
      y[r * ldy + o] = acc;
    }
  }
}

template <DType D>
void axpy_portable(const WeightView& w, const float* x, int64_t ldx, int64_t rows, float* y, int64_t ldy, int64_t ob,
                   int64_t oe) {
  const size_t esz = dtype_size(D);
  for (int64_t r = 0; r < rows; ++r) std::fill(y + r * ldy + ob, y + r * ldy + oe, 0.0f);
  for (int64_t k = 0; k < w.in; ++k) {
    const void* wk = static_cast<const char*>(w.data) + static_cast<size_t>(k * w.out) * esz;
    for (int64_t r = 0; r < rows; ++r) {
      const float xs = x[r * ldx + k];
      float* yr = y + r * ldy;
      for (int64_t o = ob; o < oe; ++o) yr[o] += xs * load1<D>(wk, o);
    }
  }
}

// Calls f(std::integral_constant<int, R>{}) with R = rows, for 1 <= rows <= kGemvMaxRows: each group size
// has its own kernel instance.
template <typename F>
void with_rows(int64_t rows, F&& f) {
  switch (rows) {
    case 1:
      return f(std::integral_constant<int, 1>{});
    case 2:
      return f(std::integral_constant<int, 2>{});
    case 3:
      return f(std::integral_constant<int, 3>{});
    case 4:
      return f(std::integral_constant<int, 4>{});
    case 5:
      return f(std::integral_constant<int, 5>{});
    case 6:
      return f(std::integral_constant<int, 6>{});
    case 7:
      return f(std::integral_constant<int, 7>{});
    case 8:
      return f(std::integral_constant<int, 8>{});
    default:
      std::abort();
  }
}

// ---- AVX-512 decode kernels --------------------------------------------------------------------------
#if defined(__x86_64__)
#define CML_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,fma")))

template <DType D>
CML_AVX512 inline __m512 load16(const void* base, int64_t i) {
  if constexpr (D == DType::kF32) {
    return _mm512_loadu_ps(static_cast<const float*>(base) + i);
  } else if constexpr (D == DType::kBF16) {
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(static_cast<const uint16_t*>(base) + i));
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  } else {
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(static_cast<const uint16_t*>(base) + i));
    return _mm512_cvtph_ps(h);
  }
}

template <DType D>
CML_AVX512 inline __m512 load16_masked(const void* base, int64_t i, __mmask16 m) {
  if constexpr (D == DType::kF32) {
    return _mm512_maskz_loadu_ps(m, static_cast<const float*>(base) + i);
  } else if constexpr (D == DType::kBF16) {
    const __m256i h = _mm256_maskz_loadu_epi16(m, static_cast<const uint16_t*>(base) + i);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  } else {
    const __m256i h = _mm256_maskz_loadu_epi16(m, static_cast<const uint16_t*>(base) + i);
    return _mm512_cvtph_ps(h);
  }
}

// The dot form reads W one output row after another, and the hardware prefetcher alone did not keep up:
// GPT-2's output head ([50257, 768] F32, one thread, bench_tensor BM_GemvHead, Zen 5 VM, alternating
// runs) took 6.3–7.0 ms for one row of x (22–24 GB/s of a 35 GB/s streaming bound) and 12.1–13.8 ms for
// four. So each pass over a row also prefetches the same bytes of the row kDotAhead outputs on: 4.9–5.0
// and 10.1–10.8 ms (x then still 16-byte aligned; with linear_gemv's aligned copy the four rows take
// 5.5–5.8 ms). Prefetching changes no arithmetic, so the numbers stay the same.
constexpr int64_t kDotAhead = 4;

// The row kDotAhead rows after `row` (rows of row_bytes), or null when that is past the range's end.
__attribute__((always_inline)) inline const char* dot_ahead(const void* row, int64_t o, int64_t oe, size_t row_bytes) {
  return o + kDotAhead < oe ? static_cast<const char*>(row) + kDotAhead * row_bytes : nullptr;
}

// Prefetches the cache lines of `ahead`'s bytes [at, at + n), if there is such a row. Both helpers are
// always_inline: as plain inline functions GCC 12 neither inlined them into the kernels (other target
// options) nor called them, and the kernels came out without a single prefetch (objdump).
__attribute__((always_inline)) inline void prefetch_ahead(const char* ahead, size_t at, size_t n) {
  if (ahead == nullptr) return;
  for (size_t b = 0; b < n; b += 64) _mm_prefetch(ahead + at + b, _MM_HINT_T0);
}

// 64 bytes of BF16 weights, loaded by an instruction of its own. The BF16 dot kernel takes the even and
// the odd weights from one load with a shift and an AND, and GCC 12 folds the load into both (vpslld
// zmm, m512 and vpandd zmm, m512); on the Zen 5 VM that form ran the kernel 1.5× slower (bench_tensor
// BM_Gemv BF16 dot form, alternating: one thread 3.2–3.6 → 2.1–2.4 ms, two 1.6–1.7 → 1.15–1.37). The
// BF16 axpy kernel did not gain from it (2.6–3.1 ms either way) and keeps the folded form. The empty asm
// only hides the register's origin from the compiler; it emits nothing.
CML_AVX512 inline __m512i load512_in_register(const void* p) {
  __m512i v = _mm512_loadu_si512(p);
  __asm__("" : "+v"(v));
  return v;
}

// Dot-product form (W [out, in]): two accumulators per row (even and odd 16-blocks), fixed reduction.
// The inputs past the last full 32-block (in natural order) for P rows.
template <DType D, int P>
CML_AVX512 inline void dot_tail_avx512(const void* row, const float* x, int64_t ldx, int64_t full, int64_t rem,
                                       __m512 (&a0)[P], __m512 (&a1)[P]) {
  const __mmask16 m0 = rem >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << rem) - 1);
  const __m512 w0 = load16_masked<D>(row, full, m0);
  for (int r = 0; r < P; ++r) a0[r] = _mm512_fmadd_ps(w0, _mm512_maskz_loadu_ps(m0, x + r * ldx + full), a0[r]);
  if (rem > 16) {
    const __mmask16 m1 = static_cast<__mmask16>((1u << (rem - 16)) - 1);
    const __m512 w1 = load16_masked<D>(row, full + 16, m1);
    for (int r = 0; r < P; ++r) a1[r] = _mm512_fmadd_ps(w1, _mm512_maskz_loadu_ps(m1, x + r * ldx + full + 16), a1[r]);
  }
}

// One output for P rows of x; `ahead` is the row to prefetch alongside (dot_ahead), or null.
template <DType D, int P>
CML_AVX512 inline void dot_one_avx512(const char* row, const char* ahead, const float* x, int64_t ldx, int64_t full,
                                      int64_t rem, float* y, int64_t ldy) {
  const size_t esz = dtype_size(D);
  __m512 a0[P], a1[P];
  for (int r = 0; r < P; ++r) a0[r] = a1[r] = _mm512_setzero_ps();
  for (int64_t k = 0; k < full; k += 32) {
    prefetch_ahead(ahead, static_cast<size_t>(k) * esz, 32 * esz);
    const __m512 w0 = load16<D>(row, k);
    const __m512 w1 = load16<D>(row, k + 16);
    for (int r = 0; r < P; ++r) {
      a0[r] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(x + r * ldx + k), a0[r]);
      a1[r] = _mm512_fmadd_ps(w1, _mm512_loadu_ps(x + r * ldx + k + 16), a1[r]);
    }
  }
  if (rem > 0) dot_tail_avx512<D, P>(row, x, ldx, full, rem, a0, a1);
  for (int r = 0; r < P; ++r) y[r * ldy] = _mm512_reduce_add_ps(_mm512_add_ps(a0[r], a1[r]));
}

template <DType D, int R>
CML_AVX512 void dot_avx512(const WeightView& w, const float* x, int64_t ldx, float* y, int64_t ldy, int64_t ob,
                           int64_t oe) {
  const int64_t full = w.in / 32 * 32;
  const size_t row_bytes = static_cast<size_t>(w.in) * dtype_size(D);
  for (int64_t o = ob; o < oe; ++o) {
    const char* row = static_cast<const char*>(w.data) + static_cast<size_t>(o) * row_bytes;
    dot_one_avx512<D, R>(row, dot_ahead(row, o, oe, row_bytes), x, ldx, full, w.in - full, y + o, ldy);
  }
}

// BF16 dot form without widening shuffles: a 64-byte load holds 32 bf16 weights; shifting each 32-bit
// lane left by 16 gives the even-indexed weights as f32, masking off the low half gives the odd ones. x is
// split the same way once per call (xs: per row, per 32-block, 16 even then 16 odd values).
template <int P>
CML_AVX512 inline void dot_one_bf16_avx512(const char* row, const char* ahead, const float* xs, int64_t ldxs,
                                           const float* x, int64_t ldx, int64_t full, int64_t rem, float* y,
                                           int64_t ldy) {
  const __m512i hi_mask = _mm512_set1_epi32(static_cast<int>(0xffff0000u));
  __m512 a0[P], a1[P];
  for (int r = 0; r < P; ++r) a0[r] = a1[r] = _mm512_setzero_ps();
  for (int64_t k = 0; k < full; k += 32) {
    prefetch_ahead(ahead, static_cast<size_t>(k) * 2, 64);
    const __m512i v = load512_in_register(row + k * 2);
    const __m512 even = _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
    const __m512 odd = _mm512_castsi512_ps(_mm512_and_si512(v, hi_mask));
    for (int r = 0; r < P; ++r) {
      a0[r] = _mm512_fmadd_ps(even, _mm512_loadu_ps(xs + r * ldxs + k), a0[r]);
      a1[r] = _mm512_fmadd_ps(odd, _mm512_loadu_ps(xs + r * ldxs + k + 16), a1[r]);
    }
  }
  if (rem > 0) dot_tail_avx512<DType::kBF16, P>(row, x, ldx, full, rem, a0, a1);
  for (int r = 0; r < P; ++r) y[r * ldy] = _mm512_reduce_add_ps(_mm512_add_ps(a0[r], a1[r]));
}

template <int R>
CML_AVX512 void dot_bf16_avx512(const WeightView& w, const float* xs, int64_t ldxs, const float* x, int64_t ldx,
                                float* y, int64_t ldy, int64_t ob, int64_t oe) {
  const int64_t full = w.in / 32 * 32;
  const size_t row_bytes = static_cast<size_t>(w.in) * 2;
  for (int64_t o = ob; o < oe; ++o) {
    const char* row = static_cast<const char*>(w.data) + static_cast<size_t>(o) * row_bytes;
    dot_one_bf16_avx512<R>(row, dot_ahead(row, o, oe, row_bytes), xs, ldxs, x, ldx, full, w.in - full, y + o, ldy);
  }
}

// Even/odd split of x for the BF16 dot kernels (dot_bf16_avx512, dot_avx2): xs[r][32b + i] = x[r][32b + 2i],
// xs[r][32b + 16 + i] = x[r][32b + 2i + 1], row stride in rounded down to 32. In a per-thread 64-byte
// aligned buffer (the kernels load it in whole vectors), valid until the thread's next call.
const float* split_even_odd(const float* x, int64_t ldx, int64_t rows, int64_t in) {
  thread_local AlignedScratch scratch;
  const int64_t full = in / 32 * 32;
  float* xs = scratch.get(static_cast<size_t>(rows * full));
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * ldx;
    float* d = xs + r * full;
    for (int64_t b = 0; b < full; b += 32) {
      for (int i = 0; i < 16; ++i) {
        d[b + i] = xr[b + 2 * i];
        d[b + 16 + i] = xr[b + 2 * i + 1];
      }
    }
  }
  return xs;
}

// Axpy form (W [in, out]): y[r, ob:oe] += x[r, k] · W[k, ob:oe] for k = 0, 1, 2, … in order. Four input
// rows are applied per pass over a 16-column block, so y is loaded and stored once per four k (the sum
// per element is still taken in k order: the same numbers as one k at a time).
template <DType D, int R>
CML_AVX512 void axpy_avx512(const WeightView& w, const float* x, int64_t ldx, float* y, int64_t ldy, int64_t ob,
                            int64_t oe) {
  const size_t esz = dtype_size(D);
  for (int r = 0; r < R; ++r) std::memset(y + r * ldy + ob, 0, static_cast<size_t>(oe - ob) * 4);
  const int64_t n = oe - ob;
  const int64_t full = n / 16 * 16;
  const __mmask16 mt = static_cast<__mmask16>((1u << (n - full)) - 1);
  const size_t row_bytes = static_cast<size_t>(w.out) * esz;
  auto row = [&](int64_t k) {
    return static_cast<const char*>(w.data) + static_cast<size_t>(k) * row_bytes + ob * esz;
  };
  int64_t k = 0;
  for (; k + 4 <= w.in; k += 4) {
    const char* w0 = row(k);
    const char* w1 = w0 + row_bytes;
    const char* w2 = w1 + row_bytes;
    const char* w3 = w2 + row_bytes;
    if (k + 8 <= w.in) {
      for (int j = 4; j < 8; ++j) {
        const char* next = row(k + j);
        for (int64_t b = 0; b < n * static_cast<int64_t>(esz) && b < 512; b += 64) _mm_prefetch(next + b, _MM_HINT_T0);
      }
    }
    int64_t o = 0;
    for (; o < full; o += 16) {
      const __m512 v0 = load16<D>(w0, o), v1 = load16<D>(w1, o), v2 = load16<D>(w2, o), v3 = load16<D>(w3, o);
      for (int r = 0; r < R; ++r) {
        const float* xr = x + r * ldx + k;
        float* yp = y + r * ldy + ob + o;
        __m512 acc = _mm512_loadu_ps(yp);
        acc = _mm512_fmadd_ps(_mm512_set1_ps(xr[0]), v0, acc);
        acc = _mm512_fmadd_ps(_mm512_set1_ps(xr[1]), v1, acc);
        acc = _mm512_fmadd_ps(_mm512_set1_ps(xr[2]), v2, acc);
        acc = _mm512_fmadd_ps(_mm512_set1_ps(xr[3]), v3, acc);
        _mm512_storeu_ps(yp, acc);
      }
    }
    if (mt) {
      const __m512 v0 = load16_masked<D>(w0, o, mt), v1 = load16_masked<D>(w1, o, mt), v2 = load16_masked<D>(w2, o, mt),
                   v3 = load16_masked<D>(w3, o, mt);
      for (int r = 0; r < R; ++r) {
        const float* xr = x + r * ldx + k;
        float* yp = y + r * ldy + ob + o;
        __m512 acc = _mm512_maskz_loadu_ps(mt, yp);
        acc = _mm512_fmadd_ps(_mm512_set1_ps(xr[0]), v0, acc);
        acc = _mm512_fmadd_ps(_mm512_set1_ps(xr[1]), v1, acc);
        acc = _mm512_fmadd_ps(_mm512_set1_ps(xr[2]), v2, acc);
        acc = _mm512_fmadd_ps(_mm512_set1_ps(xr[3]), v3, acc);
        _mm512_mask_storeu_ps(yp, mt, acc);
      }
    }
  }
  for (; k < w.in; ++k) {
    const char* wk = row(k);
    int64_t o = 0;
    for (; o < full; o += 16) {
      const __m512 wv = load16<D>(wk, o);
      for (int r = 0; r < R; ++r) {
        float* yp = y + r * ldy + ob + o;
        _mm512_storeu_ps(yp, _mm512_fmadd_ps(_mm512_set1_ps(x[r * ldx + k]), wv, _mm512_loadu_ps(yp)));
      }
    }
    if (mt) {
      const __m512 wv = load16_masked<D>(wk, o, mt);
      for (int r = 0; r < R; ++r) {
        float* yp = y + r * ldy + ob + o;
        _mm512_mask_storeu_ps(yp, mt,
                              _mm512_fmadd_ps(_mm512_set1_ps(x[r * ldx + k]), wv, _mm512_maskz_loadu_ps(mt, yp)));
      }
    }
  }
}

// BF16 axpy form with the same even/odd split as dot_bf16_avx512: a 64-byte load covers 32 outputs; the
// even and odd outputs accumulate in separate 16-lane blocks of a scratch buffer (per 32-block: 16 even,
// then 16 odd), put back in order at the end. Per element the sum is the same k-ordered chain of FMAs as
// axpy_avx512, so the numbers are identical; only the lanes differ.
template <int R>
CML_AVX512 void axpy_bf16_avx512(const WeightView& w, const float* x, int64_t ldx, float* y, int64_t ldy, int64_t ob,
                                 int64_t oe) {
  const int64_t n = oe - ob;
  const int64_t full = n / 32 * 32;
  if (full < n) axpy_avx512<DType::kBF16, R>(w, x, ldx, y, ldy, ob + full, oe);
  if (full == 0) return;
  thread_local std::vector<float> acc_buf;
  acc_buf.assign(static_cast<size_t>(R * full), 0.0f);
  float* acc = acc_buf.data();
  const __m512i hi_mask = _mm512_set1_epi32(static_cast<int>(0xffff0000u));
  const uint16_t* base = static_cast<const uint16_t*>(w.data) + ob;
  int64_t k = 0;
  for (; k + 4 <= w.in; k += 4) {
    const uint16_t* w0 = base + k * w.out;
    const uint16_t* w1 = w0 + w.out;
    const uint16_t* w2 = w1 + w.out;
    const uint16_t* w3 = w2 + w.out;
    if (k + 8 <= w.in) {
      for (int j = 4; j < 8; ++j) {
        const char* next = reinterpret_cast<const char*>(base + (k + j) * w.out);
        for (int64_t b = 0; b < full * 2 && b < 512; b += 64) _mm_prefetch(next + b, _MM_HINT_T0);
      }
    }
    for (int64_t b = 0; b < full; b += 32) {
      const __m512i v0 = _mm512_loadu_si512(w0 + b), v1 = _mm512_loadu_si512(w1 + b), v2 = _mm512_loadu_si512(w2 + b),
                    v3 = _mm512_loadu_si512(w3 + b);
      const __m512 e0 = _mm512_castsi512_ps(_mm512_slli_epi32(v0, 16)),
                   o0 = _mm512_castsi512_ps(_mm512_and_si512(v0, hi_mask));
      const __m512 e1 = _mm512_castsi512_ps(_mm512_slli_epi32(v1, 16)),
                   o1 = _mm512_castsi512_ps(_mm512_and_si512(v1, hi_mask));
      const __m512 e2 = _mm512_castsi512_ps(_mm512_slli_epi32(v2, 16)),
                   o2 = _mm512_castsi512_ps(_mm512_and_si512(v2, hi_mask));
      const __m512 e3 = _mm512_castsi512_ps(_mm512_slli_epi32(v3, 16)),
                   o3 = _mm512_castsi512_ps(_mm512_and_si512(v3, hi_mask));
      for (int r = 0; r < R; ++r) {
        const float* xr = x + r * ldx + k;
        const __m512 x0 = _mm512_set1_ps(xr[0]), x1 = _mm512_set1_ps(xr[1]), x2 = _mm512_set1_ps(xr[2]),
                     x3 = _mm512_set1_ps(xr[3]);
        float* pe = acc + r * full + b;
        __m512 ae = _mm512_loadu_ps(pe), ao = _mm512_loadu_ps(pe + 16);
        ae = _mm512_fmadd_ps(x0, e0, ae);
        ao = _mm512_fmadd_ps(x0, o0, ao);
        ae = _mm512_fmadd_ps(x1, e1, ae);
        ao = _mm512_fmadd_ps(x1, o1, ao);
        ae = _mm512_fmadd_ps(x2, e2, ae);
        ao = _mm512_fmadd_ps(x2, o2, ao);
        ae = _mm512_fmadd_ps(x3, e3, ae);
        ao = _mm512_fmadd_ps(x3, o3, ao);
        _mm512_storeu_ps(pe, ae);
        _mm512_storeu_ps(pe + 16, ao);
      }
    }
  }
  for (; k < w.in; ++k) {
    const uint16_t* wk = base + k * w.out;
    for (int64_t b = 0; b < full; b += 32) {
      const __m512i v = _mm512_loadu_si512(wk + b);
      const __m512 e = _mm512_castsi512_ps(_mm512_slli_epi32(v, 16)),
                   o = _mm512_castsi512_ps(_mm512_and_si512(v, hi_mask));
      for (int r = 0; r < R; ++r) {
        const __m512 xv = _mm512_set1_ps(x[r * ldx + k]);
        float* pe = acc + r * full + b;
        _mm512_storeu_ps(pe, _mm512_fmadd_ps(xv, e, _mm512_loadu_ps(pe)));
        _mm512_storeu_ps(pe + 16, _mm512_fmadd_ps(xv, o, _mm512_loadu_ps(pe + 16)));
      }
    }
  }
  for (int r = 0; r < R; ++r) {
    const float* a = acc + r * full;
    float* yr = y + r * ldy + ob;
    for (int64_t b = 0; b < full; b += 32) {
      for (int i = 0; i < 16; ++i) {
        yr[b + 2 * i] = a[b + i];
        yr[b + 2 * i + 1] = a[b + 16 + i];
      }
    }
  }
}

// Register-tiled axpy form for several rows: a tile of R rows × 16·C columns of y stays in registers
// while k runs over every input, so y is written once and each weight is loaded once per tile (the
// k-blocked kernel above reloads and stores y every four k, which makes it load-bound beyond one row).
// Per element the sum is the same chain, k = 0, 1, 2, … with one FMA each starting from zero, so the
// numbers equal axpy_avx512's (and axpy_bf16_avx512's) exactly. `tail` masks the tile's last 16 columns.
template <DType D, int R, int C>
CML_AVX512 void axpy_tile_avx512(const char* wcol, size_t row_bytes, int64_t in, const float* x, int64_t ldx, float* y,
                                 int64_t ldy, __mmask16 tail) {
  constexpr int64_t kAhead = 12;  // rows of W prefetched ahead (the tile reads W with a stride)
  const size_t esz = dtype_size(D);
  const size_t tile_bytes = static_cast<size_t>(16 * C) * esz;
  __m512 acc[R][C];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) acc[r][c] = _mm512_setzero_ps();
  const char* wk = wcol;
  for (int64_t k = 0; k < in; ++k, wk += row_bytes) {
    if (k + kAhead < in) {
      const char* ahead = wk + kAhead * row_bytes;
      for (size_t b = 0; b < tile_bytes; b += 64) _mm_prefetch(ahead + b, _MM_HINT_T0);
    }
    __m512 v[C];
    for (int c = 0; c + 1 < C; ++c) v[c] = load16<D>(wk, 16 * c);
    v[C - 1] = tail == 0xffff ? load16<D>(wk, 16 * (C - 1)) : load16_masked<D>(wk, 16 * (C - 1), tail);
    for (int r = 0; r < R; ++r) {
      const __m512 xb = _mm512_set1_ps(x[r * ldx + k]);
      for (int c = 0; c < C; ++c) acc[r][c] = _mm512_fmadd_ps(xb, v[c], acc[r][c]);
    }
  }
  for (int r = 0; r < R; ++r) {
    float* yr = y + r * ldy;
    for (int c = 0; c + 1 < C; ++c) _mm512_storeu_ps(yr + 16 * c, acc[r][c]);
    _mm512_mask_storeu_ps(yr + 16 * (C - 1), tail, acc[r][C - 1]);
  }
}

// Columns per tile for R rows: about 24 accumulators of the 32 vector registers.
template <int R>
constexpr int axpy_tile_width() {
  return R <= 2 ? 8 : R <= 4 ? 6 : R <= 6 ? 4 : 3;
}

template <DType D, int R>
CML_AVX512 void axpy_tiled_avx512(const WeightView& w, const float* x, int64_t ldx, float* y, int64_t ldy, int64_t ob,
                                  int64_t oe) {
  constexpr int C = axpy_tile_width<R>();
  const size_t esz = dtype_size(D);
  const size_t row_bytes = static_cast<size_t>(w.out) * esz;
  const char* base = static_cast<const char*>(w.data);
  int64_t o = ob;
  for (; o + 16 * C <= oe; o += 16 * C)
    axpy_tile_avx512<D, R, C>(base + o * esz, row_bytes, w.in, x, ldx, y + o, ldy, 0xffff);
  for (; o + 16 <= oe; o += 16) axpy_tile_avx512<D, R, 1>(base + o * esz, row_bytes, w.in, x, ldx, y + o, ldy, 0xffff);
  if (o < oe) {
    const __mmask16 tail = static_cast<__mmask16>((1u << (oe - o)) - 1);
    axpy_tile_avx512<D, R, 1>(base + o * esz, row_bytes, w.in, x, ldx, y + o, ldy, tail);
  }
}

template <DType D>
void gemv_avx512_group(const WeightView& w, const float* x, int64_t ldx, int64_t rows, float* y, int64_t ldy,
                       int64_t ob, int64_t oe) {
  const float* xs = nullptr;
  if constexpr (D == DType::kBF16) {
    if (!w.transposed) xs = split_even_odd(x, ldx, rows, w.in);
  }
  with_rows(rows, [&](auto rc) {
    constexpr int R = decltype(rc)::value;
    if (w.transposed && R > 1) return axpy_tiled_avx512<D, R>(w, x, ldx, y, ldy, ob, oe);
    if constexpr (D == DType::kBF16) {
      if (w.transposed) return axpy_bf16_avx512<R>(w, x, ldx, y, ldy, ob, oe);
    }
    if (w.transposed) return axpy_avx512<D, R>(w, x, ldx, y, ldy, ob, oe);
    if constexpr (D == DType::kBF16) return dot_bf16_avx512<R>(w, xs, w.in / 32 * 32, x, ldx, y, ldy, ob, oe);
    return dot_avx512<D, R>(w, x, ldx, y, ldy, ob, oe);
  });
}

// ---- AVX2 decode kernels -----------------------------------------------------------------------------
// The same arithmetic as the AVX-512 kernels, eight lanes at a time: a 16-lane accumulator is two 8-lane
// halves, every product is one FMA in the same order, and the dot form's final reduction repeats
// _mm512_reduce_add_ps step by step. So a stage on an AVX2 host computes the same bits as one on an
// AVX-512 host (LinearTest.GemvMatchesTheAvx512Arithmetic checks both against a scalar model).
#define CML_AVX2 __attribute__((target("avx2,fma,f16c")))

template <DType D>
CML_AVX2 inline __m256 load8(const void* base, int64_t i) {
  if constexpr (D == DType::kF32) {
    return _mm256_loadu_ps(static_cast<const float*>(base) + i);
  } else if constexpr (D == DType::kBF16) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(base) + i));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  } else {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(base) + i));
    return _mm256_cvtph_ps(h);
  }
}

// Elements i .. i+n-1 (n < 8) as f32, the other lanes zero (as the AVX-512 kernels' masked loads).
template <DType D>
CML_AVX2 inline __m256 load8_partial(const void* base, int64_t i, int64_t n) {
  alignas(32) float t[8] = {};
  for (int64_t j = 0; j < n; ++j) t[j] = load1<D>(base, i + j);
  return _mm256_load_ps(t);
}

// Elements i .. i+n-1 of a 16-lane block (n <= 16) as two halves, zero beyond n.
template <DType D>
CML_AVX2 inline void load16_partial(const void* base, int64_t i, int64_t n, __m256& lo, __m256& hi) {
  lo = n >= 8 ? load8<D>(base, i) : load8_partial<D>(base, i, n);
  hi = n > 8 ? (n >= 16 ? load8<D>(base, i + 8) : load8_partial<D>(base, i + 8, n - 8)) : _mm256_setzero_ps();
}

// The masked tail of a dot-form row (rem = in mod 32 elements from `full`), as dot_avx512 does it.
template <DType D, int R>
CML_AVX2 inline void dot_tail_avx2(const void* row, const float* x, int64_t ldx, int64_t full, int64_t rem,
                                   __m256 (&a)[R][4]) {
  __m256 wl, wh;
  load16_partial<D>(row, full, std::min<int64_t>(rem, 16), wl, wh);
  for (int r = 0; r < R; ++r) {
    __m256 xl, xh;
    load16_partial<DType::kF32>(x + r * ldx, full, std::min<int64_t>(rem, 16), xl, xh);
    a[r][0] = _mm256_fmadd_ps(wl, xl, a[r][0]);
    a[r][1] = _mm256_fmadd_ps(wh, xh, a[r][1]);
  }
  if (rem > 16) {
    load16_partial<D>(row, full + 16, rem - 16, wl, wh);
    for (int r = 0; r < R; ++r) {
      __m256 xl, xh;
      load16_partial<DType::kF32>(x + r * ldx, full + 16, rem - 16, xl, xh);
      a[r][2] = _mm256_fmadd_ps(wl, xl, a[r][2]);
      a[r][3] = _mm256_fmadd_ps(wh, xh, a[r][3]);
    }
  }
}

// One output of the dot form for R rows (dot_avx512's arithmetic in halves: a[r] = {even 16-block lanes
// 0-7, 8-15, odd 16-block lanes 0-7, 8-15}). For BF16 the weights come split into even and odd elements of
// each 32-block (as dot_bf16_avx512 has them) and x as split_even_odd left it (xs), the tail in natural order.
// `ahead` is the row to prefetch alongside (dot_ahead), or null.
template <DType D, int R>
CML_AVX2 inline void dot_one_avx2(const void* row, const char* ahead, const float* xs, int64_t ldxs, const float* x,
                                  int64_t ldx, int64_t full, int64_t rem, float* y, int64_t ldy) {
  constexpr size_t esz = D == DType::kF32 ? 4 : 2;
  __m256 a[R][4];
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < 4; ++j) a[r][j] = _mm256_setzero_ps();
  for (int64_t k = 0; k < full; k += 32) {
    prefetch_ahead(ahead, static_cast<size_t>(k) * esz, 32 * esz);
    __m256 w0, w1, w2, w3;
    if constexpr (D == DType::kBF16) {
      const __m256i hi_mask = _mm256_set1_epi32(static_cast<int>(0xffff0000u));
      const uint16_t* h = static_cast<const uint16_t*>(row) + k;
      const __m256i v0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(h));
      const __m256i v1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(h + 16));
      w0 = _mm256_castsi256_ps(_mm256_slli_epi32(v0, 16));
      w1 = _mm256_castsi256_ps(_mm256_slli_epi32(v1, 16));
      w2 = _mm256_castsi256_ps(_mm256_and_si256(v0, hi_mask));
      w3 = _mm256_castsi256_ps(_mm256_and_si256(v1, hi_mask));
    } else {
      w0 = load8<D>(row, k), w1 = load8<D>(row, k + 8), w2 = load8<D>(row, k + 16), w3 = load8<D>(row, k + 24);
    }
    for (int r = 0; r < R; ++r) {
      const float* xr = xs + r * ldxs + k;
      a[r][0] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(xr), a[r][0]);
      a[r][1] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(xr + 8), a[r][1]);
      a[r][2] = _mm256_fmadd_ps(w2, _mm256_loadu_ps(xr + 16), a[r][2]);
      a[r][3] = _mm256_fmadd_ps(w3, _mm256_loadu_ps(xr + 24), a[r][3]);
    }
  }
  if (rem > 0) dot_tail_avx2<D, R>(row, x, ldx, full, rem, a);
  for (int r = 0; r < R; ++r)
    y[r * ldy] = internal::reduce16_avx2(_mm256_add_ps(a[r][0], a[r][2]), _mm256_add_ps(a[r][1], a[r][3]));
}

// The dot form, rows two at a time per output (8 accumulators of the 16 registers; more rows at once
// spill), so each weight row is read from memory once and from L1 for the other row pairs.
template <DType D, int R>
CML_AVX2 void dot_avx2(const WeightView& w, const float* xs, int64_t ldxs, const float* x, int64_t ldx, float* y,
                       int64_t ldy, int64_t ob, int64_t oe) {
  const size_t esz = dtype_size(D);
  const int64_t in = w.in, full = in / 32 * 32, rem = in - full;
  for (int64_t o = ob; o < oe; ++o) {
    const void* row = static_cast<const char*>(w.data) + static_cast<size_t>(o * in) * esz;
    const char* ahead = dot_ahead(row, o, oe, static_cast<size_t>(in) * esz);  // by the first pass only
    int r = 0;
    for (; r + 2 <= R; r += 2) {
      dot_one_avx2<D, 2>(row, r == 0 ? ahead : nullptr, xs + r * ldxs, ldxs, x + r * ldx, ldx, full, rem,
                         y + r * ldy + o, ldy);
    }
    if (r < R) {
      dot_one_avx2<D, 1>(row, r == 0 ? ahead : nullptr, xs + r * ldxs, ldxs, x + r * ldx, ldx, full, rem,
                         y + r * ldy + o, ldy);
    }
  }
}

// Axpy form for several rows: y[r, ob:oe] = Σ_k x[r, k] · W[k, ob:oe], per element one FMA per k in k
// order from zero (as every AVX-512 axpy kernel). Columns go in blocks of 1024; within a block, k steps
// by eight: eight weight vectors are loaded once and applied to every row's 8 columns of y, so y is read
// and written once per eight inputs and W is read in 4 KiB row segments. (A register tile over all k, as
// the AVX-512 kernel has, is only 16 columns wide with AVX2's 16 registers: a 64-byte stride through W,
// one page per k. It ran 4 rows in 42 ms against this kernel's 14 ms in bench_tensor.)
template <DType D, int R>
CML_AVX2 void axpy_rows_avx2(const WeightView& w, const float* x, int64_t ldx, float* y, int64_t ldy, int64_t ob,
                             int64_t oe) {
  constexpr int KS = 8;             // inputs per pass over y: eight weight vectors stay in registers
  constexpr int64_t kBlock = 1024;  // columns per block: the rows' y block (≤ 32 KiB) stays in L1/L2
  const size_t esz = dtype_size(D);
  const size_t row_bytes = static_cast<size_t>(w.out) * esz;
  for (int r = 0; r < R; ++r) std::memset(y + r * ldy + ob, 0, static_cast<size_t>(oe - ob) * 4);
  for (int64_t cb = ob; cb < oe; cb += kBlock) {
    const int64_t n = std::min(kBlock, oe - cb), full = n / 8 * 8;
    const char* base = static_cast<const char*>(w.data) + cb * esz;
    int64_t k = 0;
    for (; k + KS <= w.in; k += KS) {
      const char* wr[KS];
      for (int j = 0; j < KS; ++j) wr[j] = base + static_cast<size_t>(k + j) * row_bytes;
      // The next eight weight rows' segments, one cache line each per 64 bytes of this block: eight
      // strided streams are more than the hardware prefetcher follows.
      const bool ahead = k + 2 * KS <= w.in;
      const size_t line_elems = 64 / esz;
      int64_t o = 0;
      for (; o < full; o += 8) {
        if (ahead && static_cast<size_t>(o) % line_elems == 0) {
          for (int j = 0; j < KS; ++j) _mm_prefetch(wr[j] + KS * row_bytes + static_cast<size_t>(o) * esz, _MM_HINT_T0);
        }
        __m256 v[KS];
        for (int j = 0; j < KS; ++j) v[j] = load8<D>(wr[j], o);
        for (int r = 0; r < R; ++r) {
          const float* xr = x + r * ldx + k;
          float* yp = y + r * ldy + cb + o;
          __m256 acc = _mm256_loadu_ps(yp);
          for (int j = 0; j < KS; ++j) acc = _mm256_fmadd_ps(_mm256_broadcast_ss(xr + j), v[j], acc);
          _mm256_storeu_ps(yp, acc);
        }
      }
      for (; o < n; ++o) {
        for (int r = 0; r < R; ++r) {
          const float* xr = x + r * ldx + k;
          float& a = y[r * ldy + cb + o];
          for (int j = 0; j < KS; ++j) a = std::fma(xr[j], load1<D>(wr[j], o), a);
        }
      }
    }
    for (; k < w.in; ++k) {
      const char* wk = base + static_cast<size_t>(k) * row_bytes;
      int64_t o = 0;
      for (; o < full; o += 8) {
        const __m256 v = load8<D>(wk, o);
        for (int r = 0; r < R; ++r) {
          float* yp = y + r * ldy + cb + o;
          _mm256_storeu_ps(yp, _mm256_fmadd_ps(_mm256_broadcast_ss(x + r * ldx + k), v, _mm256_loadu_ps(yp)));
        }
      }
      for (; o < n; ++o) {
        for (int r = 0; r < R; ++r)
          y[r * ldy + cb + o] = std::fma(x[r * ldx + k], load1<D>(wk, o), y[r * ldy + cb + o]);
      }
    }
  }
}

// One row: k in blocks of four over 8-column blocks of y (y is loaded and stored once per four k).
template <DType D>
CML_AVX2 void axpy1_avx2(const WeightView& w, const float* x, float* y, int64_t ob, int64_t oe) {
  const size_t esz = dtype_size(D);
  const int64_t n = oe - ob, full = n / 8 * 8;
  std::memset(y + ob, 0, static_cast<size_t>(n) * 4);
  const size_t row_bytes = static_cast<size_t>(w.out) * esz;
  const char* base = static_cast<const char*>(w.data) + ob * esz;
  int64_t k = 0;
  for (; k + 4 <= w.in; k += 4) {
    const char* w0 = base + static_cast<size_t>(k) * row_bytes;
    const char *w1 = w0 + row_bytes, *w2 = w1 + row_bytes, *w3 = w2 + row_bytes;
    if (k + 8 <= w.in) {
      for (int j = 4; j < 8; ++j) {
        const char* next = w0 + j * row_bytes;
        for (int64_t b = 0; b < n * static_cast<int64_t>(esz) && b < 512; b += 64) _mm_prefetch(next + b, _MM_HINT_T0);
      }
    }
    const __m256 x0 = _mm256_set1_ps(x[k]), x1 = _mm256_set1_ps(x[k + 1]), x2 = _mm256_set1_ps(x[k + 2]),
                 x3 = _mm256_set1_ps(x[k + 3]);
    int64_t o = 0;
    for (; o < full; o += 8) {
      __m256 acc = _mm256_loadu_ps(y + ob + o);
      acc = _mm256_fmadd_ps(x0, load8<D>(w0, o), acc);
      acc = _mm256_fmadd_ps(x1, load8<D>(w1, o), acc);
      acc = _mm256_fmadd_ps(x2, load8<D>(w2, o), acc);
      acc = _mm256_fmadd_ps(x3, load8<D>(w3, o), acc);
      _mm256_storeu_ps(y + ob + o, acc);
    }
    for (; o < n; ++o) {
      float a = y[ob + o];
      a = std::fma(x[k], load1<D>(w0, o), a);
      a = std::fma(x[k + 1], load1<D>(w1, o), a);
      a = std::fma(x[k + 2], load1<D>(w2, o), a);
      a = std::fma(x[k + 3], load1<D>(w3, o), a);
      y[ob + o] = a;
    }
  }
  for (; k < w.in; ++k) {
    const char* wk = base + static_cast<size_t>(k) * row_bytes;
    const __m256 xk = _mm256_set1_ps(x[k]);
    int64_t o = 0;
    for (; o < full; o += 8)
      _mm256_storeu_ps(y + ob + o, _mm256_fmadd_ps(xk, load8<D>(wk, o), _mm256_loadu_ps(y + ob + o)));
    for (; o < n; ++o) y[ob + o] = std::fma(x[k], load1<D>(wk, o), y[ob + o]);
  }
}

template <DType D, int R>
CML_AVX2 void axpy_avx2(const WeightView& w, const float* x, int64_t ldx, float* y, int64_t ldy, int64_t ob,
                        int64_t oe) {
  if constexpr (R == 1) {
    axpy1_avx2<D>(w, x, y, ob, oe);
  } else {
    axpy_rows_avx2<D, R>(w, x, ldx, y, ldy, ob, oe);
  }
}

template <DType D>
void gemv_avx2_group(const WeightView& w, const float* x, int64_t ldx, int64_t rows, float* y, int64_t ldy, int64_t ob,
                     int64_t oe) {
  const float* xs = nullptr;
  if constexpr (D == DType::kBF16) {
    if (!w.transposed) xs = split_even_odd(x, ldx, rows, w.in);
  }
  with_rows(rows, [&](auto rc) {
    constexpr int R = decltype(rc)::value;
    if (w.transposed) return axpy_avx2<D, R>(w, x, ldx, y, ldy, ob, oe);
    if constexpr (D == DType::kBF16) return dot_avx2<D, R>(w, xs, w.in / 32 * 32, x, ldx, y, ldy, ob, oe);
    return dot_avx2<D, R>(w, x, ldx, x, ldx, y, ldy, ob, oe);
  });
}
#endif

template <DType D>
void gemv_group(const WeightView& w, const float* x, int64_t ldx, int64_t rows, float* y, int64_t ldy, int64_t ob,
                int64_t oe) {
#if defined(__x86_64__)
  if (cpu_features().avx512) return gemv_avx512_group<D>(w, x, ldx, rows, y, ldy, ob, oe);
  if (cpu_features().avx2) return gemv_avx2_group<D>(w, x, ldx, rows, y, ldy, ob, oe);
#endif
  if (w.transposed) return axpy_portable<D>(w, x, ldx, rows, y, ldy, ob, oe);
  dot_portable<D>(w, x, ldx, rows, y, ldy, ob, oe);
}

void gemv_range(const WeightView& w, const float* x, int64_t ldx, int64_t rows, float* y, int64_t ldy, int64_t ob,
                int64_t oe) {
  for (int64_t r0 = 0; r0 < rows; r0 += kGemvMaxRows) {
    const int64_t rr = std::min(kGemvMaxRows, rows - r0);
    const float* xg = x + r0 * ldx;
    float* yg = y + r0 * ldy;
    switch (w.dtype) {
      case DType::kF32:
        gemv_group<DType::kF32>(w, xg, ldx, rr, yg, ldy, ob, oe);
        break;
      case DType::kBF16:
        gemv_group<DType::kBF16>(w, xg, ldx, rr, yg, ldy, ob, oe);
        break;
      case DType::kF16:
        gemv_group<DType::kF16>(w, xg, ldx, rr, yg, ldy, ob, oe);
        break;
      default:
        std::abort();
    }
  }
}

void blas_single_thread() {
  static std::once_flag once;
  std::call_once(once, [] { openblas_set_num_threads(1); });
}

// One column block [ob, oe) of the output through sgemm (converting half weights tile by tile).
void blas_range(const WeightView& w, const float* x, int64_t ldx, int64_t rows, float* y, int64_t ldy, int64_t ob,
                int64_t oe) {
  const int64_t n = oe - ob;
  if (w.dtype == DType::kF32) {
    const float* W = static_cast<const float*>(w.data);
    if (w.transposed) {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(rows), static_cast<int>(n),
                  static_cast<int>(w.in), 1.0f, x, static_cast<int>(ldx), W + ob, static_cast<int>(w.out), 0.0f, y + ob,
                  static_cast<int>(ldy));
    } else {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(rows), static_cast<int>(n),
                  static_cast<int>(w.in), 1.0f, x, static_cast<int>(ldx), W + ob * w.in, static_cast<int>(w.in), 0.0f,
                  y + ob, static_cast<int>(ldy));
    }
    return;
  }
  const size_t esz = dtype_size(w.dtype);
  constexpr int64_t kTileElems = 1 << 18;  // 1 MiB of f32 per tile
  std::vector<float> tile;
  if (w.transposed) {
    // Tiles of whole input rows k0..k1, columns ob..oe: accumulate partial products.
    const int64_t kt = std::max<int64_t>(1, kTileElems / std::max<int64_t>(1, n));
    tile.resize(static_cast<size_t>(std::min(kt, w.in) * n));
    for (int64_t k0 = 0; k0 < w.in; k0 += kt) {
      const int64_t k1 = std::min(w.in, k0 + kt);
      for (int64_t k = k0; k < k1; ++k) {
        convert_to_f32(w.dtype, static_cast<const char*>(w.data) + static_cast<size_t>(k * w.out + ob) * esz,
                       tile.data() + (k - k0) * n, n);
      }
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(rows), static_cast<int>(n),
                  static_cast<int>(k1 - k0), 1.0f, x + k0, static_cast<int>(ldx), tile.data(), static_cast<int>(n),
                  k0 == 0 ? 0.0f : 1.0f, y + ob, static_cast<int>(ldy));
    }
  } else {
    const int64_t ot = std::max<int64_t>(1, kTileElems / std::max<int64_t>(1, w.in));
    tile.resize(static_cast<size_t>(std::min(ot, n) * w.in));
    for (int64_t o0 = ob; o0 < oe; o0 += ot) {
      const int64_t o1 = std::min(oe, o0 + ot);
      convert_to_f32(w.dtype, static_cast<const char*>(w.data) + static_cast<size_t>(o0 * w.in) * esz, tile.data(),
                     (o1 - o0) * w.in);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(rows), static_cast<int>(o1 - o0),
                  static_cast<int>(w.in), 1.0f, x, static_cast<int>(ldx), tile.data(), static_cast<int>(w.in), 0.0f,
                  y + o0, static_cast<int>(ldy));
    }
  }
}

}  // namespace

std::string blas_core() {
  const char* c = openblas_get_corename();
  return c ? c : "";
}

bool blas_core_is_fallback() {
  if (std::getenv("OPENBLAS_CORETYPE") != nullptr) return false;
  const std::string core = blas_core();
  return cpu_features().avx512 && (core == "Prescott" || core == "Core2" || core == "Nehalem" || core == "generic");
}

const char* linear_isa() {
#if defined(__x86_64__)
  if (cpu_features().avx512) return "avx512";
  if (cpu_features().avx2) return "avx2";
#endif
  return "portable";
}

void linear_gemv(const WeightView& w, const float* x, int64_t ldx, int64_t rows, float* y, int64_t ldy,
                 ThreadPool* pool) {
  if (rows <= 0 || w.out <= 0) return;
  // The dot form loads x in 64-byte vectors (32-byte with AVX2) once per weight row, so a row of x that
  // does not start on a cache line costs two L1 reads per load. The model's activations are plain
  // std::vector<float> (16-byte aligned), and that doubled GPT-2's output head for four rows: bench_tensor
  // [50257, 768] F32, one thread, Zen 5 VM: 10.2 ms with x 16-byte aligned, 5.3 ms 64-byte aligned (one
  // row 4.3 → 3.8 ms). So such an x is first copied into aligned rows (rows × in floats, once per call).
  // BF16 weights take x through split_even_odd's aligned copy instead.
  const bool x_aligned = reinterpret_cast<uintptr_t>(x) % 64 == 0 && (rows == 1 || ldx % 16 == 0);
  if (!w.transposed && w.dtype != DType::kBF16 && !x_aligned) {
    thread_local AlignedScratch scratch;
    const int64_t ld = (w.in + 15) / 16 * 16;
    float* xa = scratch.get(static_cast<size_t>(rows * ld));
    for (int64_t r = 0; r < rows; ++r) std::memcpy(xa + r * ld, x + r * ldx, static_cast<size_t>(w.in) * sizeof(float));
    x = xa;
    ldx = ld;
  }
  // Split output features; small ops run on the calling thread (waking workers costs ~µs).
  const int64_t work = w.out * w.in * rows;
  if (pool == nullptr || pool->size() == 1 || work < (1 << 16)) return gemv_range(w, x, ldx, rows, y, ldy, 0, w.out);
  // The axpy form streams every weight row once per column range. One contiguous range per thread
  // keeps each thread's reads long runs of a row; four ranges per thread cut each row into 1–2 KiB
  // pieces read at different times, and two threads then ran no faster than one (bench_tensor, GPT-2
  // layer, F32: 9.4–9.9 ms in eight ranges, 6.6–7.4 in two; one thread 9–11).
  pool->parallel_for(
      w.out, 16, [&](int64_t b, int64_t e) { gemv_range(w, x, ldx, rows, y, ldy, b, e); }, w.transposed ? 1 : 4);
}

void linear_blas(const WeightView& w, const float* x, int64_t ldx, int64_t rows, float* y, int64_t ldy,
                 ThreadPool* pool) {
  if (rows <= 0 || w.out <= 0) return;
  blas_single_thread();
  if (w.in == 0) {
    for (int64_t r = 0; r < rows; ++r) std::fill(y + r * ldy, y + r * ldy + w.out, 0.0f);
    return;
  }
  // OpenBLAS's result for a column depends on how many columns the call covers (its kernels block and
  // treat edges by N), so the output is always cut into the same fixed tiles, whatever the thread
  // count: one thread or many, every column comes from the same sgemm call shape.
  constexpr int64_t kTile = 256;
  const int64_t tiles = (w.out + kTile - 1) / kTile;
  const auto run = [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) blas_range(w, x, ldx, rows, y, ldy, t * kTile, std::min(w.out, (t + 1) * kTile));
  };
  if (pool == nullptr || pool->size() == 1 || tiles == 1) return run(0, tiles);
  pool->parallel_for(tiles, 1, run);
}

void linear(const WeightView& w, const float* x, int64_t ldx, int64_t rows, float* y, int64_t ldy, ThreadPool* pool) {
  if (rows <= kGemvMaxRows) return linear_gemv(w, x, ldx, rows, y, ldy, pool);
  linear_blas(w, x, ldx, rows, y, ldy, pool);
}

}  // namespace cml::tensor
