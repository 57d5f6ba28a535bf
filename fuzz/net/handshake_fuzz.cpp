// Handshake message parsers: the first byte picks the parser; parsed messages re-encode identically.
#include "net/handshake.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cml::net;
  const cml::ByteSpan in(data, size);
  const cml::Bytes orig(in.begin(), in.end());
  if (auto m = parse_client_hello(in); m.is_ok()) {
    if (encode_client_hello(*m) != orig) __builtin_trap();
  }
  if (auto m = parse_server_hello(in); m.is_ok()) {
    if (encode_server_hello(*m) != orig) __builtin_trap();
    (void)transcript_hash(ClientHello{.suites = {m->suite}}, *m);
  }
  if (auto m = parse_server_finished(in); m.is_ok()) {
    if (encode_server_finished(*m) != orig) __builtin_trap();
  }
  if (auto m = parse_client_finished(in); m.is_ok()) {
    if (encode_client_finished(*m) != orig) __builtin_trap();
  }
  return 0;
}
