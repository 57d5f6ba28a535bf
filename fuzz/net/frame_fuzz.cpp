// Frame header and whole-frame decoding of arbitrary bytes; a decoded frame must re-encode identically.
#include <cstring>

#include "net/frame.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cml::net;
  const cml::ByteSpan in(data, size);
  for (uint32_t bound : {kMaxFramePayload, uint32_t{4096}, uint32_t{0}}) {
    size_t consumed = 0;
    auto f = decode_frame(in, bound, &consumed);
    if (!f.is_ok()) continue;
    if (consumed != kFrameHeaderSize + f->payload.size() || f->payload.size() > bound) __builtin_trap();
    const cml::Bytes again = encode_frame(f->header, f->payload);
    if (again.size() != consumed || std::memcmp(again.data(), data, consumed) != 0) __builtin_trap();
  }
  (void)classify_sentinel(in);
  return 0;
}
