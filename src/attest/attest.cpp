#include "attest/attest.h"

#include <algorithm>

namespace cml::attest {

std::string_view evidence_type_name(EvidenceType t) {
  switch (t) {
    case EvidenceType::kMock:
      return "mock";
    case EvidenceType::kNitro:
      return "nitro";
    case EvidenceType::kSevSnp:
      return "sev-snp";
    case EvidenceType::kTdx:
      return "tdx";
  }
  return "unknown";
}

Result<EvidenceType> parse_evidence_type(std::string_view name) {
  if (name == "mock") return EvidenceType::kMock;
  if (name == "nitro") return EvidenceType::kNitro;
  if (name == "sev-snp" || name == "snp") return EvidenceType::kSevSnp;
  if (name == "tdx") return EvidenceType::kTdx;
  return invalid_argument("unknown attestation type '" + std::string(name) + "' (mock, nitro, sev-snp, tdx)");
}

Status appraise(const Claims& claims, const Policy& policy, WallTime now) {
  if (!policy.allowed_types.empty() &&
      std::find(policy.allowed_types.begin(), policy.allowed_types.end(), claims.type) == policy.allowed_types.end())
    return policy_error("attestation type " + std::string(evidence_type_name(claims.type)) + " is not allowed");
  if (policy.require_measurements && policy.expected_measurements.empty())
    return policy_error("no expected measurements configured (fail closed; use a development policy to allow)");
  for (const auto& [name, want] : policy.expected_measurements) {
    auto it = claims.measurements.find(name);
    if (it == claims.measurements.end()) return policy_error("measurement " + name + " missing from evidence");
    if (it->second != want)
      return policy_error("measurement " + name + " mismatch: expected " + to_hex(want) + ", got " +
                          to_hex(it->second));
  }
  if (claims.debug && !policy.allow_debug) return policy_error("debug-mode TEE refused by policy");
  if (!claims.tcb_status.empty()) {
    const std::vector<std::string> default_ok = {"UpToDate"};
    const auto& ok = policy.accepted_tcb_statuses.empty() ? default_ok : policy.accepted_tcb_statuses;
    if (std::find(ok.begin(), ok.end(), claims.tcb_status) == ok.end())
      return policy_error("TCB status " + claims.tcb_status + " not accepted by policy");
  }
  if (policy.max_age && claims.issued_at) {
    if (now - *claims.issued_at > *policy.max_age)
      return policy_error("evidence is older than the allowed maximum age");
  }
  return ok_status();
}

Status check_binding(const Claims& claims, ByteSpan public_key, ByteSpan nonce) {
  if (claims.public_key.empty()) return attestation_error("evidence binds no public key");
  if (!constant_time_equal(claims.public_key, public_key))
    return attestation_error("public key in evidence does not match the handshake key");
  if (claims.nonce.empty()) return attestation_error("evidence binds no nonce");
  if (!constant_time_equal(claims.nonce, nonce))
    return attestation_error("nonce in evidence does not match the handshake nonce (stale or replayed evidence)");
  return ok_status();
}

void VerifierSet::add(std::shared_ptr<const Verifier> v) {
  verifiers_[v->type()] = std::move(v);
}

Result<Claims> VerifierSet::verify(const Evidence& evidence, WallTime now) const {
  auto it = verifiers_.find(evidence.type);
  if (it == verifiers_.end())
    return attestation_error("no verifier configured for attestation type " +
                             std::string(evidence_type_name(evidence.type)));
  if (evidence.document.size() > kMaxEvidenceSize) return invalid_argument("evidence document too large");
  return it->second->verify(evidence.document, now);
}

}  // namespace cml::attest
