// libFuzzer target: llama2.c tokenizer.bin parser; a vocabulary that parses is then used to encode and
// decode text (including the input's own tail), and to decode arbitrary ids.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "model/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto t = cml::model::parse_llama2c_tokenizer({data, size});
  if (!t.is_ok()) return 0;
  const cml::model::Tokenizer& tok = **t;
  std::string_view tail(reinterpret_cast<const char*>(data) + size - std::min<size_t>(size, 128),
                        std::min<size_t>(size, 128));
  for (std::string_view text : {std::string_view("Once upon a time, \xE2\x96\x81 \xF0\x9F\x98\x80"), tail}) {
    auto ids = tok.encode(text, true);
    (void)tok.decode(ids);
  }
  for (int32_t id : {-5, -1, 0, 1, 2, 3, tok.vocab_size() - 1, tok.vocab_size(), 1 << 30})
    (void)tok.decode_token(1, id), (void)tok.piece(id);
  return 0;
}
