#include "groupcover/cuda_gemm.h"

#if defined(CML_WITH_CUDA)

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <string>

namespace cml::groupcover {

struct CudaMatrices::Impl {
  cublasHandle_t handle = nullptr;
  std::vector<float*> weights;
  std::vector<std::pair<uint32_t, uint32_t>> shapes;
  mutable std::mutex mu;
  mutable float* in_buf = nullptr;
  mutable float* out_buf = nullptr;
  mutable size_t in_cap = 0, out_cap = 0;
};

namespace {
Status cuda_status(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return ok_status();
  return unavailable(std::string("CUDA ") + what + ": " + cudaGetErrorString(e));
}
Status grow(float*& p, size_t& cap, size_t n) {
  if (n <= cap) return ok_status();
  if (p) cudaFree(p);
  p = nullptr;
  cap = 0;
  CML_RETURN_IF_ERROR(cuda_status(cudaMalloc(reinterpret_cast<void**>(&p), n * sizeof(float)), "malloc"));
  cap = n;
  return ok_status();
}
}  // namespace

Status cuda_device_status() {
  int n = 0;
  CML_RETURN_IF_ERROR(cuda_status(cudaGetDeviceCount(&n), "device count"));
  if (n < 1) return unavailable("CUDA: no device");
  CML_RETURN_IF_ERROR(cuda_status(cudaSetDevice(0), "set device"));
  return cuda_status(cudaFree(nullptr), "context");  // creates the context: the first call that touches the GPU
}

Result<std::unique_ptr<CudaMatrices>> CudaMatrices::create(const WorkerBundle& bundle) {
  std::unique_ptr<CudaMatrices> m(new CudaMatrices());
  m->impl_ = std::make_unique<Impl>();
  CML_RETURN_IF_ERROR(cuda_status(cudaSetDevice(0), "set device"));
  if (cublasCreate(&m->impl_->handle) != CUBLAS_STATUS_SUCCESS) return unavailable("cuBLAS init failed");
  // Full FP32 products: no TF32 tensor-op shortcut, whose 10-bit mantissa would exceed the restore
  // tolerance and trip the Freivalds check.
  if (cublasSetMathMode(m->impl_->handle, CUBLAS_DEFAULT_MATH) != CUBLAS_STATUS_SUCCESS)
    return unavailable("cuBLAS math mode refused");
  for (const auto& w : bundle.matrices) {
    float* d = nullptr;
    const size_t bytes = size_t(w.out) * w.in * sizeof(float);
    CML_RETURN_IF_ERROR(cuda_status(cudaMalloc(reinterpret_cast<void**>(&d), bytes), "malloc"));
    m->impl_->weights.push_back(d);
    m->impl_->shapes.emplace_back(w.out, w.in);
    CML_RETURN_IF_ERROR(cuda_status(cudaMemcpy(d, w.data, bytes, cudaMemcpyHostToDevice), "upload"));
  }
  return m;
}

CudaMatrices::~CudaMatrices() {
  if (!impl_) return;
  for (float* d : impl_->weights) cudaFree(d);
  if (impl_->in_buf) cudaFree(impl_->in_buf);
  if (impl_->out_buf) cudaFree(impl_->out_buf);
  if (impl_->handle) cublasDestroy(impl_->handle);
}

Status CudaMatrices::gemm(uint32_t p, const float* in, uint32_t rows, float* out) const {
  std::lock_guard lock(impl_->mu);
  if (p >= impl_->shapes.size()) return invalid_argument("CUDA gemm: no matrix " + std::to_string(p));
  const auto [o, i] = impl_->shapes[p];
  CML_RETURN_IF_ERROR(grow(impl_->in_buf, impl_->in_cap, size_t(rows) * i));
  CML_RETURN_IF_ERROR(grow(impl_->out_buf, impl_->out_cap, size_t(rows) * o));
  CML_RETURN_IF_ERROR(
      cuda_status(cudaMemcpy(impl_->in_buf, in, size_t(rows) * i * sizeof(float), cudaMemcpyHostToDevice), "copy in"));
  // Row-major Z[rows, o] = Zin[rows, i] · Wᵀ  ⇔  column-major Zᵀ[o, rows] = W[o, i] · Zinᵀ[i, rows], with W
  // row-major [o, i] seen as column-major [i, o] (transposed).
  const float alpha = 1.0f, beta = 0.0f;
  if (cublasSgemm(impl_->handle, CUBLAS_OP_T, CUBLAS_OP_N, int(o), int(rows), int(i), &alpha, impl_->weights[p], int(i),
                  impl_->in_buf, int(i), &beta, impl_->out_buf, int(o)) != CUBLAS_STATUS_SUCCESS)
    return internal_error("cublasSgemm failed");
  return cuda_status(cudaMemcpy(out, impl_->out_buf, size_t(rows) * o * sizeof(float), cudaMemcpyDeviceToHost),
                     "copy out");
}

}  // namespace cml::groupcover

#endif
