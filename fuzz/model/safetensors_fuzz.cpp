// libFuzzer target: safetensors parser.
#include <cstddef>
#include <cstdint>

#include "fuzz_weights_common.h"
#include "model/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto f = cml::model::parse_safetensors({data, size});
  if (f.is_ok()) cml::fuzz::touch_weight_file(**f);
  return 0;
}
