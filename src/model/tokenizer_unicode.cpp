#include "model/tokenizer_unicode.h"

#include <algorithm>
#include <span>

namespace cml::model::unicode {

extern const CodepointRange kLetterRanges[];
extern const size_t kLetterRangeCount;
extern const CodepointRange kNumberRanges[];
extern const size_t kNumberRangeCount;
extern const CodepointRange kSpaceRanges[];
extern const size_t kSpaceRangeCount;

namespace {
bool in_ranges(const CodepointRange* ranges, size_t n, char32_t cp) {
  std::span<const CodepointRange> rs(ranges, n);
  // First range whose last ≥ cp.
  auto it = std::lower_bound(rs.begin(), rs.end(), cp, [](const CodepointRange& r, char32_t c) { return r.last < c; });
  return it != rs.end() && it->first <= cp;
}
}  // namespace

bool is_letter(char32_t cp) {
  if (cp < 0x80) return (cp | 0x20) >= 'a' && (cp | 0x20) <= 'z';
  return in_ranges(kLetterRanges, kLetterRangeCount, cp);
}

bool is_number(char32_t cp) {
  if (cp < 0x80) return cp >= '0' && cp <= '9';
  return in_ranges(kNumberRanges, kNumberRangeCount, cp);
}

bool is_space(char32_t cp) {
  if (cp < 0x80) return cp == ' ' || (cp >= 0x09 && cp <= 0x0d);
  return in_ranges(kSpaceRanges, kSpaceRangeCount, cp);
}

size_t decode_utf8(std::string_view text, size_t pos, char32_t* cp) {
  const auto b0 = static_cast<uint8_t>(text[pos]);
  *cp = kInvalid;
  if (b0 < 0x80) {
    *cp = b0;
    return 1;
  }
  size_t len;
  char32_t v;
  char32_t min;
  if ((b0 & 0xE0) == 0xC0)
    len = 2, v = b0 & 0x1F, min = 0x80;
  else if ((b0 & 0xF0) == 0xE0)
    len = 3, v = b0 & 0x0F, min = 0x800;
  else if ((b0 & 0xF8) == 0xF0)
    len = 4, v = b0 & 0x07, min = 0x10000;
  else
    return 1;
  if (pos + len > text.size()) return 1;
  for (size_t i = 1; i < len; ++i) {
    const auto b = static_cast<uint8_t>(text[pos + i]);
    if ((b & 0xC0) != 0x80) return 1;
    v = (v << 6) | (b & 0x3F);
  }
  if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 1;
  *cp = v;
  return len;
}

}  // namespace cml::model::unicode
