// LinearBackend: every multiplication by a weight matrix in the model runtime goes through this interface,
// so the same model runs with local BLAS, with GroupCover offload to an untrusted worker, or with CUDA.
//
// Contract:
//   * Weights are row-major [out_features, in_features] (PyTorch nn.Linear layout). A loader whose file
//     stores the transpose (Hugging Face GPT-2 Conv1D) declares `transposed = true`; the backend then sees
//     data laid out [in_features, out_features].
//   * add() registers one *linear op* made of one or more parts that share the same input (e.g. Q, K, V);
//     the op's output is the parts' outputs concatenated along the feature axis: y[rows, Σ out_i].
//   * run() computes y = x · Wᵀ (+ bias) for `rows` input rows (all tokens of all sequences in flight,
//     batched by the caller into one call). x is [rows, in_features] f32, y is [rows, Σ out] f32.
//   * Weight memory passed to add() must outlive the backend (it may be memory-mapped).
//   * A backend that talks to a remote party returns UNAVAILABLE / TIMEOUT / CRYPTO errors from run();
//     the model runtime propagates them and leaves the KV cache untouched for that step.
//
// Thread safety: add() and finalize() from one thread before any run(); run() may be called concurrently
// from several threads for different sequences unless the implementation says otherwise.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/status.h"
#include "tensor/dtype.h"

namespace cml::model {

struct LinearPart {
  std::string name;  // tensor name in the model file, for errors and audits
  int64_t out_features = 0;
  int64_t in_features = 0;
  tensor::DType dtype = tensor::DType::kF32;  // F32, F16 or BF16
  const void* weight = nullptr;
  bool transposed = false;      // data is [in, out] instead of [out, in]
  const float* bias = nullptr;  // [out_features] or null
};

using LinearId = uint32_t;

class LinearBackend {
 public:
  virtual ~LinearBackend() = default;
  // Backend name for logs and benchmarks ("blas", "groupcover", "cuda", …).
  virtual std::string name() const = 0;
  // Registers an op; all parts must have the same in_features.
  virtual Result<LinearId> add(std::span<const LinearPart> parts) = 0;
  // Called once after the last add(), before run(): upload, pack or register weights.
  virtual Status finalize() { return ok_status(); }
  virtual Status run(LinearId id, const float* x, int64_t rows, float* y) = 0;
  // Total output features of an op (Σ out_features of its parts).
  virtual int64_t out_features(LinearId id) const = 0;
};

}  // namespace cml::model
