// Fuzz target: manifest parsing and validation.
#include <cstdint>
#include <string_view>

#include "pipeline/manifest.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto m = cml::pipeline::parse_manifest(std::string_view(reinterpret_cast<const char*>(data), size));
  if (m.is_ok()) {
    // A valid manifest round-trips through its canonical form.
    auto again = cml::pipeline::parse_manifest(cml::pipeline::manifest_to_json(*m));
    if (!again.is_ok() || cml::pipeline::manifest_digest(*again) != cml::pipeline::manifest_digest(*m))
      __builtin_trap();
  }
  return 0;
}
