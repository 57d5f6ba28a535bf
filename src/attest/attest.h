// Attestation interfaces: evidence, Provider (inside a TEE), Verifier (anywhere), appraisal policy.
//
// verify() authenticates a document: signatures, certificate chains to pinned roots, validity at an
// explicit `now`. It returns the Claims the document makes and applies no policy. appraise() then applies
// the caller's policy (expected measurements, debug, TCB status). The SecureChannel handshake needs only
// this interface, so it runs unchanged on every backend (mock, nitro, sev-snp, tdx).
//
// Key binding: a Provider must place the handshake's public key and nonce inside the signed evidence
// (Nitro `public_key`/`nonce`; SEV-SNP and TDX report_data = public_key(32) ‖ nonce(32)); the Verifier
// returns them in Claims; check_binding() compares them with the handshake's values.
//
// Thread safety: Verifier::verify is const and thread-safe. Provider::attest may block on a device and
// is serialised by the implementation.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/bytes.h"
#include "base/clock.h"
#include "base/status.h"
#include "crypto/hash.h"

namespace cml::attest {

enum class EvidenceType : uint8_t {
  kMock = 1,
  kNitro = 2,
  kSevSnp = 3,
  kTdx = 4,
};
std::string_view evidence_type_name(EvidenceType t);  // "mock", "nitro", "sev-snp", "tdx"
Result<EvidenceType> parse_evidence_type(std::string_view name);

// Largest evidence document any backend accepts (a TDX quote with its PCK chain is ~5-8 KiB).
constexpr size_t kMaxEvidenceSize = 64 * 1024;

struct Evidence {
  EvidenceType type = EvidenceType::kMock;
  Bytes document;  // raw bytes as produced by the platform (COSE_Sign1, SNP report‖certs, TDX quote)
};

// What an authenticated document says. Measurement names are lower-case and backend-specific:
//   nitro:   "pcr0" … "pcr15" (48-byte values; only the PCRs present)
//   sev-snp: "measurement" (48), "host_data" (32), "id_key_digest", "author_key_digest", "family_id", "image_id"
//   tdx:     "mrtd", "rtmr0" … "rtmr3", "mrconfigid", "mrowner", "mrownerconfig", "mrseam"
//   mock:    whatever the mock document carries
struct Claims {
  EvidenceType type = EvidenceType::kMock;
  crypto::Digest256 document_hash{};  // SHA-256 of the raw document (enters the handshake transcript)
  Bytes public_key;                   // bound key, empty if absent (SNP/TDX: report_data[0..32))
  Bytes nonce;                        // bound nonce, empty if absent (SNP/TDX: report_data[32..64))
  Bytes user_data;                    // Nitro user_data (empty otherwise)
  Bytes report_data;                  // SNP/TDX: full 64-byte report data
  std::map<std::string, Bytes> measurements;
  bool debug = false;                          // debug enclave / debug policy / TD debug attribute
  std::optional<WallTime> issued_at;           // document timestamp where the format has one (Nitro)
  std::string tcb_status;                      // TDX with collateral: "UpToDate", "OutOfDate", …; else empty
  std::vector<std::string> advisories;         // TDX advisory ids (e.g. "INTEL-SA-00837")
  std::map<std::string, std::string> details;  // further printable fields (module id, policy bits, TCB …)
};

class Provider {
 public:
  virtual ~Provider() = default;
  virtual EvidenceType type() const = 0;
  // Produces evidence binding `public_key` and `nonce` (each at most 32 bytes; SNP/TDX require exactly 32).
  virtual Result<Evidence> attest(ByteSpan public_key, ByteSpan nonce) = 0;
};

class Verifier {
 public:
  virtual ~Verifier() = default;
  virtual EvidenceType type() const = 0;
  // Authenticates `document` at wall-clock time `now`. ATTESTATION errors say which check failed;
  // INVALID_ARGUMENT for documents that do not parse. Never reaches the network.
  virtual Result<Claims> verify(ByteSpan document, WallTime now) const = 0;
};

// The caller's requirements on a verified peer.
struct Policy {
  // Evidence types accepted; empty = any type a verifier is configured for.
  std::vector<EvidenceType> allowed_types;
  // name → exact value; every listed name must be present and equal (extra measurements are ignored).
  std::map<std::string, Bytes> expected_measurements;
  bool allow_debug = false;
  // TDX/SNP TCB statuses accepted when the claims carry one; empty = {"UpToDate"}.
  std::vector<std::string> accepted_tcb_statuses;
  // When set, documents with a timestamp older than this at `now` are refused.
  std::optional<Duration> max_age;
  // Production refuses an empty expected_measurements map (fail closed); development allows it.
  bool require_measurements = true;
};

// POLICY error naming the first requirement that fails; OK otherwise.
Status appraise(const Claims& claims, const Policy& policy, WallTime now);
// ATTESTATION error unless the claims carry exactly this key and nonce.
Status check_binding(const Claims& claims, ByteSpan public_key, ByteSpan nonce);

// Verifiers by evidence type: verifies whatever type arrives, if a verifier for it is configured.
class VerifierSet {
 public:
  void add(std::shared_ptr<const Verifier> v);
  bool empty() const { return verifiers_.empty(); }
  Result<Claims> verify(const Evidence& evidence, WallTime now) const;

 private:
  std::map<EvidenceType, std::shared_ptr<const Verifier>> verifiers_;
};

}  // namespace cml::attest
