// GGUF weight files (llama.cpp's format), versions 1 to 3.
//
// Layout (all little-endian): magic "GGUF", u32 version, tensor count, key/value count (u32 in v1, u64
// from v2), the key/value pairs, the tensor infos (name, n_dims, ne[] innermost first, ggml type, offset
// relative to the data section), padding to `general.alignment` (default 32), then the data section.
//
// Every count, string length, array length, dimension and offset is bounded and checked against the file
// size before use; a malformed or hostile file yields INVALID_ARGUMENT naming the field. Tensors of
// quantized or otherwise unsupported ggml types yield UNIMPLEMENTED naming the tensor and its type.
//
// Supported tensor types: F32, F16, BF16 (and F64, I32, I64, which map onto tensor::DType).
// Metadata mapping onto MetaValue: u8/i8/u16/i16/u32/i32/i64 → int64_t, u64 → uint64_t, f32/f64 → double
// (an f32 converts exactly; cast back to float to recover it), bool → bool, string → std::string;
// arrays of integers or bools → std::vector<int64_t>, of floats → std::vector<double>, of strings →
// std::vector<std::string>. Arrays of arrays are parsed (bounded) but not exposed.
//
// Thread safety: the returned WeightFile is immutable; any thread may read it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "base/bytes.h"
#include "model/weights.h"

namespace cml::model {

// Bounds applied while parsing (each far above what real models use).
inline constexpr uint64_t kGgufMaxTensors = 1u << 20;
inline constexpr uint64_t kGgufMaxKeyValues = 1u << 20;
inline constexpr uint64_t kGgufMaxStringBytes = 16u << 20;  // one key or string value
inline constexpr uint64_t kGgufMaxArrayElements = 1u << 26;
inline constexpr uint32_t kGgufMaxDims = 4;
inline constexpr uint32_t kGgufMaxArrayDepth = 4;

// Maps the file (mmap) and parses it. Tensor data points into the mapping.
Result<std::unique_ptr<WeightFile>> open_gguf(const std::string& path);

// Parses a GGUF image already in memory. Nothing is copied: `data` must outlive the result.
// (Fuzz targets and tests use this.)
Result<std::unique_ptr<WeightFile>> parse_gguf(ByteSpan data);

// Name of a ggml tensor type id ("F32", "Q4_0", …, or "type#N" for ids this build does not know).
std::string gguf_type_name(uint32_t ggml_type);

}  // namespace cml::model
