// BlasLinearBackend: the local CPU LinearBackend. Weights stay where the loader put them (memory-mapped,
// F32/F16/BF16, plain or transposed); decode-sized calls use the vectorised kernels of tensor/linear.h,
// larger ones OpenBLAS. Parts of a fused op write straight into their column block of y; bias is added
// after the product.
//
// Thread safety: add()/finalize() from one thread; run() from any thread (calls share the thread pool,
// which serialises them).
#pragma once

#include <memory>
#include <vector>

#include "model/linear_backend.h"
#include "tensor/thread_pool.h"

namespace cml::model {

class BlasLinearBackend final : public LinearBackend {
 public:
  // `pool` supplies the compute threads (shared with the rest of the runtime); null means one thread.
  explicit BlasLinearBackend(std::shared_ptr<tensor::ThreadPool> pool = nullptr);

  std::string name() const override { return "blas"; }
  Result<LinearId> add(std::span<const LinearPart> parts) override;
  Status run(LinearId id, const float* x, int64_t rows, float* y) override;
  int64_t out_features(LinearId id) const override;

  // Bytes of weight memory registered (what one decode step streams).
  size_t weight_bytes() const { return weight_bytes_; }

 private:
  struct Op {
    std::vector<LinearPart> parts;
    int64_t in = 0, out = 0;
  };
  std::shared_ptr<tensor::ThreadPool> pool_;
  std::vector<Op> ops_;
  size_t weight_bytes_ = 0;
};

// Checks a part list against the LinearBackend contract (shared by every backend).
Status validate_linear_parts(std::span<const LinearPart> parts);

}  // namespace cml::model
