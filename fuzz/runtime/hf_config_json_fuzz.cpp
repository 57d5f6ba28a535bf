// libFuzzer target: Hugging Face config.json reader (size-bounded JSON, typed fields).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "model/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto r = cml::model::parse_hf_config_json(std::string_view(reinterpret_cast<const char*>(data), size));
  if (r.is_ok() && r->n_heads && *r->n_heads == 0x7fffffff) return 1;  // use the result
  return 0;
}
