#include "crypto/random.h"

#include <openssl/rand.h>

#include <climits>

namespace cml::crypto {

void random_fill(MutableByteSpan out) {
  size_t done = 0;
  while (done < out.size()) {
    int chunk = static_cast<int>(std::min<size_t>(out.size() - done, INT_MAX));
    CML_CHECK_MSG(RAND_bytes(out.data() + done, chunk) == 1, "RAND_bytes failed");
    done += static_cast<size_t>(chunk);
  }
}

Bytes random_bytes(size_t n) {
  Bytes b(n);
  random_fill(b);
  return b;
}

SecretBytes random_secret(size_t n) {
  SecretBytes s(n);
  random_fill(s.mutable_span());
  return s;
}

uint64_t random_u64() {
  uint8_t b[8];
  random_fill(b);
  return load_u64_le(b);
}

}  // namespace cml::crypto
