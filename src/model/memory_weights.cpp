#include "model/memory_weights.h"

#include "tensor/half.h"

namespace cml::model {

void InMemoryWeightFile::add_tensor(const std::string& name, tensor::Tensor t) {
  CML_CHECK_MSG(find(name) == nullptr, "duplicate tensor name " + name);
  TensorRef r;
  r.name = name;
  r.dtype = t.dtype();
  r.shape = t.shape();
  r.data = t.raw();
  r.nbytes = t.nbytes();
  refs_.push_back(std::move(r));
  storage_.push_back(std::move(t));
}

void InMemoryWeightFile::add_from_f32(const std::string& name, tensor::DType dtype, std::vector<int64_t> shape,
                                      const std::vector<float>& values) {
  tensor::Tensor t = tensor::Tensor::uninitialized(dtype, std::move(shape));
  CML_CHECK(static_cast<size_t>(t.numel()) == values.size());
  tensor::convert_from_f32(values.data(), dtype, t.mutable_raw(), t.numel());
  add_tensor(name, std::move(t));
}

size_t InMemoryWeightFile::data_bytes() const {
  size_t n = 0;
  for (const auto& r : refs_) n += r.nbytes;
  return n;
}

}  // namespace cml::model
