// InMemoryWeightFile: a WeightFile whose tensors live in owned heap buffers, for synthetic models
// (benchmarks, tests of the runtime without a file on disk) and for tensors built by other code.
//
// Thread safety: build with add_*() from one thread; afterwards immutable, any thread may read.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "model/weights.h"
#include "tensor/tensor.h"

namespace cml::model {

class InMemoryWeightFile final : public WeightFile {
 public:
  explicit InMemoryWeightFile(std::string format = "memory") : format_(std::move(format)) {}

  std::string format() const override { return format_; }
  const std::vector<TensorRef>& tensors() const override { return refs_; }
  const std::map<std::string, MetaValue>& metadata() const override { return meta_; }

  // Adds a tensor (the storage is kept alive by this file). Replaces nothing: names must be unique.
  void add_tensor(const std::string& name, tensor::Tensor t);
  // Adds an F32/F16/BF16 tensor from f32 values, converted to `dtype`.
  void add_from_f32(const std::string& name, tensor::DType dtype, std::vector<int64_t> shape,
                    const std::vector<float>& values);
  void set_meta(const std::string& key, MetaValue value) { meta_[key] = std::move(value); }
  // Total bytes of tensor data.
  size_t data_bytes() const;

 private:
  std::string format_;
  std::vector<TensorRef> refs_;
  std::vector<tensor::Tensor> storage_;
  std::map<std::string, MetaValue> meta_;
};

}  // namespace cml::model
