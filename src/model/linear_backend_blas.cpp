#include "model/linear_backend_blas.h"

#include "tensor/linear.h"

namespace cml::model {

Status validate_linear_parts(std::span<const LinearPart> parts) {
  if (parts.empty()) return invalid_argument("linear op with no parts");
  const int64_t in = parts[0].in_features;
  for (const auto& p : parts) {
    if (p.dtype != tensor::DType::kF32 && p.dtype != tensor::DType::kF16 && p.dtype != tensor::DType::kBF16) {
      return invalid_argument("linear part " + p.name + ": unsupported dtype " +
                              std::string(tensor::dtype_name(p.dtype)));
    }
    if (p.in_features <= 0 || p.out_features <= 0) return invalid_argument("linear part " + p.name + ": empty shape");
    if (p.in_features != in) return invalid_argument("linear part " + p.name + ": in_features differs within the op");
    if (p.weight == nullptr) return invalid_argument("linear part " + p.name + ": no weight data");
  }
  return ok_status();
}

BlasLinearBackend::BlasLinearBackend(std::shared_ptr<tensor::ThreadPool> pool) : pool_(std::move(pool)) {}

Result<LinearId> BlasLinearBackend::add(std::span<const LinearPart> parts) {
  CML_RETURN_IF_ERROR(validate_linear_parts(parts));
  Op op;
  op.parts.assign(parts.begin(), parts.end());
  op.in = parts[0].in_features;
  for (const auto& p : parts) {
    op.out += p.out_features;
    weight_bytes_ += static_cast<size_t>(p.out_features * p.in_features) * tensor::dtype_size(p.dtype);
  }
  ops_.push_back(std::move(op));
  return static_cast<LinearId>(ops_.size() - 1);
}

int64_t BlasLinearBackend::out_features(LinearId id) const {
  return id < ops_.size() ? ops_[id].out : 0;
}

Status BlasLinearBackend::run(LinearId id, const float* x, int64_t rows, float* y) {
  if (id >= ops_.size()) return invalid_argument("unknown linear op id");
  if (rows < 0) return invalid_argument("negative row count");
  const Op& op = ops_[id];
  int64_t col = 0;
  for (const auto& p : op.parts) {
    tensor::WeightView w{p.dtype, p.weight, p.out_features, p.in_features, p.transposed};
    tensor::linear(w, x, op.in, rows, y + col, op.out, pool_.get());
    if (p.bias != nullptr) {
      for (int64_t r = 0; r < rows; ++r) {
        float* yr = y + r * op.out + col;
        for (int64_t o = 0; o < p.out_features; ++o) yr[o] += p.bias[o];
      }
    }
    col += p.out_features;
  }
  return ok_status();
}

}  // namespace cml::model
