// libFuzzer target: llama2.c checkpoint parser, and format detection over the same bytes.
#include <cstddef>
#include <cstdint>

#include "fuzz_weights_common.h"
#include "model/llama2c_checkpoint.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto f = cml::model::parse_llama2c_checkpoint({data, size});
  if (f.is_ok()) cml::fuzz::touch_weight_file(**f);
  auto any = cml::model::parse_weight_bytes({data, size});
  if (any.is_ok()) cml::fuzz::touch_weight_file(**any);
  return 0;
}
