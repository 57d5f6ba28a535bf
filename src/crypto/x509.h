// X.509 certificates, CRLs and chain verification at an explicit time against pinned roots (OpenSSL 3).
//
// Everything here parses bytes from outside: DER and PEM inputs are size-checked, malformed input is an
// INVALID_ARGUMENT, and a failed check is an ATTESTATION error naming the certificate (by subject) and the
// check. Signatures of every kind OpenSSL supports are verified (ECDSA P-256/P-384, RSA-PSS, RSA PKCS#1).
// Chain verification never fetches anything: roots, intermediates, CRLs and `now` are inputs.
//
// Thread safety: Certificate and Crl are immutable after construction and may be shared across threads;
// the free functions are thread-safe.
#pragma once

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/bytes.h"
#include "base/clock.h"
#include "crypto/ecdsa.h"
#include "crypto/hash.h"

typedef struct x509_st X509;
typedef struct X509_crl_st X509_CRL;

namespace cml::crypto {

// Largest certificate or CRL accepted (Intel's PCK CRL is the largest seen, a few KiB).
constexpr size_t kMaxCertificateSize = 64 * 1024;

class Certificate {
 public:
  Certificate() = default;
  // Exactly one DER certificate (trailing bytes are an error).
  static Result<Certificate> from_der(ByteSpan der);
  // Every "BEGIN CERTIFICATE" block in `pem`, in order (at least one).
  static Result<std::vector<Certificate>> chain_from_pem(std::string_view pem);
  // A file's contents: PEM (one or more blocks) or a single DER certificate.
  static Result<std::vector<Certificate>> parse_any(ByteSpan data);

  X509* get() const { return x509_.get(); }
  bool valid() const { return x509_ != nullptr; }
  const Bytes& der() const { return der_; }
  Digest256 fingerprint_sha256() const { return sha256(der_); }

  std::string subject() const;      // one line, RFC 2253
  std::string issuer() const;       // one line, RFC 2253
  std::string common_name() const;  // subject CN, empty if none
  Bytes serial() const;             // big-endian magnitude
  WallTime not_before() const;
  WallTime not_after() const;
  bool valid_at(WallTime t) const { return not_before() <= t && t <= not_after(); }
  Result<PublicKey> public_key() const;
  // The contents of the extnValue OCTET STRING of extension `oid` (dotted form), or nullopt.
  std::optional<Bytes> extension(std::string_view oid) const;
  // OK when this certificate's signature verifies under `issuer`'s key (no time or CA checks).
  Status verify_signed_by(const Certificate& issuer) const;

 private:
  std::shared_ptr<X509> x509_;
  Bytes der_;
  WallTime not_before_{}, not_after_{};
};

class Crl {
 public:
  Crl() = default;
  static Result<Crl> from_der(ByteSpan der);
  // PEM ("X509 CRL") or DER, or hex of DER (as in some collateral bundles).
  static Result<Crl> parse_any(ByteSpan data);

  X509_CRL* get() const { return crl_.get(); }
  std::string issuer() const;
  WallTime last_update() const;
  std::optional<WallTime> next_update() const;
  // OK when signed by `issuer`, issued by it (names match) and current at `now`.
  Status check(const Certificate& issuer, WallTime now) const;
  bool is_revoked(const Certificate& cert) const;

 private:
  std::shared_ptr<X509_CRL> crl_;
};

// Parsed certificates and verified certificate signatures are cached process-wide, keyed by content hashes
// (bounded). Validity windows and CRLs are checked on every call. Benchmarks clear the caches to measure
// a cold verification.
void clear_certificate_caches();

// Verifies `leaf` ← intermediates ← one of `roots` at `now`: every signature, every validity window (roots
// included), CA constraints, and, for each CRL given, that its issuer's certificates are not revoked (a CRL
// must itself verify and be current). ATTESTATION error naming the failing certificate and check.
Status verify_chain(const Certificate& leaf, std::span<const Certificate> intermediates,
                    std::span<const Certificate> roots, WallTime now, std::span<const Crl> crls = {});

// Bounded DER reader for the few ASN.1 structures read by hand (VCEK and PCK extensions).
struct DerElement {
  uint8_t tag = 0;
  ByteSpan value;  // contents
  ByteSpan whole;  // tag, length and contents
};
class DerReader {
 public:
  explicit DerReader(ByteSpan data) : data_(data) {}
  bool empty() const { return pos_ >= data_.size(); }
  Result<DerElement> next();
  // Next element, which must have `tag`.
  Result<DerElement> expect(uint8_t tag, std::string_view what);

 private:
  ByteSpan data_;
  size_t pos_ = 0;
};
// Dotted text of a DER OBJECT IDENTIFIER's contents ("1.3.6.1.4.1.3704.1.3.1").
Result<std::string> der_oid_to_string(ByteSpan contents);
// Non-negative INTEGER contents as uint64 (up to 8 significant bytes).
Result<uint64_t> der_uint(ByteSpan contents);

}  // namespace cml::crypto
