// The logic behind `cml attest verify`: load evidence and collateral files, verify with the matching real
// backend at a given time, check expectations, and render a one-line verdict or a JSON report.
//
// Evidence files may be raw bytes, base64 text (".b64" or any all-base64 file) or hex text (".hex").
// Thread safety: free functions, thread-safe.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "attest/attest.h"

namespace cml::attest {

struct CheckRequest {
  EvidenceType type = EvidenceType::kNitro;
  std::string evidence_path;
  WallTime at{};
  // SEV-SNP
  std::string vcek_path, cert_chain_path, snp_crl_path;
  // TDX
  std::string tcb_info_path, qe_identity_path, tcb_signing_chain_path, collateral_bundle_path;
  std::string pck_crl_path, root_crl_path;
  // Nitro
  std::optional<Duration> max_age;
  // NAME=HEX: a measurement name, or report_data, nonce, public_key, user_data.
  std::vector<std::pair<std::string, Bytes>> expectations;
};

struct CheckOutcome {
  bool ok = false;
  std::string failed_check;  // "verify", "expect", "input"
  std::string reason;        // one line
  std::optional<Claims> claims;
};

// Raw, base64 or hex evidence (bounded by kMaxEvidenceSize after decoding).
Result<Bytes> load_evidence_file(const std::string& path);
// Parses "name=hex".
Result<std::pair<std::string, Bytes>> parse_expectation(std::string_view text);

CheckOutcome check_evidence(const CheckRequest& request);
// {"verdict": "verified"|"failed", "type", "reason", "claims": {…}}
std::string outcome_json(const CheckRequest& request, const CheckOutcome& outcome);
// One line: "OK: …" or "FAILED (<check>): <reason>".
std::string outcome_line(const CheckOutcome& outcome);

}  // namespace cml::attest
