// Internal to the tensor module's kernels (not installed API).
//
// _mm512_reduce_add_ps of a 16-lane vector held as two 8-lane halves (lanes 0-7, 8-15), step by step in
// the same order, so AVX2 kernels reduce to the same bits as their AVX-512 twins.
#pragma once

#if defined(__x86_64__)
#include <immintrin.h>

namespace cml::tensor::internal {

__attribute__((target("avx2"))) inline float reduce16_avx2(__m256 lo, __m256 hi) {
  const __m256 t3 = _mm256_add_ps(hi, lo);
  const __m128 t6 = _mm_add_ps(_mm256_extractf128_ps(t3, 1), _mm256_castps256_ps128(t3));
  const __m128 t8 = _mm_add_ps(t6, _mm_shuffle_ps(t6, t6, _MM_SHUFFLE(1, 0, 3, 2)));
  return _mm_cvtss_f32(t8) + _mm_cvtss_f32(_mm_shuffle_ps(t8, t8, _MM_SHUFFLE(1, 1, 1, 1)));
}

}  // namespace cml::tensor::internal
#endif
