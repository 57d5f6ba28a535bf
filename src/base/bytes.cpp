#include "base/bytes.h"

#include <cstdio>
#include <fstream>
#include <sys/stat.h>

namespace cml {

std::string to_hex(ByteSpan data) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(data.size() * 2, '0');
  for (size_t i = 0; i < data.size(); ++i) {
    out[2 * i] = kDigits[data[i] >> 4];
    out[2 * i + 1] = kDigits[data[i] & 15];
  }
  return out;
}

namespace {
int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
Status short_read(std::string_view what, size_t need, size_t have) {
  return invalid_argument("truncated input reading " + std::string(what) + ": need " + std::to_string(need) +
                          " bytes, have " + std::to_string(have));
}
}  // namespace

Result<Bytes> from_hex(std::string_view hex) {
  if (hex.size() >= 2 && hex[0] == '0' && (hex[1] == 'x' || hex[1] == 'X')) hex.remove_prefix(2);
  if (hex.size() % 2 != 0) return invalid_argument("hex string has odd length " + std::to_string(hex.size()));
  Bytes out(hex.size() / 2);
  for (size_t i = 0; i < out.size(); ++i) {
    int hi = hex_value(hex[2 * i]), lo = hex_value(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return invalid_argument("invalid hex digit at position " + std::to_string(2 * i));
    out[i] = static_cast<uint8_t>((hi << 4) | lo);
  }
  return out;
}

bool constant_time_equal(ByteSpan a, ByteSpan b) {
  if (a.size() != b.size()) return false;
  volatile uint8_t acc = 0;
  for (size_t i = 0; i < a.size(); ++i) acc = acc | (a[i] ^ b[i]);
  return acc == 0;
}

Result<ByteSpan> ByteReader::take(size_t n, std::string_view what) {
  if (n > remaining()) return short_read(what, n, remaining());
  ByteSpan s = data_.subspan(pos_, n);
  pos_ += n;
  return s;
}

Status ByteReader::skip(size_t n, std::string_view what) {
  if (n > remaining()) return short_read(what, n, remaining());
  pos_ += n;
  return ok_status();
}

ByteSpan ByteReader::rest() {
  ByteSpan s = data_.subspan(pos_);
  pos_ = data_.size();
  return s;
}

Status ByteReader::expect_end(std::string_view what) const {
  if (remaining() != 0)
    return invalid_argument(std::to_string(remaining()) + " trailing bytes after " + std::string(what));
  return ok_status();
}

#define CML_READER_FN(name, type, n, load)                        \
  Result<type> ByteReader::name(std::string_view what) {          \
    if (remaining() < n) return short_read(what, n, remaining()); \
    type v = load(data_.data() + pos_);                           \
    pos_ += n;                                                    \
    return v;                                                     \
  }
static inline uint8_t load_u8(const uint8_t* p) { return *p; }
CML_READER_FN(u8, uint8_t, 1, load_u8)
CML_READER_FN(u16_be, uint16_t, 2, load_u16_be)
CML_READER_FN(u32_be, uint32_t, 4, load_u32_be)
CML_READER_FN(u64_be, uint64_t, 8, load_u64_be)
CML_READER_FN(u16_le, uint16_t, 2, load_u16_le)
CML_READER_FN(u32_le, uint32_t, 4, load_u32_le)
CML_READER_FN(u64_le, uint64_t, 8, load_u64_le)
#undef CML_READER_FN

void ByteWriter::u16_be(uint16_t v) { uint8_t b[2]; store_u16_be(b, v); bytes(b); }
void ByteWriter::u32_be(uint32_t v) { uint8_t b[4]; store_u32_be(b, v); bytes(b); }
void ByteWriter::u64_be(uint64_t v) { uint8_t b[8]; store_u64_be(b, v); bytes(b); }
void ByteWriter::u16_le(uint16_t v) { for (int i = 0; i < 2; ++i) u8(uint8_t(v >> (8 * i))); }
void ByteWriter::u32_le(uint32_t v) { for (int i = 0; i < 4; ++i) u8(uint8_t(v >> (8 * i))); }
void ByteWriter::u64_le(uint64_t v) { for (int i = 0; i < 8; ++i) u8(uint8_t(v >> (8 * i))); }

Result<Bytes> read_file(const std::string& path, size_t max_bytes) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return not_found("cannot open " + path);
  struct stat st {};
  if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
    std::fclose(f);
    return invalid_argument(path + " is not a regular file");
  }
  if (static_cast<uint64_t>(st.st_size) > max_bytes) {
    std::fclose(f);
    return resource_exhausted(path + " is " + std::to_string(st.st_size) + " bytes, limit " +
                              std::to_string(max_bytes));
  }
  Bytes out(static_cast<size_t>(st.st_size));
  size_t got = out.empty() ? 0 : std::fread(out.data(), 1, out.size(), f);
  std::fclose(f);
  if (got != out.size()) return unavailable("short read from " + path);
  return out;
}

Status write_file(const std::string& path, ByteSpan data) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return unavailable("cannot create " + path);
  size_t put = data.empty() ? 0 : std::fwrite(data.data(), 1, data.size(), f);
  bool ok = put == data.size() && std::fclose(f) == 0;
  if (!ok) return unavailable("short write to " + path);
  return ok_status();
}

}  // namespace cml
