// AWS Nitro Enclaves: attestation document verifier and the /dev/nsm provider.
//
// Document: COSE_Sign1 (tagged or untagged) whose payload is a CBOR map (definite or indefinite length) with
// module_id, digest ("SHA384"), timestamp (ms), pcrs, certificate, cabundle and optional public_key,
// user_data, nonce (each may be null). The verifier checks, in order: structure; the COSE alg (ES384);
// cabundle[0] equals a pinned root (AWS Nitro Enclaves Root-G1 by default) and the chain
// cabundle[0] → … → certificate verifies with every certificate valid at `now`; the ES384 signature over the
// Sig_structure by the leaf key; the timestamp is not in the future and (when max_age is set) not too old.
// Claims: "pcrN" measurements, public_key, nonce, user_data, issued_at, debug (PCR0, PCR1 and PCR2 all
// zero: the NSM zeroes them for enclaves started in debug mode).
//
// Thread safety: NitroVerifier is immutable and thread-safe. NitroProvider serialises calls internally.
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "attest/attest.h"
#include "attest/cose.h"
#include "crypto/x509.h"

namespace cml::attest {

// A parsed (not yet verified) Nitro document.
struct NitroDocument {
  std::string module_id;
  std::string digest;
  uint64_t timestamp_ms = 0;
  std::map<int, Bytes> pcrs;
  Bytes certificate;
  std::vector<Bytes> cabundle;
  std::optional<Bytes> public_key, user_data, nonce;
  Bytes protected_header, payload, signature;
  std::optional<int64_t> alg;
};
// Bounded parse of COSE_Sign1 + payload map; INVALID_ARGUMENT on any malformed field.
Result<NitroDocument> parse_nitro_document(ByteSpan document);

struct NitroVerifierOptions {
  // Trusted roots (cabundle[0] must be byte-identical to one). Empty = AWS Nitro Enclaves Root-G1.
  std::vector<crypto::Certificate> roots;
  // Refuse documents whose timestamp is older than this at `now` (freshness). Unset = no age limit here
  // (Policy::max_age still applies at appraisal).
  std::optional<Duration> max_age;
  // Tolerated clock skew for timestamps in the future.
  Duration max_clock_skew = std::chrono::seconds(60);
};

class NitroVerifier final : public Verifier {
 public:
  explicit NitroVerifier(NitroVerifierOptions options = {});
  EvidenceType type() const override { return EvidenceType::kNitro; }
  Result<Claims> verify(ByteSpan document, WallTime now) const override;

 private:
  NitroVerifierOptions options_;
};

// Transport to the Nitro Secure Module: one CBOR request in, one CBOR response out.
class NsmTransport {
 public:
  virtual ~NsmTransport() = default;
  virtual Result<Bytes> call(ByteSpan request) = 0;
};
// The real /dev/nsm (ioctl NSM_IOCTL_REQUEST). Only works inside a Nitro enclave.
std::unique_ptr<NsmTransport> open_nsm_device(const std::string& path = "/dev/nsm");

// NSM API request {"Attestation": {"user_data": null, "nonce": …, "public_key": …}} and its response.
Bytes encode_nsm_attestation_request(ByteSpan public_key, ByteSpan nonce, ByteSpan user_data = {});
Result<Bytes> decode_nsm_attestation_response(ByteSpan response);

class NitroProvider final : public Provider {
 public:
  explicit NitroProvider(std::unique_ptr<NsmTransport> transport) : transport_(std::move(transport)) {}
  EvidenceType type() const override { return EvidenceType::kNitro; }
  Result<Evidence> attest(ByteSpan public_key, ByteSpan nonce) override;

 private:
  std::mutex mu_;
  std::unique_ptr<NsmTransport> transport_;
};

}  // namespace cml::attest
