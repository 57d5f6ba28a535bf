// cuBLAS path of the worker (CML_WITH_CUDA builds only): W'' of one model resident on the GPU, products
// Z = Zin · W''ᵀ computed with cublasSgemm. The worker falls back to OpenBLAS when not enabled.
//
// Thread safety: gemm() may be called from several connection threads; calls are serialised on one
// stream by an internal mutex.
#pragma once

#if defined(CML_WITH_CUDA)

#include <memory>
#include <mutex>
#include <vector>

#include "base/status.h"
#include "groupcover/bundle.h"

namespace cml::groupcover {

// OK when device 0 can be used (a driver, a device, a context); otherwise UNAVAILABLE with CUDA's reason.
Status cuda_device_status();

class CudaMatrices {
 public:
  // Uploads every matrix of the bundle to device 0. UNAVAILABLE when no device is usable.
  static Result<std::unique_ptr<CudaMatrices>> create(const WorkerBundle& bundle);
  ~CudaMatrices();
  // out[rows, w.out] = in[rows, w.in] · W''_pᵀ for matrix p.
  Status gemm(uint32_t p, const float* in, uint32_t rows, float* out) const;

 private:
  CudaMatrices() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cml::groupcover

#endif
