// Byte buffers, hex, and bounded big/little-endian readers and writers for wire formats.
//
// ByteReader never reads past its span: every read returns a Result and a short buffer is an
// INVALID_ARGUMENT naming what was being read. Use it for every parser of bytes from outside.
// Thread safety: plain values; one thread per object.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace cml {

using Bytes = std::vector<uint8_t>;
using ByteSpan = std::span<const uint8_t>;
using MutableByteSpan = std::span<uint8_t>;

inline ByteSpan as_bytes(std::string_view s) { return {reinterpret_cast<const uint8_t*>(s.data()), s.size()}; }
inline std::string_view as_string_view(ByteSpan b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }
inline Bytes to_bytes(std::string_view s) { return Bytes(s.begin(), s.end()); }

// Lower-case hex.
std::string to_hex(ByteSpan data);
// Accepts upper or lower case, no separators; optional "0x" prefix.
Result<Bytes> from_hex(std::string_view hex);

// Constant-time equality for secrets and MACs (length is not secret).
bool constant_time_equal(ByteSpan a, ByteSpan b);

// Sequential reader over untrusted bytes. `what` names the field in error messages.
class ByteReader {
 public:
  explicit ByteReader(ByteSpan data) : data_(data) {}

  size_t remaining() const { return data_.size() - pos_; }
  size_t position() const { return pos_; }
  bool empty() const { return remaining() == 0; }

  Result<uint8_t> u8(std::string_view what);
  Result<uint16_t> u16_be(std::string_view what);
  Result<uint32_t> u32_be(std::string_view what);
  Result<uint64_t> u64_be(std::string_view what);
  Result<uint16_t> u16_le(std::string_view what);
  Result<uint32_t> u32_le(std::string_view what);
  Result<uint64_t> u64_le(std::string_view what);
  // A view of the next n bytes (no copy).
  Result<ByteSpan> take(size_t n, std::string_view what);
  Status skip(size_t n, std::string_view what);
  // The unread rest, consumed.
  ByteSpan rest();
  // INVALID_ARGUMENT if bytes remain.
  Status expect_end(std::string_view what) const;

 private:
  ByteSpan data_;
  size_t pos_ = 0;
};

// Appending writer.
class ByteWriter {
 public:
  ByteWriter() = default;
  explicit ByteWriter(Bytes&& reuse) : buf_(std::move(reuse)) { buf_.clear(); }

  void u8(uint8_t v) { buf_.push_back(v); }
  void u16_be(uint16_t v);
  void u32_be(uint32_t v);
  void u64_be(uint64_t v);
  void u16_le(uint16_t v);
  void u32_le(uint32_t v);
  void u64_le(uint64_t v);
  void bytes(ByteSpan b) { buf_.insert(buf_.end(), b.begin(), b.end()); }
  void zeros(size_t n) { buf_.resize(buf_.size() + n, 0); }

  size_t size() const { return buf_.size(); }
  const Bytes& data() const { return buf_; }
  Bytes take() { return std::move(buf_); }

 private:
  Bytes buf_;
};

// Fixed-position stores/loads for code that fills preallocated buffers (frame headers).
inline void store_u16_be(uint8_t* p, uint16_t v) { p[0] = uint8_t(v >> 8); p[1] = uint8_t(v); }
inline void store_u32_be(uint8_t* p, uint32_t v) {
  p[0] = uint8_t(v >> 24); p[1] = uint8_t(v >> 16); p[2] = uint8_t(v >> 8); p[3] = uint8_t(v);
}
inline void store_u64_be(uint8_t* p, uint64_t v) { store_u32_be(p, uint32_t(v >> 32)); store_u32_be(p + 4, uint32_t(v)); }
inline uint16_t load_u16_be(const uint8_t* p) { return uint16_t((p[0] << 8) | p[1]); }
inline uint32_t load_u32_be(const uint8_t* p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | uint32_t(p[3]);
}
inline uint64_t load_u64_be(const uint8_t* p) { return (uint64_t(load_u32_be(p)) << 32) | load_u32_be(p + 4); }
inline uint16_t load_u16_le(const uint8_t* p) { return uint16_t(p[0] | (p[1] << 8)); }
inline uint32_t load_u32_le(const uint8_t* p) {
  return uint32_t(p[0]) | (uint32_t(p[1]) << 8) | (uint32_t(p[2]) << 16) | (uint32_t(p[3]) << 24);
}
inline uint64_t load_u64_le(const uint8_t* p) { return uint64_t(load_u32_le(p)) | (uint64_t(load_u32_le(p + 4)) << 32); }

// Reads a whole file, refusing files larger than max_bytes (never allocates what a file claims).
Result<Bytes> read_file(const std::string& path, size_t max_bytes);
Status write_file(const std::string& path, ByteSpan data);

}  // namespace cml
