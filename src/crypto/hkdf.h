// HKDF-SHA256 (RFC 5869) through OpenSSL EVP_KDF. Thread-safe.
#pragma once

#include "base/bytes.h"
#include "crypto/secret.h"

namespace cml::crypto {

// Extract-then-expand. An empty salt means HashLen zero bytes (RFC 5869). Errors: INVALID_ARGUMENT when
// length > 255*32; CRYPTO on library failure.
Result<SecretBytes> hkdf_sha256(ByteSpan salt, ByteSpan ikm, ByteSpan info, size_t length);
// The two halves separately.
Result<SecretBytes> hkdf_sha256_extract(ByteSpan salt, ByteSpan ikm);
Result<SecretBytes> hkdf_sha256_expand(ByteSpan prk, ByteSpan info, size_t length);

}  // namespace cml::crypto
