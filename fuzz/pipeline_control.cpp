// Fuzz target: control-message decoding (bounded JSON, every message type), and step-header decoding.
#include <cstdint>
#include <cstring>
#include <vector>

#include "pipeline/protocol.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  cml::ByteSpan in(data, size);
  auto m = cml::pipeline::decode_control(in, 4096);
  if (m.is_ok()) {
    // Whatever decodes must re-encode to something that decodes to the same type.
    auto again = cml::pipeline::decode_control(cml::pipeline::encode_control(*m), 1 << 20);
    if (!again.is_ok() || again->index() != m->index()) __builtin_trap();
  }
  std::vector<int64_t> v(size / 8);
  if (!v.empty()) std::memcpy(v.data(), data, v.size() * 8);
  auto h = cml::pipeline::decode_step_header(v, 4096);
  if (h.is_ok() && cml::pipeline::encode_step_header(*h) != v) __builtin_trap();
  return 0;
}
