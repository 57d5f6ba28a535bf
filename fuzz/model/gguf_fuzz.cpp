// libFuzzer target: GGUF parser, then the embedded-tokenizer builder over whatever metadata parsed.
#include <cstddef>
#include <cstdint>

#include "fuzz_weights_common.h"
#include "model/gguf.h"
#include "model/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto f = cml::model::parse_gguf({data, size});
  if (!f.is_ok()) return 0;
  cml::fuzz::touch_weight_file(**f);
  auto t = cml::model::tokenizer_from_gguf(**f);
  if (t.is_ok()) {
    auto ids = (*t)->encode("Once upon a time \xF0\x9F\x98\x80 \xFF", true);
    (void)(*t)->decode(ids);
  }
  return 0;
}
