#include "attest/evidence_check.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>

#include "attest/nitro.h"
#include "attest/sev_snp.h"
#include "attest/tdx.h"

namespace cml::attest {

namespace {

constexpr size_t kMaxInputFile = 4 * kMaxEvidenceSize;

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

std::string strip_space(ByteSpan data) {
  std::string out;
  out.reserve(data.size());
  for (uint8_t c : data)
    if (!std::isspace(c)) out.push_back(static_cast<char>(c));
  return out;
}

bool all_of_set(std::string_view s, std::string_view set) {
  return !s.empty() && s.find_first_not_of(set) == std::string_view::npos;
}

Result<Bytes> base64_decode(const std::string& text) {
  if (text.size() % 4 != 0) return invalid_argument("base64 text length is not a multiple of 4");
  Bytes out(text.size() / 4 * 3);
  int n =
      EVP_DecodeBlock(out.data(), reinterpret_cast<const unsigned char*>(text.data()), static_cast<int>(text.size()));
  if (n < 0) return invalid_argument("malformed base64");
  size_t pad = 0;
  if (!text.empty() && text.back() == '=') ++pad;
  if (text.size() > 1 && text[text.size() - 2] == '=') ++pad;
  out.resize(static_cast<size_t>(n) - pad);
  return out;
}

Result<std::string> read_text(const std::string& path) {
  CML_ASSIGN_OR_RETURN(Bytes b, read_file(path, kMaxInputFile));
  return std::string(b.begin(), b.end());
}

CheckOutcome fail(std::string check, std::string reason) {
  CheckOutcome o;
  o.failed_check = std::move(check);
  o.reason = std::move(reason);
  return o;
}

Result<std::shared_ptr<Verifier>> make_verifier(const CheckRequest& r, Bytes& document) {
  switch (r.type) {
    case EvidenceType::kNitro: {
      NitroVerifierOptions o;
      o.max_age = r.max_age;
      return std::shared_ptr<Verifier>(std::make_shared<NitroVerifier>(o));
    }
    case EvidenceType::kSevSnp: {
      SnpVerifierOptions o;
      if (!r.snp_crl_path.empty()) {
        CML_ASSIGN_OR_RETURN(Bytes b, read_file(r.snp_crl_path, kMaxInputFile));
        CML_ASSIGN_OR_RETURN(crypto::Crl crl, crypto::Crl::parse_any(b));
        o.crls.push_back(std::move(crl));
      }
      if (document.size() == kSnpReportSize && (!r.vcek_path.empty() || !r.cert_chain_path.empty())) {
        // Assemble the handshake wire format: report ‖ certificate table.
        CML_ASSIGN_OR_RETURN(SnpReport rep, parse_snp_report(document));
        SnpCertTable table;
        if (!r.vcek_path.empty()) {
          CML_ASSIGN_OR_RETURN(Bytes vek, read_file(r.vcek_path, kMaxInputFile));
          CML_ASSIGN_OR_RETURN(auto certs, crypto::Certificate::parse_any(vek));
          (rep.signing_key() == SnpSigningKey::kVlek ? table.vlek : table.vcek) = certs[0].der();
        }
        if (!r.cert_chain_path.empty()) {
          CML_ASSIGN_OR_RETURN(Bytes chain, read_file(r.cert_chain_path, kMaxInputFile));
          CML_ASSIGN_OR_RETURN(auto certs, crypto::Certificate::parse_any(chain));
          for (const auto& c : certs) (c.subject() == c.issuer() ? table.ark : table.ask) = c.der();
        }
        document = make_snp_document(document, table);
      }
      return std::shared_ptr<Verifier>(std::make_shared<SnpVerifier>(o));
    }
    case EvidenceType::kTdx: {
      TdxVerifierOptions o;
      if (!r.collateral_bundle_path.empty()) {
        CML_ASSIGN_OR_RETURN(std::string text, read_text(r.collateral_bundle_path));
        CML_ASSIGN_OR_RETURN(o, options_from_bundle(text));
      }
      const bool any_pcs = !r.tcb_info_path.empty() || !r.qe_identity_path.empty() || !r.tcb_signing_chain_path.empty();
      if (any_pcs) {
        if (r.tcb_info_path.empty() || r.qe_identity_path.empty() || r.tcb_signing_chain_path.empty())
          return invalid_argument("--tcb-info, --qe-identity and --tcb-signing-chain go together");
        CML_ASSIGN_OR_RETURN(std::string tcb, read_text(r.tcb_info_path));
        CML_ASSIGN_OR_RETURN(std::string qe, read_text(r.qe_identity_path));
        CML_ASSIGN_OR_RETURN(std::string chain, read_text(r.tcb_signing_chain_path));
        CML_ASSIGN_OR_RETURN(o.collateral, collateral_from_pcs(tcb, qe, chain));
      }
      for (const std::string* p : {&r.pck_crl_path, &r.root_crl_path}) {
        if (p->empty()) continue;
        CML_ASSIGN_OR_RETURN(Bytes b, read_file(*p, kMaxInputFile));
        CML_ASSIGN_OR_RETURN(crypto::Crl crl, crypto::Crl::parse_any(b));
        o.crls.push_back(std::move(crl));
      }
      return std::shared_ptr<Verifier>(std::make_shared<TdxVerifier>(o));
    }
    case EvidenceType::kMock:
      break;
  }
  return invalid_argument("cml attest verify handles nitro, sev-snp and tdx evidence");
}

std::optional<Bytes> claim_value(const Claims& c, const std::string& name) {
  if (name == "report_data") return c.report_data;
  if (name == "nonce") return c.nonce;
  if (name == "public_key") return c.public_key;
  if (name == "user_data") return c.user_data;
  auto it = c.measurements.find(name);
  if (it == c.measurements.end()) return std::nullopt;
  return it->second;
}

}  // namespace

Result<Bytes> load_evidence_file(const std::string& path) {
  CML_ASSIGN_OR_RETURN(Bytes raw, read_file(path, kMaxInputFile));
  Bytes out;
  if (ends_with(path, ".hex")) {
    CML_ASSIGN_OR_RETURN(out, from_hex(strip_space(raw)));
  } else if (ends_with(path, ".b64")) {
    CML_ASSIGN_OR_RETURN(out, base64_decode(strip_space(raw)));
  } else {
    const std::string text = strip_space(raw);
    if (raw.size() > 64 && all_of_set(text, "0123456789abcdefABCDEF")) {
      CML_ASSIGN_OR_RETURN(out, from_hex(text));
    } else if (raw.size() > 64 &&
               all_of_set(text, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")) {
      CML_ASSIGN_OR_RETURN(out, base64_decode(text));
    } else {
      out = std::move(raw);
    }
  }
  if (out.empty()) return invalid_argument("evidence file " + path + " is empty");
  if (out.size() > kMaxEvidenceSize)
    return invalid_argument("evidence larger than " + std::to_string(kMaxEvidenceSize));
  return out;
}

Result<std::pair<std::string, Bytes>> parse_expectation(std::string_view text) {
  const size_t eq = text.find('=');
  if (eq == std::string_view::npos || eq == 0) return invalid_argument("expectation must be NAME=HEX");
  auto value = from_hex(text.substr(eq + 1));
  if (!value) return invalid_argument("expectation " + std::string(text.substr(0, eq)) + ": value is not hex");
  std::string name(text.substr(0, eq));
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char ch) { return std::tolower(ch); });
  return std::make_pair(std::move(name), std::move(*value));
}

