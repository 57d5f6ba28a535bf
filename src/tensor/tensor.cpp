#include "tensor/tensor.h"

#include <cstdlib>
#include <cstring>

#include "tensor/half.h"

namespace cml::tensor {

namespace {
std::shared_ptr<void> allocate(size_t nbytes, bool zero) {
  const size_t aligned = (nbytes + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, aligned == 0 ? 64 : aligned);
  CML_CHECK_MSG(p != nullptr, "tensor allocation failed");
  if (zero) std::memset(p, 0, aligned);
  return std::shared_ptr<void>(p, [](void* q) { std::free(q); });
}
}  // namespace

Result<int64_t> checked_numel(std::span<const int64_t> shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) return invalid_argument("negative dimension in shape");
    if (d != 0 && n > INT64_MAX / d) return invalid_argument("shape element count overflows");
    n *= d;
  }
  return n;
}

int64_t Tensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape_) n *= d;
  return n;
}

Tensor Tensor::zeros(DType dtype, std::vector<int64_t> shape) {
  Tensor t;
  t.dtype_ = dtype;
  t.shape_ = std::move(shape);
  t.owner_ = allocate(t.nbytes(), /*zero=*/true);
  t.data_ = t.owner_.get();
  t.writable_ = true;
  return t;
}

Tensor Tensor::uninitialized(DType dtype, std::vector<int64_t> shape) {
  Tensor t = borrow_mutable(dtype, std::move(shape), nullptr);
  t.owner_ = allocate(t.nbytes(), /*zero=*/false);
  t.data_ = t.owner_.get();
  return t;
}

Tensor Tensor::borrow(DType dtype, std::vector<int64_t> shape, const void* data) {
  Tensor t;
  t.dtype_ = dtype;
  t.shape_ = std::move(shape);
  t.data_ = const_cast<void*>(data);
  t.writable_ = false;
  return t;
}

Tensor Tensor::borrow_mutable(DType dtype, std::vector<int64_t> shape, void* data) {
  Tensor t = borrow(dtype, std::move(shape), data);
  t.writable_ = true;
  return t;
}

void* Tensor::mutable_raw() {
  CML_CHECK_MSG(writable_, "write access to a read-only tensor view");
  return data_;
}

void Tensor::check_type(size_t size) const {
  CML_CHECK_MSG(size == dtype_size(dtype_), "tensor element type mismatch");
}

Result<Tensor> Tensor::reshape(std::vector<int64_t> shape) const {
  CML_ASSIGN_OR_RETURN(int64_t n, checked_numel(shape));
  if (n != numel()) return invalid_argument("reshape " + shape_string() + " changes the element count");
  Tensor t = *this;
  t.shape_ = std::move(shape);
  return t;
}

Result<Tensor> Tensor::to(DType dtype) const {
  auto is_float = [](DType d) { return d == DType::kF32 || d == DType::kF16 || d == DType::kBF16; };
  if (!is_float(dtype_) || !is_float(dtype)) {
    return invalid_argument(std::string("unsupported conversion ") + std::string(dtype_name(dtype_)) + " -> " +
                            std::string(dtype_name(dtype)));
  }
  Tensor out = uninitialized(dtype, shape_);
  const int64_t n = numel();
  if (dtype_ == dtype) {
    std::memcpy(out.data_, data_, nbytes());
  } else if (dtype == DType::kF32) {
    convert_to_f32(dtype_, data_, static_cast<float*>(out.data_), n);
  } else {
    std::vector<float> tmp(static_cast<size_t>(n));
    convert_to_f32(dtype_, data_, tmp.data(), n);
    convert_from_f32(tmp.data(), dtype, out.data_, n);
  }
  return out;
}

Tensor Tensor::clone() const {
  Tensor out = uninitialized(dtype_, shape_);
  if (nbytes() > 0) std::memcpy(out.data_, data_, nbytes());
  return out;
}

std::string Tensor::shape_string() const {
  std::string s = "[";
  for (size_t i = 0; i < shape_.size(); ++i) s += (i ? ", " : "") + std::to_string(shape_[i]);
  return s + "]";
}

}  // namespace cml::tensor
