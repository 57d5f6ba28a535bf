// safetensors weight files (Hugging Face).
//
// Layout: u64 little-endian header length N (bounded by kSafetensorsMaxHeaderBytes and the file size),
// N bytes of UTF-8 JSON {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, …,
// "__metadata__": {"key": "value", …}}, then the data section. Offsets are relative to the data section.
//
// Checks, all before any tensor is exposed: the header is a JSON object; every entry has a known dtype,
// a shape of non-negative dimensions whose product times the element size (overflow-checked) equals
// end - begin exactly; begin ≤ end ≤ data size; tensors do not overlap and cover the data section without
// holes (as the reference implementation requires). Violations are INVALID_ARGUMENT naming the tensor.
// Supported dtypes: F32, F16, BF16 (and F64, I32, I64, U8); others (I8, I16, BOOL, F8_*) are
// UNIMPLEMENTED naming the tensor and dtype. __metadata__ values become std::string metadata.
//
// Alignment: if a tensor's data is not aligned to its element size inside the mapping (the format does
// not require it), the data section is copied once into an aligned buffer so that every TensorRef::data
// may be read as its element type.
//
// Thread safety: the returned WeightFile is immutable; any thread may read it.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "model/weights.h"

namespace cml::model {

inline constexpr uint64_t kSafetensorsMaxHeaderBytes = 100u << 20;  // 100 MiB
inline constexpr size_t kSafetensorsMaxDims = 8;

Result<std::unique_ptr<WeightFile>> open_safetensors(const std::string& path);

// Parses a safetensors image already in memory. Nothing is copied unless alignment requires it:
// `data` must outlive the result.
Result<std::unique_ptr<WeightFile>> parse_safetensors(ByteSpan data);

// The dtype's safetensors name ("F32", "BF16", …).
std::string_view safetensors_dtype_name(tensor::DType dtype);

// One tensor to write. `data` must hold exactly numel × element size bytes (little-endian).
struct SafetensorsTensor {
  std::string name;
  tensor::DType dtype = tensor::DType::kF32;
  std::vector<int64_t> shape;
  ByteSpan data;
};

// Serializes tensors (in the given order) and string metadata. Names must be unique and not
// "__metadata__". The header is padded with spaces to a multiple of 8 bytes so that data is aligned.
Result<Bytes> write_safetensors(std::span<const SafetensorsTensor> tensors,
                                const std::map<std::string, std::string>& metadata = {});
// Same, streamed to a file (for large synthetic models).
Status write_safetensors_file(const std::string& path, std::span<const SafetensorsTensor> tensors,
                              const std::map<std::string, std::string>& metadata = {});

}  // namespace cml::model