CheckOutcome check_evidence(const CheckRequest& r) {
  auto doc = load_evidence_file(r.evidence_path);
  if (!doc) return fail("input", doc.status().message());
  Bytes document = std::move(*doc);
  auto verifier = make_verifier(r, document);
  if (!verifier) return fail("input", verifier.status().message());
  auto claims = (*verifier)->verify(document, r.at);
  if (!claims) return fail("verify", claims.status().message());
  CheckOutcome out;
  out.claims = std::move(*claims);
  for (const auto& [name, want] : r.expectations) {
    auto got = claim_value(*out.claims, name);
    if (!got) {
      out.failed_check = "expect";
      out.reason = "expectation " + name + " failed: the evidence has no such field";
      return out;
    }
    if (*got != want) {
      out.failed_check = "expect";
      out.reason = "expectation " + name + " failed: expected " + to_hex(want) + ", evidence has " + to_hex(*got);
      return out;
    }
  }
  out.ok = true;
  return out;
}

std::string outcome_line(const CheckOutcome& o) {
  if (!o.ok) return "FAILED (" + o.failed_check + "): " + o.reason;
  const Claims& c = *o.claims;
  std::string s = "OK: " + std::string(evidence_type_name(c.type)) + " evidence verified";
  if (!c.tcb_status.empty()) s += ", TCB " + c.tcb_status;
  if (!c.advisories.empty()) s += " (" + std::to_string(c.advisories.size()) + " advisories)";
  if (c.debug) s += ", DEBUG TEE";
  s += ", document sha256 " + to_hex(c.document_hash);
  return s;
}

std::string outcome_json(const CheckRequest& r, const CheckOutcome& o) {
  nlohmann::json j;
  j["verdict"] = o.ok ? "verified" : "failed";
  j["type"] = std::string(evidence_type_name(r.type));
  j["at"] = format_rfc3339(r.at);
  j["reason"] = o.ok ? "" : o.reason;
  if (!o.ok) j["failed_check"] = o.failed_check;
  if (o.claims) {
    const Claims& c = *o.claims;
    nlohmann::json cj;
    nlohmann::json m = nlohmann::json::object();
    for (const auto& [k, v] : c.measurements) m[k] = to_hex(v);
    cj["measurements"] = m;
    cj["report_data"] = to_hex(c.report_data);
    cj["public_key"] = to_hex(c.public_key);
    cj["nonce"] = to_hex(c.nonce);
    cj["user_data"] = to_hex(c.user_data);
    cj["debug"] = c.debug;
    cj["document_sha256"] = to_hex(c.document_hash);
    cj["tcb_status"] = c.tcb_status;
    cj["advisories"] = c.advisories;
    if (c.issued_at) cj["issued_at"] = format_rfc3339(*c.issued_at);
    nlohmann::json d = nlohmann::json::object();
    for (const auto& [k, v] : c.details) d[k] = v;
    cj["details"] = d;
    j["claims"] = cj;
  }
  return j.dump(2);
}

}  // namespace cml::attest
