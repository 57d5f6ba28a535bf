// Fuzzes what a worker decodes from a TEE (or any client): HELLO, UPLOAD and COMPUTE headers, with the
// payload length taken from the input too. Input: u32 payload float count (LE) ‖ header bytes.
#include <cstddef>
#include <cstdint>

#include "groupcover/protocol.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cml::groupcover;
  if (size < 4) return 0;
  const uint64_t payload = cml::load_u32_le(data);
  cml::ByteSpan header(data + 4, size - 4);
  static const ModelShapes model{{{8, 4}, {3, 5}, {1024, 768}}};
  auto type = peek_type(header);
  (void)decode_hello(header);
  (void)decode_upload(header, model, payload);
  auto req = decode_compute(header, model, payload);
  if (req.is_ok()) (void)decode_result(header, *req, model, payload);
  (void)decode_error(header);
  (void)decode_hello_ok(header);
  (void)type;
  return 0;
}
