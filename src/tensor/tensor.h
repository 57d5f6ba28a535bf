// Tensor: a dtype, a row-major shape and storage that is either owned (64-byte aligned heap memory) or
// borrowed (a view of memory someone else keeps alive, e.g. a memory-mapped weight file).
//
// Thread safety: a Tensor is a value; concurrent reads are fine, writes need external synchronisation.
// Copies of an owned tensor share its storage (shallow); use clone() for a deep copy.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/status.h"
#include "tensor/dtype.h"

namespace cml::tensor {

class Tensor {
 public:
  Tensor() = default;

  // Zero-filled owned tensor.
  static Tensor zeros(DType dtype, std::vector<int64_t> shape);
  // Owned tensor whose contents are unspecified (pages are not touched until written).
  static Tensor uninitialized(DType dtype, std::vector<int64_t> shape);
  // Read-only view of `data`, which must outlive the tensor and every copy of it.
  static Tensor borrow(DType dtype, std::vector<int64_t> shape, const void* data);
  // Writable view.
  static Tensor borrow_mutable(DType dtype, std::vector<int64_t> shape, void* data);

  DType dtype() const { return dtype_; }
  const std::vector<int64_t>& shape() const { return shape_; }
  int rank() const { return static_cast<int>(shape_.size()); }
  int64_t dim(int i) const { return shape_.at(static_cast<size_t>(i)); }
  int64_t numel() const;
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype_); }
  bool owned() const { return owner_ != nullptr; }
  bool writable() const { return writable_; }
  bool empty() const { return data_ == nullptr; }

  const void* raw() const { return data_; }
  void* mutable_raw();
  // Typed access; aborts if T does not match the dtype's element size class.
  template <typename T>
  const T* data() const {
    check_type(sizeof(T));
    return static_cast<const T*>(data_);
  }
  template <typename T>
  T* mutable_data() {
    check_type(sizeof(T));
    return static_cast<T*>(mutable_raw());
  }

  // Same storage, new shape with the same element count (INVALID_ARGUMENT otherwise).
  Result<Tensor> reshape(std::vector<int64_t> shape) const;
  // Deep copy converted to `dtype` (F32/F16/BF16 conversions only).
  Result<Tensor> to(DType dtype) const;
  // Deep copy, owned.
  Tensor clone() const;

  std::string shape_string() const;

 private:
  void check_type(size_t size) const;
  DType dtype_ = DType::kF32;
  std::vector<int64_t> shape_;
  std::shared_ptr<void> owner_;
  void* data_ = nullptr;
  bool writable_ = false;
};

// Overflow-checked element count of a shape; nullopt-like failure as INVALID_ARGUMENT.
Result<int64_t> checked_numel(std::span<const int64_t> shape);

}  // namespace cml::tensor
