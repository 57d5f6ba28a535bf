// Tensor sub-header and payload decoding; a decoded tensor must re-encode to the same bytes.
#include "net/tensor_codec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cml::net;
  const cml::ByteSpan in(data, size);
  auto h = decode_tensor_header(in, 1u << 20);
  if (h.is_ok() && (h->header_size % 8 != 0 || h->header_size > size || h->data_size > (1u << 20))) __builtin_trap();
  auto t = decode_tensor(in, 1u << 20);
  if (t.is_ok()) {
    const cml::Bytes again = encode_tensor(t->view());
    if (again != cml::Bytes(in.begin(), in.end())) __builtin_trap();
  }
  return 0;
}
