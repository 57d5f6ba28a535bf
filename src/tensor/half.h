// Scalar conversions between f32 and the 16-bit float formats (IEEE binary16 "F16" and bfloat16 "BF16"),
// plus bulk row conversion used by kernels (vectorised where the CPU allows, chosen at run time).
//
// Rounding: f32 -> F16 and f32 -> BF16 round to nearest, ties to even; NaN stays NaN; overflow gives inf.
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <cstring>

#include "tensor/dtype.h"

namespace cml::tensor {

inline float bf16_to_f32(uint16_t h) {
  uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

inline uint16_t f32_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);  // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);

// dst[i] = float(src[i]) for n elements of type `src_type` (F32, F16 or BF16).
void convert_to_f32(DType src_type, const void* src, float* dst, int64_t n);
// dst (F16 or BF16 or F32) from f32.
void convert_from_f32(const float* src, DType dst_type, void* dst, int64_t n);

// CPU features detected once at start-up. The decode kernels have an AVX-512 path (F/BW/VL, which imply FMA
// and the F16 conversions), an AVX2 path (AVX2 + FMA + F16C: AMD Zen 1-3, Intel Haswell and later client
// parts) that computes the same bits as the AVX-512 one, and a portable path for every other CPU.
// CML_ISA=avx2 or CML_ISA=portable in the environment caps what is used (for comparisons and tests).
struct CpuFeatures {
  bool avx512 = false;  // avx512f + avx512bw + avx512vl
  bool avx2 = false;    // avx2 + fma + f16c
};
const CpuFeatures& cpu_features();

}  // namespace cml::tensor
