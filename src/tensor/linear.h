// Multiplication of f32 activations by a weight matrix stored as F32, F16 or BF16:
//   y[r, o] = Σ_k x[r, k] · W[o, k]        (W row-major [out, in], PyTorch nn.Linear layout), or
//   y[r, o] = Σ_k x[r, k] · W[k, o]        (transposed storage [in, out], Hugging Face Conv1D layout).
//
// Two paths, chosen by the number of rows:
//   * rows <= kGemvMaxRows (decode): our own vectorised kernel (AVX-512 when the CPU has it, chosen at run
//     time; portable code otherwise) reads every weight once for all rows and converts F16/BF16 in
//     registers. Memory bound by design. The result of a row depends neither on the other rows nor on the
//     thread count, so batching sequences together does not change their numbers.
//   * more rows (prefill): OpenBLAS sgemm (single-threaded per call; the pool splits the output columns),
//     F16/BF16 weights converted to f32 tile by tile.
//     The first BLAS call sets OpenBLAS to one thread process-wide (openblas_set_num_threads(1)): the
//     thread count is the pool's, and two thread systems must not fight over the cores.
//
// Thread safety: linear() may be called concurrently (it uses the pool's serialisation and per-call
// scratch).
#pragma once

#include <cstdint>
#include <string>

#include "tensor/dtype.h"
#include "tensor/thread_pool.h"

namespace cml::tensor {

struct WeightView {
  DType dtype = DType::kF32;  // F32, F16 or BF16
  const void* data = nullptr;
  int64_t out = 0, in = 0;
  bool transposed = false;
};

inline constexpr int64_t kGemvMaxRows = 8;

// y[r * ldy + o] for o < w.out; x[r * ldx + k] for k < w.in. pool may be null (single thread).
void linear(const WeightView& w, const float* x, int64_t ldx, int64_t rows, float* y, int64_t ldy, ThreadPool* pool);

// The decode kernel on its own (any row count, processed in groups of kGemvMaxRows) and the BLAS path on
// its own, for tests and benchmarks.
void linear_gemv(const WeightView& w, const float* x, int64_t ldx, int64_t rows, float* y, int64_t ldy,
                 ThreadPool* pool);
void linear_blas(const WeightView& w, const float* x, int64_t ldx, int64_t rows, float* y, int64_t ldy,
                 ThreadPool* pool);

// Name of the vector ISA the decode kernel uses on this CPU ("avx512" or "portable").
const char* linear_isa();

// The kernel set OpenBLAS chose at load time (e.g. "SkylakeX", "Haswell", "Prescott").
std::string blas_core();
// OpenBLAS 0.3.21 (Debian 12) does not recognise recent Xeons (e.g. family 6 model 0xCF) and falls back to
// its SSE3 "Prescott" kernels, about 4x slower. True when that happened on a CPU with AVX-512 and
// OPENBLAS_CORETYPE is not set: the caller may re-run the process with blas_core_override() in
// OPENBLAS_CORETYPE (the variable is read only when the library loads).
bool blas_core_is_fallback();
inline const char* blas_core_override() {
  return "SkylakeX";
}

}  // namespace cml::tensor
