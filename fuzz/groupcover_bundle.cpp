// Fuzzes the bundle parsers: the worker bundle (raw file) and the TEE secrets plaintext (what the
// AEAD would hand over), plus the sealed-file opener (which must refuse without crashing).
#include <cstddef>
#include <cstdint>

#include "groupcover/bundle.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cml::groupcover;
  cml::ByteSpan in(data, size);
  (void)parse_worker_bundle(cml::Bytes(in.begin(), in.end()));
  auto s = parse_tee_secrets(in);
  if (s.is_ok()) {
    // Whatever parses must re-encode to the same bytes.
    auto again = encode_tee_secrets(*s);
    if (again.size() != size) __builtin_trap();
  }
  static const uint8_t key[32] = {1};
  (void)open_tee_bundle(in, cml::ByteSpan(key, 32));
  return 0;
}
