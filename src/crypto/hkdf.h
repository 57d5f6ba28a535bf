// HKDF-SHA256 (RFC 5869) over OpenSSL's HMAC-SHA256. The free functions are thread-safe; an HkdfExpander
// belongs to one thread.
#pragma once

#include "base/bytes.h"
#include "crypto/hash.h"
#include "crypto/secret.h"

namespace cml::crypto {

// Extract-then-expand. An empty salt means HashLen zero bytes (RFC 5869). Errors: INVALID_ARGUMENT when
// length > 255*32; CRYPTO on library failure.
Result<SecretBytes> hkdf_sha256(ByteSpan salt, ByteSpan ikm, ByteSpan info, size_t length);
// The two halves separately.
Result<SecretBytes> hkdf_sha256_extract(ByteSpan salt, ByteSpan ikm);
Result<SecretBytes> hkdf_sha256_expand(ByteSpan prk, ByteSpan info, size_t length);

// Several expansions of one PRK (a key schedule): the PRK is keyed into HMAC once, not once per output.
// Each expand() equals hkdf_sha256_expand(prk, info, length).
class HkdfExpander {
 public:
  // INVALID_ARGUMENT when the PRK is shorter than 32 bytes.
  static Result<HkdfExpander> create(ByteSpan prk);
  // INVALID_ARGUMENT when length is not 1..255*32.
  Result<SecretBytes> expand(ByteSpan info, size_t length);

 private:
  explicit HkdfExpander(ByteSpan prk) : mac_(prk) {}
  HmacSha256 mac_;
};

}  // namespace cml::crypto
