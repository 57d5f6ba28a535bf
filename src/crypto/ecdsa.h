// ECDSA verification over P-256 and P-384, and the EC/RSA public-key wrapper shared with x509.h.
// Thread safety: PublicKey is immutable after construction and may be shared across threads.
#pragma once

#include <memory>

#include "base/bytes.h"
#include "crypto/hash.h"

typedef struct evp_pkey_st EVP_PKEY;

namespace cml::crypto {

enum class Curve { kP256, kP384 };

// An owned OpenSSL public key (EC or RSA).
class PublicKey {
 public:
  PublicKey() = default;
  explicit PublicKey(EVP_PKEY* owned);  // takes ownership
  // SEC1 uncompressed point (0x04‖X‖Y) or raw X‖Y (64 / 96 bytes) on `curve`.
  static Result<PublicKey> from_ec_point(Curve curve, ByteSpan point);
  // DER SubjectPublicKeyInfo.
  static Result<PublicKey> from_spki_der(ByteSpan der);

  EVP_PKEY* get() const { return key_.get(); }
  bool valid() const { return key_ != nullptr; }

 private:
  std::shared_ptr<EVP_PKEY> key_;
};

enum class SignatureFormat {
  kDer,  // ASN.1 SEQUENCE { r, s }
  kRaw,  // r‖s, each the curve's field size (IEEE P1363)
};

// Verifies `signature` over `message` (hashed with `hash`). Returns OK, or CRYPTO with a reason
// (bad encoding, mismatch); INVALID_ARGUMENT when `key` is empty or not an EC key. Never throws;
// malformed signatures are CRYPTO, not crashes.
Status ecdsa_verify(const PublicKey& key, HashAlg hash, ByteSpan message, ByteSpan signature, SignatureFormat format);
// Same over a precomputed digest.
Status ecdsa_verify_digest(const PublicKey& key, ByteSpan digest, ByteSpan signature, SignatureFormat format);

// Converts a raw r‖s signature to DER (and back), for formats that carry one and verifiers that need the other.
Result<Bytes> ecdsa_raw_to_der(ByteSpan raw);
Result<Bytes> ecdsa_der_to_raw(ByteSpan der, size_t field_size);

}  // namespace cml::crypto
