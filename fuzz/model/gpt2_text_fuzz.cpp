// libFuzzer target: GPT-2 pre-tokenization and byte-level BPE over arbitrary bytes, with a small built-in
// vocabulary (all 256 bytes plus a few merges). Checks the invariants: the pre-tokenizer's pieces
// concatenate to the input, and decode(encode(text)) == text.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>

#include "model/tokenizer.h"

namespace {

std::string utf8(char32_t cp) {
  std::string s;
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else {
    s += static_cast<char>(0xC0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return s;
}

const cml::model::Tokenizer& tokenizer() {
  static const auto tok = [] {
    nlohmann::json vocab = nlohmann::json::object();
    for (int b = 0; b < 256; ++b) vocab[utf8(cml::model::gpt2_byte_to_unicode(static_cast<uint8_t>(b)))] = b;
    const char* extra[] = {"\xC4\xA0t", "he", "\xC4\xA0the", "in", "er", "\xC4\xA0\x61", "an", "on", "<|endoftext|>"};
    int id = 256;
    for (const char* e : extra) vocab[e] = id++;
    const std::string enc = vocab.dump();
    std::string merges = "#version: 0.2\n\xC4\xA0 t\nh e\n\xC4\xA0t he\ni n\ne r\n\xC4\xA0 a\na n\no n\n";
    auto r = cml::model::parse_gpt2_tokenizer(enc, merges);
    if (!r.is_ok()) std::abort();
    return std::move(r).value();
  }();
  return *tok;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  std::string joined;
  for (std::string_view piece : cml::model::gpt2_pretokenize(text)) {
    if (piece.empty()) std::abort();
    joined += piece;
  }
  if (joined != text) std::abort();
  const auto& tok = tokenizer();
  if (tok.decode(tok.encode(text, false)) != text) std::abort();
  return 0;
}
