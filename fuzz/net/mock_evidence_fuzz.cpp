// Mock evidence documents: parse arbitrary bytes; parsed documents re-encode identically.
#include "attest/mock.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cml::attest;
  auto c = MockVerifier().verify(cml::ByteSpan(data, size), cml::WallTime{});
  if (c.is_ok()) {
    const cml::Bytes again = encode_mock_document(c->measurements, c->debug, c->public_key, c->nonce);
    if (again != cml::Bytes(data, data + size)) __builtin_trap();
  }
  return 0;
}
