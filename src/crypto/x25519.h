// X25519 key agreement (RFC 7748) through OpenSSL EVP_PKEY. Thread-safe (objects are immutable).
#pragma once

#include <array>
#include <memory>

#include "base/bytes.h"
#include "crypto/secret.h"

struct evp_pkey_st;  // OpenSSL's EVP_PKEY

namespace cml::crypto {

using X25519PublicKey = std::array<uint8_t, 32>;

class X25519KeyPair {
 public:
  // Fresh ephemeral key pair from the CSPRNG.
  static X25519KeyPair generate();
  // From a 32-byte private scalar (tests and vectors).
  static Result<X25519KeyPair> from_private(ByteSpan private_key);

  const X25519PublicKey& public_key() const { return public_; }
  // Shared secret with the peer's public key. CRYPTO if the result is all-zero (low-order or
  // non-contributory peer key), INVALID_ARGUMENT if the key is not 32 bytes.
  Result<SecretBytes> derive(ByteSpan peer_public) const;

 private:
  SecretBytes private_;
  X25519PublicKey public_{};
  std::shared_ptr<evp_pkey_st> pkey_;  // imported once: derive() then costs one scalar multiplication
};

}  // namespace cml::crypto
