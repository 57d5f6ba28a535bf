#include "attest/tdx.h"

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>

#include "attest/roots.h"
#include "attest/sev_snp.h"
#include "crypto/ecdsa.h"

namespace cml::attest {

namespace {

constexpr uint16_t kAttKeyEcdsaP256 = 2;
constexpr uint32_t kTeeTypeTdx = 0x81;
constexpr uint16_t kCertDataQeReport = 6;
constexpr uint16_t kCertDataPckChain = 5;
constexpr size_t kMaxCollateralSize = 256 * 1024;

template <size_t N>
Status take_into(ByteReader& r, std::array<uint8_t, N>& out, std::string_view what) {
  CML_ASSIGN_OR_RETURN(ByteSpan s, r.take(N, what));
  std::memcpy(out.data(), s.data(), N);
  return ok_status();
}

Result<TdReport> parse_td_report(ByteSpan b, bool v15) {
  ByteReader r(b);
  TdReport t;
  CML_RETURN_IF_ERROR(take_into(r, t.tee_tcb_svn, "TEE_TCB_SVN"));
  CML_RETURN_IF_ERROR(take_into(r, t.mrseam, "MRSEAM"));
  CML_RETURN_IF_ERROR(take_into(r, t.mrsignerseam, "MRSIGNERSEAM"));
  CML_ASSIGN_OR_RETURN(t.seam_attributes, r.u64_le("SEAMATTRIBUTES"));
  CML_ASSIGN_OR_RETURN(t.td_attributes, r.u64_le("TDATTRIBUTES"));
  CML_ASSIGN_OR_RETURN(t.xfam, r.u64_le("XFAM"));
  CML_RETURN_IF_ERROR(take_into(r, t.mrtd, "MRTD"));
  CML_RETURN_IF_ERROR(take_into(r, t.mrconfigid, "MRCONFIGID"));
  CML_RETURN_IF_ERROR(take_into(r, t.mrowner, "MROWNER"));
  CML_RETURN_IF_ERROR(take_into(r, t.mrownerconfig, "MROWNERCONFIG"));
  for (auto& m : t.rtmr) CML_RETURN_IF_ERROR(take_into(r, m, "RTMR"));
  CML_RETURN_IF_ERROR(take_into(r, t.report_data, "REPORTDATA"));
  if (v15) {
    std::array<uint8_t, 16> svn2{};
    std::array<uint8_t, 48> service{};
    CML_RETURN_IF_ERROR(take_into(r, svn2, "TEE_TCB_SVN_2"));
    CML_RETURN_IF_ERROR(take_into(r, service, "MRSERVICETD"));
    t.tee_tcb_svn2 = svn2;
    t.mrservicetd = service;
  }
  CML_RETURN_IF_ERROR(r.expect_end("TD report"));
  return t;
}

Result<SgxReport> parse_sgx_report(ByteSpan b) {
  if (b.size() != kSgxReportSize) return invalid_argument("QE report must be 384 bytes");
  SgxReport q;
  std::memcpy(q.cpu_svn.data(), b.data(), 16);
  q.misc_select = load_u32_le(b.data() + 16);
  std::memcpy(q.attributes.data(), b.data() + 48, 16);
  std::memcpy(q.mrenclave.data(), b.data() + 64, 32);
  std::memcpy(q.mrsigner.data(), b.data() + 128, 32);
  q.isv_prod_id = load_u16_le(b.data() + 256);
  q.isv_svn = load_u16_le(b.data() + 258);
  std::memcpy(q.report_data.data(), b.data() + 320, 64);
  return q;
}

bool all_zero(ByteSpan b) {
  return std::all_of(b.begin(), b.end(), [](uint8_t x) { return x == 0; });
}

// Raw text of member `key` of the top-level JSON object in `text` (the exact bytes Intel signs).
Result<std::string_view> raw_json_member(std::string_view text, std::string_view key) {
  size_t i = 0;
  const size_t n = text.size();
  auto ws = [&] {
    while (i < n && (text[i] == ' ' || text[i] == '\n' || text[i] == '\r' || text[i] == '\t')) ++i;
  };
  auto skip_string = [&]() -> bool {  // at '"'
    ++i;
    while (i < n) {
      if (text[i] == '\\') {
        i += 2;
        continue;
      }
      if (text[i] == '"') {
        ++i;
        return true;
      }
      ++i;
    }
    return false;
  };
  auto skip_value = [&]() -> bool {
    int depth = 0;
    while (i < n) {
      char c = text[i];
      if (c == '"') {
        if (!skip_string()) return false;
        if (depth == 0) return true;
        continue;
      }
      if (c == '{' || c == '[') {
        if (++depth > 64) return false;
      } else if (c == '}' || c == ']') {
        if (depth == 0) return true;  // end of the enclosing object
        if (--depth == 0) {
          ++i;
          return true;
        }
      } else if (depth == 0 && (c == ',')) {
        return true;
      }
      ++i;
    }
    return false;
  };
  ws();
  if (i >= n || text[i] != '{') return invalid_argument("collateral is not a JSON object");
  ++i;
  while (true) {
    ws();
    if (i >= n || text[i] != '"') return invalid_argument("collateral JSON has no member '" + std::string(key) + "'");
    const size_t ks = i;
    if (!skip_string()) return invalid_argument("collateral JSON: unterminated string");
    std::string_view k = text.substr(ks + 1, i - ks - 2);
    ws();
    if (i >= n || text[i] != ':') return invalid_argument("collateral JSON: expected ':'");
    ++i;
    ws();
    const size_t vs = i;
    if (!skip_value()) return invalid_argument("collateral JSON: malformed value");
    if (k == key) return text.substr(vs, i - vs);
    ws();
    if (i < n && text[i] == ',') {
      ++i;
      continue;
    }
    return invalid_argument("collateral JSON has no member '" + std::string(key) + "'");
  }
}

Result<nlohmann::json> parse_json(std::string_view text, std::string_view what) {
  if (text.size() > kMaxCollateralSize) return invalid_argument(std::string(what) + " too large");
  auto j = nlohmann::json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return invalid_argument(std::string(what) + " is not valid JSON");
  return j;
}

Result<Bytes> hex_field(const nlohmann::json& j, const char* key, std::string_view what) {
  if (!j.contains(key) || !j[key].is_string()) return invalid_argument(std::string(what) + ": missing " + key);
  auto b = from_hex(j[key].get<std::string>());
  if (!b) return invalid_argument(std::string(what) + ": " + key + " is not hex");
  return *b;
}

Result<WallTime> time_field(const nlohmann::json& j, const char* key, std::string_view what) {
  if (!j.contains(key) || !j[key].is_string()) return invalid_argument(std::string(what) + ": missing " + key);
  auto t = parse_time(j[key].get<std::string>());
  if (!t) return invalid_argument(std::string(what) + ": bad " + key);
  return *t;
}

Result<int64_t> int_field(const nlohmann::json& j, const char* key, std::string_view what) {
  if (!j.contains(key) || !j[key].is_number_integer()) return invalid_argument(std::string(what) + ": missing " + key);
  return j[key].get<int64_t>();
}

// ---- TCB status convergence (Intel's QVL semantics).
bool is_config_needed(const std::string& s) {
  return s == "ConfigurationNeeded" || s == "ConfigurationAndSWHardeningNeeded";
}
std::string converge_out_of_date(const std::string& platform) {
  if (platform == "Revoked") return platform;
  if (is_config_needed(platform) || platform == "OutOfDateConfigurationNeeded") return "OutOfDateConfigurationNeeded";
  return "OutOfDate";
}
std::string converge(const std::string& platform, const std::string& other) {
  if (other == "Revoked") return "Revoked";
  if (other == "OutOfDate") return converge_out_of_date(platform);
  return platform;
}

void add_advisories(const nlohmann::json& level, std::vector<std::string>& out) {
  if (!level.contains("advisoryIDs") || !level["advisoryIDs"].is_array()) return;
  for (const auto& a : level["advisoryIDs"]) {
    if (!a.is_string()) continue;
    std::string id = a.get<std::string>();
    if (std::find(out.begin(), out.end(), id) == out.end()) out.push_back(id);
  }
}

Status verify_collateral_signature(std::string_view body, ByteSpan sig, const crypto::Certificate& signer,
                                   std::string_view what) {
  CML_ASSIGN_OR_RETURN(crypto::PublicKey key, signer.public_key());
  if (sig.size() != 64) return attestation_error(std::string(what) + " signature is not 64 bytes");
  if (!crypto::ecdsa_verify(key, crypto::HashAlg::kSha256, as_bytes(body), sig, crypto::SignatureFormat::kRaw))
    return attestation_error(std::string(what) + " signature does not verify under the TCB signing certificate");
  return ok_status();
}

Status check_current(const nlohmann::json& j, WallTime now, std::string_view what) {
  CML_ASSIGN_OR_RETURN(WallTime issued, time_field(j, "issueDate", what));
  CML_ASSIGN_OR_RETURN(WallTime next, time_field(j, "nextUpdate", what));
  if (now < issued)
    return attestation_error(std::string(what) + " is not yet valid (issueDate " + format_rfc3339(issued) + ")");
  if (now > next)
    return attestation_error(std::string(what) + " is stale (nextUpdate " + format_rfc3339(next) +
                             "); fetch fresh collateral");
  return ok_status();
}

Result<std::vector<uint8_t>> svn_list(const nlohmann::json& comps, std::string_view what) {
  if (!comps.is_array() || comps.size() != 16) return invalid_argument(std::string(what) + " must list 16 components");
  std::vector<uint8_t> out;
  for (const auto& c : comps) {
    if (!c.is_object() || !c.contains("svn") || !c["svn"].is_number_integer())
      return invalid_argument(std::string(what) + ": component without svn");
    int64_t v = c["svn"].get<int64_t>();
    if (v < 0 || v > 255) return invalid_argument(std::string(what) + ": svn out of range");
    out.push_back(static_cast<uint8_t>(v));
  }
  return out;
}

struct TcbResult {
  std::string status;
  std::vector<std::string> advisories;
  std::string qe_status, platform_status, module_status;
};

}  // namespace

struct TdxPreparedCollateral {
  Status status;  // parse errors and signature failures (independent of time)
  nlohmann::json tcb, qe;
};

namespace {

std::shared_ptr<const TdxPreparedCollateral> prepare_collateral(const TdxCollateral& col) {
  auto p = std::make_shared<TdxPreparedCollateral>();
  auto run = [&]() -> Status {
    if (col.tcb_signing_chain.empty()) return attestation_error("no TCB signing certificate in the collateral");
    const crypto::Certificate& signer = col.tcb_signing_chain[0];
    CML_RETURN_IF_ERROR(verify_collateral_signature(col.tcb_info_json, col.tcb_info_signature, signer, "TCB info"));
    CML_RETURN_IF_ERROR(
        verify_collateral_signature(col.qe_identity_json, col.qe_identity_signature, signer, "QE identity"));
    CML_ASSIGN_OR_RETURN(p->tcb, parse_json(col.tcb_info_json, "TCB info"));
    CML_ASSIGN_OR_RETURN(p->qe, parse_json(col.qe_identity_json, "QE identity"));
    return ok_status();
  };
  p->status = run();
  return p;
}

Result<TcbResult> evaluate_tcb(const TdxPreparedCollateral& col, const TdxQuote& q, const PckTcb& pck, WallTime now) {
  TcbResult res;
  // QE identity.
  const nlohmann::json& qe = col.qe;
  CML_RETURN_IF_ERROR(check_current(qe, now, "QE identity"));
  if (!qe.contains("id") || qe["id"] != "TD_QE") return attestation_error("QE identity is not for the TDX QE (TD_QE)");
  CML_ASSIGN_OR_RETURN(Bytes mrsigner, hex_field(qe, "mrsigner", "QE identity"));
  if (!std::equal(mrsigner.begin(), mrsigner.end(), q.qe_report.mrsigner.begin()) || mrsigner.size() != 32)
    return attestation_error("QE MRSIGNER does not match the QE identity");
  CML_ASSIGN_OR_RETURN(int64_t prodid, int_field(qe, "isvprodid", "QE identity"));
  if (prodid != q.qe_report.isv_prod_id) return attestation_error("QE ISVPRODID does not match the QE identity");
  CML_ASSIGN_OR_RETURN(Bytes misc, hex_field(qe, "miscselect", "QE identity"));
  CML_ASSIGN_OR_RETURN(Bytes misc_mask, hex_field(qe, "miscselectMask", "QE identity"));
  if (misc.size() != 4 || misc_mask.size() != 4) return invalid_argument("QE identity: bad miscselect");
  if ((q.qe_report.misc_select & load_u32_be(misc_mask.data())) != load_u32_be(misc.data()))
    return attestation_error("QE MISCSELECT does not match the QE identity");
  CML_ASSIGN_OR_RETURN(Bytes attr, hex_field(qe, "attributes", "QE identity"));
  CML_ASSIGN_OR_RETURN(Bytes attr_mask, hex_field(qe, "attributesMask", "QE identity"));
  if (attr.size() != 16 || attr_mask.size() != 16) return invalid_argument("QE identity: bad attributes");
  for (size_t i = 0; i < 16; ++i)
    if ((q.qe_report.attributes[i] & attr_mask[i]) != attr[i])
      return attestation_error("QE ATTRIBUTES do not match the QE identity");
  res.qe_status = "OutOfDate";  // no level with isvsvn ≤ the QE's
  std::vector<std::string> advisories;
  if (qe.contains("tcbLevels") && qe["tcbLevels"].is_array()) {
    for (const auto& lvl : qe["tcbLevels"]) {
      if (!lvl.contains("tcb") || !lvl["tcb"].contains("isvsvn") || !lvl["tcb"]["isvsvn"].is_number_integer()) continue;
      if (q.qe_report.isv_svn >= lvl["tcb"]["isvsvn"].get<int64_t>()) {
        res.qe_status = lvl.value("tcbStatus", "Unknown");
        add_advisories(lvl, advisories);
        break;
      }
    }
  }

  // TCB info.
  const nlohmann::json& tcb = col.tcb;
  CML_RETURN_IF_ERROR(check_current(tcb, now, "TCB info"));
  if (!tcb.contains("id") || tcb["id"] != "TDX") return attestation_error("TCB info is not TDX TCB info");
  CML_ASSIGN_OR_RETURN(Bytes fmspc, hex_field(tcb, "fmspc", "TCB info"));
  if (fmspc.size() != 6 || !std::equal(fmspc.begin(), fmspc.end(), pck.fmspc.begin()))
    return attestation_error("TCB info FMSPC " + to_hex(fmspc) + " does not match the PCK certificate's " +
                             to_hex(pck.fmspc));
  CML_ASSIGN_OR_RETURN(Bytes pce_id, hex_field(tcb, "pceId", "TCB info"));
  if (pce_id.size() != 2 || !std::equal(pce_id.begin(), pce_id.end(), pck.pce_id.begin()))
    return attestation_error("TCB info PCE-ID does not match the PCK certificate");
  if (!tcb.contains("tcbLevels") || !tcb["tcbLevels"].is_array()) return invalid_argument("TCB info has no tcbLevels");
  const auto& svn = q.body.tee_tcb_svn;
  const size_t tdx_start = svn[1] > 0 ? 2 : 0;  // module SVN bytes are judged by the module identity
  bool found = false;
  for (const auto& lvl : tcb["tcbLevels"]) {
    if (!lvl.contains("tcb")) continue;
    const auto& t = lvl["tcb"];
    CML_ASSIGN_OR_RETURN(auto sgx, svn_list(t.value("sgxtcbcomponents", nlohmann::json()), "sgxtcbcomponents"));
    CML_ASSIGN_OR_RETURN(int64_t pcesvn, int_field(t, "pcesvn", "TCB level"));
    bool ok = pck.pce_svn >= pcesvn;
    for (size_t i = 0; ok && i < 16; ++i) ok = pck.sgx_svn[i] >= sgx[i];
    if (!ok) continue;
    CML_ASSIGN_OR_RETURN(auto tdx, svn_list(t.value("tdxtcbcomponents", nlohmann::json()), "tdxtcbcomponents"));
    for (size_t i = tdx_start; ok && i < 16; ++i) ok = svn[i] >= tdx[i];
    if (!ok) continue;
    res.platform_status = lvl.value("tcbStatus", "Unknown");
    add_advisories(lvl, advisories);
    found = true;
    break;
  }
  if (!found) return attestation_error("no TCB level in the TCB info matches this platform (TCB not supported)");

  // TDX module identity (TEE_TCB_SVN[1] = module major version; [0] = module SVN).
  res.module_status = "UpToDate";
  if (svn[1] > 0 && tcb.contains("tdxModuleIdentities") && tcb["tdxModuleIdentities"].is_array()) {
    char id[16];
    std::snprintf(id, sizeof(id), "TDX_%02X", svn[1]);
    const nlohmann::json* ident = nullptr;
    for (const auto& m : tcb["tdxModuleIdentities"])
      if (m.value("id", "") == id) ident = &m;
    if (!ident) return attestation_error(std::string("TCB info has no identity for TDX module ") + id);
    CML_ASSIGN_OR_RETURN(Bytes msigner, hex_field(*ident, "mrsigner", "TDX module identity"));
    if (msigner.size() != 48 || !std::equal(msigner.begin(), msigner.end(), q.body.mrsignerseam.begin()))
      return attestation_error("MRSIGNERSEAM does not match the TDX module identity");
    CML_ASSIGN_OR_RETURN(Bytes mattr, hex_field(*ident, "attributes", "TDX module identity"));
    CML_ASSIGN_OR_RETURN(Bytes mmask, hex_field(*ident, "attributesMask", "TDX module identity"));
    if (mattr.size() != 8 || mmask.size() != 8) return invalid_argument("TDX module identity: bad attributes");
    for (int i = 0; i < 8; ++i)
      if ((static_cast<uint8_t>(q.body.seam_attributes >> (8 * i)) & mmask[i]) != mattr[i])
        return attestation_error("SEAM attributes do not match the TDX module identity");
    bool mfound = false;
    if (ident->contains("tcbLevels") && (*ident)["tcbLevels"].is_array()) {
      for (const auto& lvl : (*ident)["tcbLevels"]) {
        if (!lvl.contains("tcb") || !lvl["tcb"].contains("isvsvn")) continue;
        if (svn[0] >= lvl["tcb"]["isvsvn"].get<int64_t>()) {
          res.module_status = lvl.value("tcbStatus", "Unknown");
          add_advisories(lvl, advisories);
          mfound = true;
          break;
        }
      }
    }
    if (!mfound) return attestation_error(std::string("no TCB level matches TDX module ") + id);
  } else if (svn[1] == 0 && tcb.contains("tdxModule")) {
    CML_ASSIGN_OR_RETURN(Bytes msigner, hex_field(tcb["tdxModule"], "mrsigner", "TDX module"));
    if (msigner.size() != 48 || !std::equal(msigner.begin(), msigner.end(), q.body.mrsignerseam.begin()))
      return attestation_error("MRSIGNERSEAM does not match the TDX module in the TCB info");
  }
  std::string status = converge(res.platform_status, res.module_status);
  status = converge(status, res.qe_status);
  res.status = status;
  res.advisories = std::move(advisories);
  std::sort(res.advisories.begin(), res.advisories.end());
  return res;
}

}  // namespace

Result<TdxQuote> parse_tdx_quote(ByteSpan raw) {
  if (raw.size() > kMaxEvidenceSize) return invalid_argument("TDX quote larger than the evidence limit");
  ByteReader r(raw);
  TdxQuote q;
  CML_ASSIGN_OR_RETURN(q.version, r.u16_le("quote version"));
  CML_ASSIGN_OR_RETURN(q.att_key_type, r.u16_le("attestation key type"));
  CML_ASSIGN_OR_RETURN(q.tee_type, r.u32_le("TEE type"));
  CML_ASSIGN_OR_RETURN(q.qe_svn, r.u16_le("QE SVN"));
  CML_ASSIGN_OR_RETURN(q.pce_svn, r.u16_le("PCE SVN"));
  CML_RETURN_IF_ERROR(r.skip(16 + 20, "QE vendor id and user data"));
  if (q.version != 4 && q.version != 5)
    return invalid_argument("TDX quote version " + std::to_string(q.version) + " (4 or 5 supported)");
  size_t body_size = kTdReport10Size;
  if (q.version == 5) {
    CML_ASSIGN_OR_RETURN(q.body_type, r.u16_le("body type"));
    CML_ASSIGN_OR_RETURN(uint32_t declared, r.u32_le("body size"));
    if (q.body_type == 2)
      body_size = kTdReport10Size;
    else if (q.body_type == 3)
      body_size = kTdReport15Size;
    else
      return invalid_argument("TDX v5 body type " + std::to_string(q.body_type) + " is not a TD report");
    if (declared != body_size) return invalid_argument("TDX v5 body size does not match its type");
  }
  CML_ASSIGN_OR_RETURN(ByteSpan body, r.take(body_size, "TD report"));
  CML_ASSIGN_OR_RETURN(q.body, parse_td_report(body, q.body_type == 3));
  q.signed_part = raw.first(r.position());
  CML_ASSIGN_OR_RETURN(uint32_t sig_len, r.u32_le("signature data length"));
  CML_ASSIGN_OR_RETURN(ByteSpan sig_data, r.take(sig_len, "signature data"));
  q.trailing_bytes = r.remaining();
  ByteReader s(sig_data);
  CML_RETURN_IF_ERROR(take_into(s, q.signature, "quote signature"));
  CML_RETURN_IF_ERROR(take_into(s, q.attestation_key, "attestation key"));
  CML_ASSIGN_OR_RETURN(uint16_t cd_type, s.u16_le("certification data type"));
  CML_ASSIGN_OR_RETURN(uint32_t cd_size, s.u32_le("certification data size"));
  if (cd_type != kCertDataQeReport)
    return invalid_argument("TDX certification data type " + std::to_string(cd_type) + " (6 = QE report expected)");
  CML_ASSIGN_OR_RETURN(ByteSpan cd, s.take(cd_size, "certification data"));
  ByteReader c(cd);
  CML_ASSIGN_OR_RETURN(q.qe_report_raw, c.take(kSgxReportSize, "QE report"));
  CML_ASSIGN_OR_RETURN(q.qe_report, parse_sgx_report(q.qe_report_raw));
  CML_RETURN_IF_ERROR(take_into(c, q.qe_report_signature, "QE report signature"));
  CML_ASSIGN_OR_RETURN(uint16_t auth_len, c.u16_le("QE auth data size"));
  CML_ASSIGN_OR_RETURN(q.qe_auth_data, c.take(auth_len, "QE auth data"));
  CML_ASSIGN_OR_RETURN(uint16_t inner_type, c.u16_le("PCK certification data type"));
  CML_ASSIGN_OR_RETURN(uint32_t inner_size, c.u32_le("PCK certification data size"));
  if (inner_type != kCertDataPckChain)
    return invalid_argument("TDX PCK certification data type " + std::to_string(inner_type) +
                            " (5 = PEM chain expected)");
  CML_ASSIGN_OR_RETURN(q.pck_chain_pem, c.take(inner_size, "PCK certificate chain"));
  return q;
}

namespace {
// Next SEQUENCE { OBJECT IDENTIFIER, value } of an SGX extension list.
Result<std::pair<std::string, crypto::DerElement>> next_oid_value(crypto::DerReader& r, std::string_view what) {
  CML_ASSIGN_OR_RETURN(auto item, r.expect(0x30, what));
  crypto::DerReader ir(item.value);
  CML_ASSIGN_OR_RETURN(auto oid_el, ir.expect(0x06, what));
  CML_ASSIGN_OR_RETURN(std::string oid, crypto::der_oid_to_string(oid_el.value));
  CML_ASSIGN_OR_RETURN(auto val, ir.next());
  return std::make_pair(std::move(oid), val);
}

// The certificates of a PEM chain after the leaf, without self-signed roots (trust comes from the pins).
std::vector<crypto::Certificate> intermediates_of(const std::vector<crypto::Certificate>& chain) {
  std::vector<crypto::Certificate> out;
  for (size_t i = 1; i < chain.size(); ++i)
    if (chain[i].subject() != chain[i].issuer()) out.push_back(chain[i]);
  return out;
}
}  // namespace

Result<PckTcb> parse_pck_extension(const crypto::Certificate& pck) {
  auto ext = pck.extension("1.2.840.113741.1.13.1");
  if (!ext) return attestation_error("PCK certificate lacks the SGX extension");
  PckTcb out;
  bool have_tcb = false, have_fmspc = false, have_pceid = false;
  crypto::DerReader outer(*ext);
  CML_ASSIGN_OR_RETURN(auto seq, outer.expect(0x30, "SGX extension"));
  crypto::DerReader items(seq.value);
  while (!items.empty()) {
    CML_ASSIGN_OR_RETURN(auto item, next_oid_value(items, "SGX extension item"));
    const auto& [oid, val] = item;
    if (oid == "1.2.840.113741.1.13.1.2") {
      if (val.tag != 0x30) return invalid_argument("PCK TCB is not a SEQUENCE");
      crypto::DerReader tr(val.value);
      while (!tr.empty()) {
        CML_ASSIGN_OR_RETURN(auto comp, next_oid_value(tr, "PCK TCB component"));
        const auto& [coid, cval] = comp;
        const std::string prefix = "1.2.840.113741.1.13.1.2.";
        if (coid.rfind(prefix, 0) != 0) continue;
        const std::string idx_text = coid.substr(prefix.size());
        if (idx_text.empty() || idx_text.size() > 2 || idx_text.find_first_not_of("0123456789") != std::string::npos)
          continue;
        const int idx = std::stoi(idx_text);
        if (idx >= 1 && idx <= 17) {
          if (cval.tag != 0x02) return invalid_argument("PCK TCB component is not an INTEGER");
          CML_ASSIGN_OR_RETURN(uint64_t v, crypto::der_uint(cval.value));
          if (idx <= 16) {
            if (v > 255) return invalid_argument("PCK SGX component SVN out of range");
            out.sgx_svn[idx - 1] = static_cast<uint8_t>(v);
          } else {
            if (v > 0xffff) return invalid_argument("PCK PCESVN out of range");
            out.pce_svn = static_cast<uint16_t>(v);
          }
        }
      }
      have_tcb = true;
    } else if (oid == "1.2.840.113741.1.13.1.4") {
      if (val.tag != 0x04 || val.value.size() != 6) return invalid_argument("PCK FMSPC is not 6 bytes");
      std::memcpy(out.fmspc.data(), val.value.data(), 6);
      have_fmspc = true;
    } else if (oid == "1.2.840.113741.1.13.1.3") {
      if (val.tag != 0x04 || val.value.size() != 2) return invalid_argument("PCK PCE-ID is not 2 bytes");
      std::memcpy(out.pce_id.data(), val.value.data(), 2);
      have_pceid = true;
    }
  }
  if (!have_tcb || !have_fmspc || !have_pceid) return attestation_error("PCK SGX extension lacks TCB, FMSPC or PCE-ID");
  return out;
}

Result<TdxCollateral> collateral_from_pcs(std::string_view tcb_info_body, std::string_view qe_identity_body,
                                          std::string_view tcb_signing_chain_pem) {
  TdxCollateral c;
  CML_ASSIGN_OR_RETURN(nlohmann::json tj, parse_json(tcb_info_body, "TCB info response"));
  CML_ASSIGN_OR_RETURN(nlohmann::json qj, parse_json(qe_identity_body, "QE identity response"));
  CML_ASSIGN_OR_RETURN(std::string_view traw, raw_json_member(tcb_info_body, "tcbInfo"));
  CML_ASSIGN_OR_RETURN(std::string_view qraw, raw_json_member(qe_identity_body, "enclaveIdentity"));
  c.tcb_info_json = std::string(traw);
  c.qe_identity_json = std::string(qraw);
  CML_ASSIGN_OR_RETURN(c.tcb_info_signature, hex_field(tj, "signature", "TCB info response"));
  CML_ASSIGN_OR_RETURN(c.qe_identity_signature, hex_field(qj, "signature", "QE identity response"));
  CML_ASSIGN_OR_RETURN(c.tcb_signing_chain, crypto::Certificate::chain_from_pem(tcb_signing_chain_pem));
  return c;
}

Result<TdxVerifierOptions> options_from_bundle(std::string_view json) {
  CML_ASSIGN_OR_RETURN(nlohmann::json j, parse_json(json, "collateral bundle"));
  auto str = [&](const char* k) -> Result<std::string> {
    if (!j.contains(k) || !j[k].is_string()) return invalid_argument(std::string("collateral bundle: missing ") + k);
    return j[k].get<std::string>();
  };
  TdxVerifierOptions opts;
  TdxCollateral c;
  CML_ASSIGN_OR_RETURN(c.tcb_info_json, str("tcb_info"));
  CML_ASSIGN_OR_RETURN(c.qe_identity_json, str("qe_identity"));
  CML_ASSIGN_OR_RETURN(c.tcb_info_signature, hex_field(j, "tcb_info_signature", "collateral bundle"));
  CML_ASSIGN_OR_RETURN(c.qe_identity_signature, hex_field(j, "qe_identity_signature", "collateral bundle"));
  CML_ASSIGN_OR_RETURN(std::string chain, str("tcb_info_issuer_chain"));
  CML_ASSIGN_OR_RETURN(c.tcb_signing_chain, crypto::Certificate::chain_from_pem(chain));
  for (const char* k : {"pck_crl", "root_ca_crl"}) {
    if (!j.contains(k)) continue;
    CML_ASSIGN_OR_RETURN(std::string text, str(k));
    CML_ASSIGN_OR_RETURN(crypto::Crl crl, crypto::Crl::parse_any(as_bytes(text)));
    opts.crls.push_back(std::move(crl));
  }
  opts.collateral = std::move(c);
  return opts;
}

TdxVerifier::TdxVerifier(TdxVerifierOptions options) : options_(std::move(options)) {
  if (options_.roots.empty()) options_.roots.push_back(roots::intel_sgx_root_ca());
  if (options_.collateral) prepared_ = prepare_collateral(*options_.collateral);
}

Result<Claims> TdxVerifier::verify(ByteSpan document, WallTime now) const {
  CML_ASSIGN_OR_RETURN(TdxQuote q, parse_tdx_quote(document));
  if (q.att_key_type != kAttKeyEcdsaP256) return attestation_error("TDX attestation key type is not ECDSA P-256");
  if (q.tee_type != kTeeTypeTdx) return attestation_error("quote TEE type is not TDX (0x81)");

  // 1. Quote signature by the attestation key.
  auto ak = crypto::PublicKey::from_ec_point(crypto::Curve::kP256, q.attestation_key);
  if (!ak) return attestation_error("TDX attestation key is not a valid P-256 point");
  if (!crypto::ecdsa_verify(*ak, crypto::HashAlg::kSha256, q.signed_part, q.signature, crypto::SignatureFormat::kRaw))
    return attestation_error("TDX quote signature does not verify under the attestation key");

  // 2. PCK chain to the pinned root (CRLs that belong to the PCK chain are applied).
  auto chain = crypto::Certificate::chain_from_pem(as_string_view(q.pck_chain_pem));
  if (!chain) return attestation_error("PCK certificate chain: " + chain.status().message());
  const crypto::Certificate& pck = (*chain)[0];
  const std::vector<crypto::Certificate> inter = intermediates_of(*chain);
  std::vector<crypto::Crl> pck_crls;
  std::vector<crypto::Crl> root_crls;
  for (const auto& crl : options_.crls) {
    // The root CA CRL is also checked on the TCB signing chain below.
    const bool root_crl = crl.issuer() == options_.roots[0].subject();
    (root_crl ? root_crls : pck_crls).push_back(crl);
  }
  std::vector<crypto::Crl> all_crls = pck_crls;
  all_crls.insert(all_crls.end(), root_crls.begin(), root_crls.end());
  {
    Status s = crypto::verify_chain(pck, inter, options_.roots, now, all_crls);
    if (!s) return attestation_error("PCK chain: " + s.message());
  }

  // 3. QE report signed by the PCK key, binding the attestation key.
  CML_ASSIGN_OR_RETURN(crypto::PublicKey pck_key, pck.public_key());
  if (!crypto::ecdsa_verify(pck_key, crypto::HashAlg::kSha256, q.qe_report_raw, q.qe_report_signature,
                            crypto::SignatureFormat::kRaw))
    return attestation_error("QE report signature does not verify under the PCK certificate");
  crypto::Sha256 h;
  h.update(q.attestation_key);
  h.update(q.qe_auth_data);
  const crypto::Digest256 binding = h.finish();
  if (!std::equal(binding.begin(), binding.end(), q.qe_report.report_data.begin()) ||
      !all_zero(ByteSpan(q.qe_report.report_data).subspan(32)))
    return attestation_error("QE report data does not bind the attestation key");

  Claims c;
  c.type = EvidenceType::kTdx;
  c.document_hash = crypto::sha256(document);
  const TdReport& b = q.body;
  c.report_data.assign(b.report_data.begin(), b.report_data.end());
  ByteSpan rd(b.report_data);
  if (!all_zero(rd.first(32))) c.public_key.assign(rd.begin(), rd.begin() + 32);
  if (!all_zero(rd.subspan(32))) c.nonce.assign(rd.begin() + 32, rd.end());
  auto put = [&](const char* name, ByteSpan v) { c.measurements[name].assign(v.begin(), v.end()); };
  put("mrtd", b.mrtd);
  put("rtmr0", b.rtmr[0]);
  put("rtmr1", b.rtmr[1]);
  put("rtmr2", b.rtmr[2]);
  put("rtmr3", b.rtmr[3]);
  put("mrconfigid", b.mrconfigid);
  put("mrowner", b.mrowner);
  put("mrownerconfig", b.mrownerconfig);
  put("mrseam", b.mrseam);
  c.debug = (b.td_attributes & 1) != 0;
  auto u64hex = [](uint64_t v) {
    std::array<uint8_t, 8> a{};
    for (int i = 0; i < 8; ++i) a[i] = static_cast<uint8_t>(v >> (56 - 8 * i));
    return to_hex(a);
  };
  c.details["version"] = std::to_string(q.version);
  c.details["td_attributes"] = u64hex(b.td_attributes);
  c.details["seam_attributes"] = u64hex(b.seam_attributes);
  c.details["xfam"] = u64hex(b.xfam);
  c.details["tee_tcb_svn"] = to_hex(b.tee_tcb_svn);
  c.details["mrsignerseam"] = to_hex(b.mrsignerseam);
  if (q.trailing_bytes) c.details["trailing_bytes"] = std::to_string(q.trailing_bytes);

  auto pck_tcb = parse_pck_extension(pck);
  if (pck_tcb) c.details["fmspc"] = to_hex(pck_tcb->fmspc);

  // 4. Collateral.
  if (!options_.collateral) {
    if (options_.require_collateral) return attestation_error("TDX collateral required but not configured");
    return c;
  }
  if (!pck_tcb) return pck_tcb.status();
  const TdxCollateral& col = *options_.collateral;
  if (col.tcb_signing_chain.empty()) return attestation_error("no TCB signing certificate in the collateral");
  const crypto::Certificate& signer = col.tcb_signing_chain[0];
  {
    const std::vector<crypto::Certificate> tinter = intermediates_of(col.tcb_signing_chain);
    Status s = crypto::verify_chain(signer, tinter, options_.roots, now, root_crls);
    if (!s) return attestation_error("TCB signing chain: " + s.message());
  }
  CML_RETURN_IF_ERROR(prepared_->status);
  CML_ASSIGN_OR_RETURN(TcbResult tcb, evaluate_tcb(*prepared_, q, *pck_tcb, now));
  c.tcb_status = tcb.status;
  c.advisories = tcb.advisories;
  c.details["platform_tcb_status"] = tcb.platform_status;
  c.details["qe_tcb_status"] = tcb.qe_status;
  c.details["tdx_module_tcb_status"] = tcb.module_status;
  return c;
}

TdxProvider::TdxProvider(std::string tsm_root, std::shared_ptr<TsmFs> fs)
    : root_(std::move(tsm_root)), fs_(fs ? std::move(fs) : std::make_shared<TsmFs>()) {}

Result<Evidence> TdxProvider::attest(ByteSpan public_key, ByteSpan nonce) {
  CML_ASSIGN_OR_RETURN(auto rd, make_report_data(public_key, nonce));
  std::lock_guard<std::mutex> lock(mu_);
  CML_ASSIGN_OR_RETURN(TsmReport rep, tsm_report(*fs_, root_, rd, std::nullopt, "tdx_guest"));
  CML_RETURN_IF_ERROR(parse_tdx_quote(rep.outblob).status());
  return Evidence{EvidenceType::kTdx, std::move(rep.outblob)};
}

}  // namespace cml::attest
