// Cryptographically secure random bytes (OpenSSL RAND_bytes). Thread-safe.
#pragma once

#include "base/bytes.h"
#include "crypto/secret.h"

namespace cml::crypto {

// Fills `out`; aborts if the CSPRNG fails (there is no safe way to continue).
void random_fill(MutableByteSpan out);
Bytes random_bytes(size_t n);
SecretBytes random_secret(size_t n);
// Uniform 64-bit value.
uint64_t random_u64();

}  // namespace cml::crypto
