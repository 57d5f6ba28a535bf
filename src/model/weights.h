// Weight files: a uniform read-only view of the tensors in a GGUF, safetensors or llama2.c checkpoint.
//
// Every loader maps the file (mmap) and validates the header before exposing anything: header sizes,
// tensor offsets, shapes and byte counts are bounded and checked against the file size, so a hostile
// file yields INVALID_ARGUMENT with a clear message, never an out-of-bounds read or a huge allocation.
// Tensor data pointers stay valid for the lifetime of the WeightFile.
//
// Thread safety: immutable after open(); any thread may read.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "base/status.h"
#include "tensor/dtype.h"

namespace cml::model {

struct TensorRef {
  std::string name;
  tensor::DType dtype = tensor::DType::kF32;
  // Dimensions in row-major order, outermost first (PyTorch order). GGUF stores ne[] innermost first;
  // its loader reverses them so that shape here is always row-major.
  std::vector<int64_t> shape;
  const void* data = nullptr;
  size_t nbytes = 0;
  int64_t numel() const;
};

// Metadata values (GGUF key/value pairs; safetensors __metadata__ strings; llama2.c config ints).
using MetaValue = std::variant<int64_t, uint64_t, double, bool, std::string, std::vector<std::string>,
                               std::vector<int64_t>, std::vector<double>>;

class WeightFile {
 public:
  virtual ~WeightFile() = default;
  virtual std::string format() const = 0;  // "gguf", "safetensors", "llama2c"
  virtual const std::vector<TensorRef>& tensors() const = 0;
  const TensorRef* find(const std::string& name) const;
  virtual const std::map<std::string, MetaValue>& metadata() const = 0;
  // Convenience typed metadata access (nullopt if missing or of another type).
  std::optional<int64_t> meta_int(const std::string& key) const;
  std::optional<double> meta_float(const std::string& key) const;
  std::optional<std::string> meta_string(const std::string& key) const;
};

// Opens by content (magic bytes), not by extension.
Result<std::unique_ptr<WeightFile>> open_weight_file(const std::string& path);

// The same detection over bytes already in memory (not copied: `data` must outlive the result).
Result<std::unique_ptr<WeightFile>> parse_weight_bytes(std::span<const uint8_t> data);

}  // namespace cml::model
