// X25519 key agreement (RFC 7748) through OpenSSL EVP_PKEY. Thread-safe (objects are immutable).
#pragma once

#include <array>
#include <memory>

#include "base/bytes.h"
#include "crypto/secret.h"

typedef struct evp_pkey_st EVP_PKEY;

namespace cml::crypto {

using X25519PublicKey = std::array<uint8_t, 32>;

class X25519KeyPair {
 public:
  // Fresh ephemeral key pair from the CSPRNG.
  static X25519KeyPair generate();
  // A fresh key pair for one handshake, taken from a small stock that a background thread keeps
  // filled, so that the scalar multiplication making the public key is off the handshake's critical
  // path; generated on the spot when the stock is empty (or in a forked child). Each pair is handed
  // out exactly once; the stock holds at most 4 and OpenSSL wipes them when freed.
  static X25519KeyPair take_ephemeral();
  // From a 32-byte private scalar (tests and vectors).
  static Result<X25519KeyPair> from_private(ByteSpan private_key);

  const X25519PublicKey& public_key() const { return public_; }
  // Shared secret with the peer's public key. CRYPTO if the result is all-zero (low-order or
  // non-contributory peer key), INVALID_ARGUMENT if the key is not 32 bytes.
  Result<SecretBytes> derive(ByteSpan peer_public) const;

 private:
  struct KeyFree {
    void operator()(EVP_PKEY* key) const;
  };
  // The imported private key (OpenSSL wipes it on free). Kept so that derive() costs one scalar
  // multiplication; importing the private key again would compute the public key each time.
  std::unique_ptr<EVP_PKEY, KeyFree> key_;
  X25519PublicKey public_{};
};

}  // namespace cml::crypto
