// Tensor codec: the tensor sub-header carried at the start of a kTensor frame's plaintext.
//
//   ndims    u16 LE   ≤ kMaxTensorDims
//   dtype    u8       wire code (WireDType)
//   shape    ndims × u32 LE
//   name_len u16 LE   ≤ kMaxTensorName
//   name     UTF-8 (validated)
//   padding  zero bytes so that the sub-header length is a multiple of 8 (non-zero padding refused)
//   data     exactly product(shape) × element size bytes, raw little-endian elements
//
// Shape [] is a scalar (1 element); a zero dimension means 0 elements. The data of a tensor may follow
// the sub-header in the same frame, or travel in kTensorChunk frames (see secure_channel.h); the
// sub-header fixes the total, which the receiver checks against its bound before allocating.
//
// Thread safety: pure functions; TensorView is a non-owning value (the viewed memory must outlive it).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/bytes.h"
#include "base/status.h"
#include "tensor/dtype.h"

namespace cml::net {

constexpr size_t kMaxTensorDims = 32;
constexpr size_t kMaxTensorName = 65535;

// Wire dtype codes (fixed by the protocol; independent of tensor::DType's numbering).
enum class WireDType : uint8_t { kF32 = 0, kF64 = 1, kF16 = 2, kBF16 = 3, kI32 = 4, kI64 = 5, kU8 = 6, kU32 = 7 };
uint8_t wire_dtype_code(tensor::DType t);
// INVALID_ARGUMENT for an unknown code.
Result<tensor::DType> dtype_from_wire(uint8_t code);

// A tensor to send, without copying it.
struct TensorView {
  std::string_view name;
  tensor::DType dtype = tensor::DType::kF32;
  std::span<const uint32_t> shape;
  ByteSpan data;  // exactly element_count × dtype_size bytes
};

// A decoded sub-header (owning; small).
struct TensorHeader {
  std::string name;
  tensor::DType dtype = tensor::DType::kF32;
  std::vector<uint32_t> shape;
  uint64_t data_size = 0;  // product(shape) × element size, overflow-checked
  size_t header_size = 0;  // sub-header bytes including padding (multiple of 8)
};

// A received tensor (owning). Reusable: decoding into an existing object keeps its buffers' capacity.
struct Tensor {
  std::string name;
  tensor::DType dtype = tensor::DType::kF32;
  std::vector<uint32_t> shape;
  Bytes data;

  TensorView view() const { return {name, dtype, shape, data}; }
};

// Element count of a shape; INVALID_ARGUMENT on overflow of u64 or of max_data_bytes when multiplied by
// the element size.
Result<uint64_t> tensor_data_size(tensor::DType dtype, std::span<const uint32_t> shape);

// Size of the encoded sub-header (with padding) for a view's name and ndims.
size_t tensor_header_size(const TensorView& t);
// Validates a view (ndims, name length and UTF-8, data size) — a programming error is reported as
// INVALID_ARGUMENT so that senders can surface it.
Status validate_tensor_view(const TensorView& t);
// Appends the sub-header only (no data) to `out`. The view must be valid.
void append_tensor_header(const TensorView& t, Bytes& out);
// Writes the sub-header into out (out.size() must equal tensor_header_size(t)).
void write_tensor_header(const TensorView& t, MutableByteSpan out);

// Parses a sub-header at the front of `bytes`. Refuses the data size if it exceeds max_data_bytes
// (RESOURCE_EXHAUSTED) — the caller's bound is applied before anything is allocated.
Result<TensorHeader> decode_tensor_header(ByteSpan bytes, uint64_t max_data_bytes);

// Whole-payload helpers (sub-header ‖ data in one buffer, the reference v4 Tensor payload).
Bytes encode_tensor(const TensorView& t);
// Decodes a complete payload; the data must be exactly the declared size.
Result<Tensor> decode_tensor(ByteSpan payload, uint64_t max_data_bytes);

// True if `s` is well-formed UTF-8 (no overlongs, no surrogates, ≤ U+10FFFF).
bool is_valid_utf8(std::string_view s);

}  // namespace cml::net
