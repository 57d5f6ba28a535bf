#include "net/tensor_codec.h"

#include <cstring>

namespace cml::net {

using tensor::DType;

uint8_t wire_dtype_code(DType t) {
  switch (t) {
    case DType::kF32:
      return 0;
    case DType::kF64:
      return 1;
    case DType::kF16:
      return 2;
    case DType::kBF16:
      return 3;
    case DType::kI32:
      return 4;
    case DType::kI64:
      return 5;
    case DType::kU8:
      return 6;
    case DType::kU32:
      return 7;
  }
  CML_CHECK_MSG(false, "unknown tensor::DType");
  return 0;
}

Result<DType> dtype_from_wire(uint8_t code) {
  switch (code) {
    case 0:
      return DType::kF32;
    case 1:
      return DType::kF64;
    case 2:
      return DType::kF16;
    case 3:
      return DType::kBF16;
    case 4:
      return DType::kI32;
    case 5:
      return DType::kI64;
    case 6:
      return DType::kU8;
    case 7:
      return DType::kU32;
    default:
      return invalid_argument("tensor: unknown dtype code " + std::to_string(code));
  }
}

Result<uint64_t> tensor_data_size(DType dtype, std::span<const uint32_t> shape) {
  uint64_t n = dtype_size(dtype);
  for (uint32_t d : shape) {
    if (d != 0 && n > UINT64_MAX / d) return invalid_argument("tensor: shape product overflows");
    n *= d;
  }
  return n;
}

namespace {
size_t unpadded_header_size(size_t ndims, size_t name_len) {
  return 2 + 1 + 4 * ndims + 2 + name_len;
}
size_t pad8(size_t n) {
  return (8 - n % 8) % 8;
}
}  // namespace

size_t tensor_header_size(const TensorView& t) {
  const size_t n = unpadded_header_size(t.shape.size(), t.name.size());
  return n + pad8(n);
}

bool is_valid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    const uint8_t c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint32_t cp;
    if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > n) return false;
    for (size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000)) return false;
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

Status validate_tensor_view(const TensorView& t) {
  if (t.shape.size() > kMaxTensorDims) {
    return invalid_argument("tensor '" + std::string(t.name.substr(0, 64)) + "': " + std::to_string(t.shape.size()) +
                            " dims exceed the limit of 32");
  }
  if (t.name.size() > kMaxTensorName) return invalid_argument("tensor: name longer than 65535 bytes");
  if (!is_valid_utf8(t.name)) return invalid_argument("tensor: name is not valid UTF-8");
  CML_ASSIGN_OR_RETURN(uint64_t size, tensor_data_size(t.dtype, t.shape));
  if (size != t.data.size()) {
    return invalid_argument("tensor '" + std::string(t.name.substr(0, 64)) + "': shape needs " + std::to_string(size) +
                            " data bytes, view has " + std::to_string(t.data.size()));
  }
  return Status::ok();
}

void write_tensor_header(const TensorView& t, MutableByteSpan out) {
  CML_CHECK(out.size() == tensor_header_size(t));
  uint8_t* p = out.data();
  p[0] = uint8_t(t.shape.size());
  p[1] = uint8_t(t.shape.size() >> 8);
  p[2] = wire_dtype_code(t.dtype);
  p += 3;
  for (uint32_t d : t.shape) {
    p[0] = uint8_t(d);
    p[1] = uint8_t(d >> 8);
    p[2] = uint8_t(d >> 16);
    p[3] = uint8_t(d >> 24);
    p += 4;
  }
  p[0] = uint8_t(t.name.size());
  p[1] = uint8_t(t.name.size() >> 8);
  p += 2;
  if (!t.name.empty()) std::memcpy(p, t.name.data(), t.name.size());
  p += t.name.size();
  std::memset(p, 0, static_cast<size_t>(out.data() + out.size() - p));
}

void append_tensor_header(const TensorView& t, Bytes& out) {
  const size_t at = out.size();
  out.resize(at + tensor_header_size(t));
  write_tensor_header(t, MutableByteSpan(out).subspan(at));
}

Result<TensorHeader> decode_tensor_header(ByteSpan bytes, uint64_t max_data_bytes) {
  ByteReader r(bytes);
  CML_ASSIGN_OR_RETURN(uint16_t ndims, r.u16_le("tensor ndims"));
  if (ndims > kMaxTensorDims) {
    return invalid_argument("tensor: " + std::to_string(ndims) + " dims exceed the limit of 32");
  }
  CML_ASSIGN_OR_RETURN(uint8_t code, r.u8("tensor dtype"));
  TensorHeader h;
  CML_ASSIGN_OR_RETURN(h.dtype, dtype_from_wire(code));
  h.shape.resize(ndims);
  for (auto& d : h.shape) {
    CML_ASSIGN_OR_RETURN(d, r.u32_le("tensor shape"));
  }
  CML_ASSIGN_OR_RETURN(uint16_t name_len, r.u16_le("tensor name length"));
  CML_ASSIGN_OR_RETURN(ByteSpan name, r.take(name_len, "tensor name"));
  h.name.assign(as_string_view(name));
  if (!is_valid_utf8(h.name)) return invalid_argument("tensor: name is not valid UTF-8");
  const size_t pad = pad8(unpadded_header_size(ndims, name_len));
  CML_ASSIGN_OR_RETURN(ByteSpan padding, r.take(pad, "tensor header padding"));
  for (uint8_t b : padding) {
    if (b != 0) return invalid_argument("tensor: non-zero header padding");
  }
  h.header_size = r.position();
  auto size = tensor_data_size(h.dtype, h.shape);
  if (!size.is_ok()) return size.status();
  if (*size > max_data_bytes) {
    return resource_exhausted("tensor '" + h.name.substr(0, 64) + "': " + std::to_string(*size) +
                              " data bytes exceed the limit of " + std::to_string(max_data_bytes));
  }
  h.data_size = *size;
  return h;
}

Bytes encode_tensor(const TensorView& t) {
  CML_CHECK(validate_tensor_view(t).is_ok());
  Bytes out;
  out.reserve(tensor_header_size(t) + t.data.size());
  append_tensor_header(t, out);
  out.insert(out.end(), t.data.begin(), t.data.end());
  return out;
}

Result<Tensor> decode_tensor(ByteSpan payload, uint64_t max_data_bytes) {
  CML_ASSIGN_OR_RETURN(TensorHeader h, decode_tensor_header(payload, max_data_bytes));
  const size_t have = payload.size() - h.header_size;
  if (have != h.data_size) {
    return invalid_argument("tensor '" + h.name.substr(0, 64) + "': declares " + std::to_string(h.data_size) +
                            " data bytes, payload has " + std::to_string(have));
  }
  Tensor t;
  t.name = std::move(h.name);
  t.dtype = h.dtype;
  t.shape = std::move(h.shape);
  t.data.assign(payload.begin() + static_cast<std::ptrdiff_t>(h.header_size), payload.end());
  return t;
}

}  // namespace cml::net
