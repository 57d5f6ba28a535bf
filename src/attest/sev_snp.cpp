#include "attest/sev_snp.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstring>

#include "attest/roots.h"
#include "crypto/ecdsa.h"

namespace cml::attest {

namespace {

// GUIDs of the certificate table, in text (RFC 4122) byte order; the little-endian EFI order is accepted too.
constexpr std::array<uint8_t, 16> kGuidVcek = {0x63, 0xda, 0x75, 0x8d, 0xe6, 0x64, 0x45, 0x64,
                                               0xad, 0xc5, 0xf4, 0xb9, 0x3b, 0xe8, 0xac, 0xcd};
constexpr std::array<uint8_t, 16> kGuidVlek = {0xa8, 0x07, 0x4b, 0xc2, 0xa2, 0x5a, 0x48, 0x3e,
                                               0xaa, 0xe6, 0x39, 0xc0, 0x45, 0xa0, 0xb8, 0xa1};
constexpr std::array<uint8_t, 16> kGuidAsk = {0x4a, 0xb7, 0xb3, 0x79, 0xbb, 0xac, 0x4f, 0xe4,
                                              0xa0, 0x2f, 0x05, 0xae, 0xf3, 0x27, 0xc7, 0x82};
constexpr std::array<uint8_t, 16> kGuidArk = {0xc0, 0xb4, 0x06, 0xa4, 0xa8, 0x03, 0x49, 0x52,
                                              0x97, 0x43, 0x3f, 0xb6, 0x01, 0x4c, 0xd0, 0xae};
constexpr size_t kMaxCertTableEntries = 16;

std::array<uint8_t, 16> efi_order(const std::array<uint8_t, 16>& g) {
  std::array<uint8_t, 16> o = g;
  std::reverse(o.begin(), o.begin() + 4);
  std::reverse(o.begin() + 4, o.begin() + 6);
  std::reverse(o.begin() + 6, o.begin() + 8);
  return o;
}

bool guid_is(ByteSpan g, const std::array<uint8_t, 16>& want) {
  auto e = efi_order(want);
  return std::equal(g.begin(), g.end(), want.begin()) || std::equal(g.begin(), g.end(), e.begin());
}

template <size_t N>
void copy_at(std::array<uint8_t, N>& dst, ByteSpan src, size_t off) {
  std::memcpy(dst.data(), src.data() + off, N);
}

bool all_zero(ByteSpan b) {
  return std::all_of(b.begin(), b.end(), [](uint8_t x) { return x == 0; });
}

// VCEK/VLEK extension OIDs (AMD "Versioned Chip Endorsement Key" specification).
constexpr std::string_view kOidProductName = "1.3.6.1.4.1.3704.1.2";
constexpr std::string_view kOidBlSpl = "1.3.6.1.4.1.3704.1.3.1";
constexpr std::string_view kOidTeeSpl = "1.3.6.1.4.1.3704.1.3.2";
constexpr std::string_view kOidSnpSpl = "1.3.6.1.4.1.3704.1.3.3";
constexpr std::string_view kOidUcodeSpl = "1.3.6.1.4.1.3704.1.3.8";
constexpr std::string_view kOidFmcSpl = "1.3.6.1.4.1.3704.1.3.9";
constexpr std::string_view kOidHwid = "1.3.6.1.4.1.3704.1.4";

Result<uint64_t> ext_int(const crypto::Certificate& c, std::string_view oid, std::string_view name) {
  auto v = c.extension(oid);
  if (!v) return attestation_error("endorsement certificate lacks the " + std::string(name) + " extension");
  crypto::DerReader r(*v);
  auto el = r.expect(0x02, name);
  if (!el) return attestation_error("endorsement certificate " + std::string(name) + " is not an INTEGER");
  auto n = crypto::der_uint(el->value);
  if (!n) return attestation_error("endorsement certificate " + std::string(name) + ": " + n.status().message());
  return *n;
}

SnpProduct product_of(const crypto::Certificate& vek, const SnpReport& report) {
  std::string name;
  if (auto v = vek.extension(kOidProductName)) {
    crypto::DerReader r(*v);
    auto el = r.next();
    if (el && (el->tag == 0x16 || el->tag == 0x0c || el->tag == 0x13)) name = std::string(as_string_view(el->value));
  }
  const std::string issuer = vek.issuer();
  auto has = [&](std::string_view p) {
    return name.rfind(p, 0) == 0 || issuer.find(std::string("SEV-") + std::string(p)) != std::string::npos ||
           issuer.find(std::string("VLEK-") + std::string(p)) != std::string::npos;
  };
  if (has("Turin")) return SnpProduct::kTurin;
  if (has("Genoa")) return SnpProduct::kGenoa;
  if (has("Milan")) return SnpProduct::kMilan;
  if (report.version >= 3 && report.cpuid_fam == 0x1A) return SnpProduct::kTurin;
  return SnpProduct::kUnknown;
}

std::string tcb_text(const SnpTcb& t, SnpProduct p) {
  std::string s = "bl=" + std::to_string(t.bootloader) + " tee=" + std::to_string(t.tee) +
                  " snp=" + std::to_string(t.snp) + " ucode=" + std::to_string(t.microcode);
  if (p == SnpProduct::kTurin) s = "fmc=" + std::to_string(t.fmc) + " " + s;
  return s;
}

}  // namespace

std::string_view snp_product_name(SnpProduct p) {
  switch (p) {
    case SnpProduct::kMilan:
      return "Milan";
    case SnpProduct::kGenoa:
      return "Genoa";
    case SnpProduct::kTurin:
      return "Turin";
    case SnpProduct::kUnknown:
      break;
  }
  return "unknown";
}

SnpTcb decode_snp_tcb(uint64_t raw, SnpProduct product) {
  auto b = [&](int i) { return static_cast<uint8_t>(raw >> (8 * i)); };
  SnpTcb t;
  if (product == SnpProduct::kTurin) {
    t.fmc = b(0), t.bootloader = b(1), t.tee = b(2), t.snp = b(3), t.microcode = b(7);
  } else {
    t.bootloader = b(0), t.tee = b(1), t.snp = b(6), t.microcode = b(7);
  }
  return t;
}

uint64_t encode_snp_tcb(const SnpTcb& t, SnpProduct product) {
  auto at = [](uint8_t v, int i) { return uint64_t(v) << (8 * i); };
  if (product == SnpProduct::kTurin)
    return at(t.fmc, 0) | at(t.bootloader, 1) | at(t.tee, 2) | at(t.snp, 3) | at(t.microcode, 7);
  return at(t.bootloader, 0) | at(t.tee, 1) | at(t.snp, 6) | at(t.microcode, 7);
}

Result<SnpReport> parse_snp_report(ByteSpan raw) {
  if (raw.size() != kSnpReportSize)
    return invalid_argument("SNP report must be exactly 1184 bytes, got " + std::to_string(raw.size()));
  const uint8_t* p = raw.data();
  SnpReport r;
  r.version = load_u32_le(p + 0x00);
  r.guest_svn = load_u32_le(p + 0x04);
  r.policy = load_u64_le(p + 0x08);
  copy_at(r.family_id, raw, 0x10);
  copy_at(r.image_id, raw, 0x20);
  r.vmpl = load_u32_le(p + 0x30);
  r.signature_algo = load_u32_le(p + 0x34);
  r.current_tcb = load_u64_le(p + 0x38);
  r.platform_info = load_u64_le(p + 0x40);
  r.flags = load_u32_le(p + 0x48);
  copy_at(r.report_data, raw, 0x50);
  copy_at(r.measurement, raw, 0x90);
  copy_at(r.host_data, raw, 0xC0);
  copy_at(r.id_key_digest, raw, 0xE0);
  copy_at(r.author_key_digest, raw, 0x110);
  copy_at(r.report_id, raw, 0x140);
  copy_at(r.report_id_ma, raw, 0x160);
  r.reported_tcb = load_u64_le(p + 0x180);
  if (r.version >= 3) {
    r.cpuid_fam = p[0x188];
    r.cpuid_mod = p[0x189];
    r.cpuid_step = p[0x18A];
  }
  copy_at(r.chip_id, raw, 0x1A0);
  r.committed_tcb = load_u64_le(p + 0x1E0);
  r.launch_tcb = load_u64_le(p + 0x1F0);
  copy_at(r.signature, raw, 0x2A0);
  return r;
}

Result<SnpCertTable> parse_snp_cert_table(ByteSpan table) {
  if (table.size() > kMaxEvidenceSize) return invalid_argument("SNP certificate table too large");
  SnpCertTable out;
  ByteReader r(table);
  for (size_t i = 0;; ++i) {
    if (i > kMaxCertTableEntries) return invalid_argument("SNP certificate table has too many entries");
    CML_ASSIGN_OR_RETURN(ByteSpan guid, r.take(16, "certificate table GUID"));
    CML_ASSIGN_OR_RETURN(uint32_t off, r.u32_le("certificate table offset"));
    CML_ASSIGN_OR_RETURN(uint32_t len, r.u32_le("certificate table length"));
    if (all_zero(guid) && off == 0 && len == 0) break;
    if (off > table.size() || len > table.size() - off)
      return invalid_argument("SNP certificate table entry points outside the table");
    Bytes der(table.begin() + off, table.begin() + off + len);
    std::optional<Bytes>* slot = nullptr;
    if (guid_is(guid, kGuidVcek))
      slot = &out.vcek;
    else if (guid_is(guid, kGuidVlek))
      slot = &out.vlek;
    else if (guid_is(guid, kGuidAsk))
      slot = &out.ask;
    else if (guid_is(guid, kGuidArk))
      slot = &out.ark;
    if (!slot) continue;  // unknown GUIDs (e.g. future certificates) are ignored
    if (*slot) return invalid_argument("SNP certificate table repeats a certificate GUID");
    *slot = std::move(der);
  }
  return out;
}

Bytes encode_snp_cert_table(const SnpCertTable& certs) {
  std::vector<std::pair<const std::array<uint8_t, 16>*, const Bytes*>> entries;
  if (certs.vcek) entries.emplace_back(&kGuidVcek, &*certs.vcek);
  if (certs.vlek) entries.emplace_back(&kGuidVlek, &*certs.vlek);
  if (certs.ask) entries.emplace_back(&kGuidAsk, &*certs.ask);
  if (certs.ark) entries.emplace_back(&kGuidArk, &*certs.ark);
  ByteWriter w;
  size_t offset = (entries.size() + 1) * 24;
  for (const auto& [guid, der] : entries) {
    w.bytes(*guid);
    w.u32_le(static_cast<uint32_t>(offset));
    w.u32_le(static_cast<uint32_t>(der->size()));
    offset += der->size();
  }
  w.zeros(24);
  for (const auto& e : entries) w.bytes(*e.second);
  return w.take();
}

Bytes make_snp_document(ByteSpan report, const SnpCertTable& certs) {
  Bytes doc(report.begin(), report.end());
  if (certs.vcek || certs.vlek || certs.ask || certs.ark) {
    Bytes t = encode_snp_cert_table(certs);
    doc.insert(doc.end(), t.begin(), t.end());
  }
  return doc;
}

SnpVerifier::SnpVerifier(SnpVerifierOptions options) : options_(std::move(options)) {
  if (options_.arks.empty()) options_.arks = roots::amd_arks();
  for (const auto& c : roots::amd_intermediates()) options_.intermediates.push_back(c);
}

Result<Claims> SnpVerifier::verify(ByteSpan document, WallTime now) const {
  if (document.size() < kSnpReportSize) return invalid_argument("SNP document shorter than a 1184-byte report");
  if (document.size() > kMaxEvidenceSize) return invalid_argument("SNP document too large");
  const ByteSpan raw = document.first(kSnpReportSize);
  CML_ASSIGN_OR_RETURN(SnpReport rep, parse_snp_report(raw));
  SnpCertTable table;
  if (document.size() > kSnpReportSize) {
    auto t = parse_snp_cert_table(document.subspan(kSnpReportSize));
    if (!t) return t.status().with_context("SNP certificate table");
    table = std::move(*t);
  }
  if (rep.version < 2) return attestation_error("SNP report version " + std::to_string(rep.version) + " < 2");
  if (rep.signature_algo != 1)
    return attestation_error("SNP report signature algorithm " + std::to_string(rep.signature_algo) +
                             " is not ECDSA P-384 with SHA-384");
  if (rep.mask_chip_key()) return attestation_error("SNP report is unsigned (MaskChipKey set)");
  const SnpSigningKey sk = rep.signing_key();
  if (sk != SnpSigningKey::kVcek && sk != SnpSigningKey::kVlek)
    return attestation_error("SNP report names no endorsement key (signing_key " +
                             std::to_string(static_cast<int>(sk)) + ")");
  const bool vlek = sk == SnpSigningKey::kVlek;

  // Endorsement certificate: from the table, else the configured one.
  crypto::Certificate vek;
  const std::optional<Bytes>& from_table = vlek ? table.vlek : table.vcek;
  if (from_table) {
    auto c = crypto::Certificate::from_der(*from_table);
    if (!c) return attestation_error(std::string(vlek ? "VLEK" : "VCEK") + " certificate: " + c.status().message());
    vek = std::move(*c);
  } else if (options_.vek) {
    vek = *options_.vek;
  } else {
    return attestation_error(std::string("no ") + (vlek ? "VLEK" : "VCEK") +
                             " certificate in the document or the verifier configuration");
  }
  const std::string cn = vek.common_name();
  if (cn != (vlek ? "SEV-VLEK" : "SEV-VCEK"))
    return attestation_error("endorsement certificate CN '" + cn + "' does not match the report's signing key (" +
                             (vlek ? "VLEK" : "VCEK") + ")");

  // Chain VEK → ASK/ASVK → pinned ARK.
  std::vector<crypto::Certificate> inter;
  if (table.ask) {
    auto c = crypto::Certificate::from_der(*table.ask);
    if (!c) return attestation_error("ASK certificate: " + c.status().message());
    inter.push_back(std::move(*c));
  }
  if (table.ark) {
    bool pinned = std::any_of(options_.arks.begin(), options_.arks.end(),
                              [&](const crypto::Certificate& a) { return a.der() == *table.ark; });
    if (!pinned) return attestation_error("ARK in the certificate table is not a pinned AMD root (wrong root)");
  }
  inter.insert(inter.end(), options_.intermediates.begin(), options_.intermediates.end());
  CML_RETURN_IF_ERROR(crypto::verify_chain(vek, inter, options_.arks, now, options_.crls));
  // AMD's KDS CRL is issued by the ARK and may also list endorsement keys (indirectly issued).
  for (const auto& crl : options_.crls)
    if (crl.is_revoked(vek))
      return attestation_error(std::string(vlek ? "VLEK" : "VCEK") + " is revoked by the CRL of '" + crl.issuer() +
                               "'");

  // Report signature: r, s little-endian in 72-byte fields; P-384 uses the low 48 bytes.
  Bytes sig(96);
  for (int half = 0; half < 2; ++half) {
    const uint8_t* f = rep.signature.data() + 72 * half;
    if (!all_zero(ByteSpan(f + 48, 24))) return attestation_error("SNP report signature component out of range");
    for (int i = 0; i < 48; ++i) sig[48 * half + i] = f[47 - i];
  }
  CML_ASSIGN_OR_RETURN(crypto::PublicKey key, vek.public_key());
  if (!crypto::ecdsa_verify(key, crypto::HashAlg::kSha384, raw.first(kSnpSignedSize), sig,
                            crypto::SignatureFormat::kRaw))
    return attestation_error("SNP report signature does not verify under the " + std::string(vlek ? "VLEK" : "VCEK"));

  const SnpProduct product = product_of(vek, rep);
  const SnpTcb reported = decode_snp_tcb(rep.reported_tcb, product);
  if (options_.check_tcb_binding) {
    SnpTcb cert;
    CML_ASSIGN_OR_RETURN(uint64_t bl, ext_int(vek, kOidBlSpl, "blSPL"));
    CML_ASSIGN_OR_RETURN(uint64_t tee, ext_int(vek, kOidTeeSpl, "teeSPL"));
    CML_ASSIGN_OR_RETURN(uint64_t snp, ext_int(vek, kOidSnpSpl, "snpSPL"));
    CML_ASSIGN_OR_RETURN(uint64_t uc, ext_int(vek, kOidUcodeSpl, "ucodeSPL"));
    cert.bootloader = static_cast<uint8_t>(bl), cert.tee = static_cast<uint8_t>(tee);
    cert.snp = static_cast<uint8_t>(snp), cert.microcode = static_cast<uint8_t>(uc);
    if (product == SnpProduct::kTurin) {
      CML_ASSIGN_OR_RETURN(uint64_t fmc, ext_int(vek, kOidFmcSpl, "fmcSPL"));
      cert.fmc = static_cast<uint8_t>(fmc);
    }
    if (bl > 255 || tee > 255 || snp > 255 || uc > 255 || !(cert == reported))
      return attestation_error("reported TCB (" + tcb_text(reported, product) +
                               ") does not match the endorsement certificate (" + tcb_text(cert, product) + ")");
    if (!vlek && !all_zero(rep.chip_id)) {
      auto hwid = vek.extension(kOidHwid);
      if (!hwid) return attestation_error("VCEK lacks the hwID extension");
      ByteSpan id = *hwid;
      if (!id.empty() && id[0] == 0x04 && id.size() != 64 && id.size() != 8) {
        crypto::DerReader r(id);
        auto el = r.next();
        if (el) id = el->value;
      }
      if (id.empty() || id.size() > 64 || !std::equal(id.begin(), id.end(), rep.chip_id.begin()))
        return attestation_error("VCEK hwID does not match the report's chip_id");
    }
  }

  Claims c;
  c.type = EvidenceType::kSevSnp;
  c.document_hash = crypto::sha256(document);
  c.report_data.assign(rep.report_data.begin(), rep.report_data.end());
  ByteSpan rd(rep.report_data);
  if (!all_zero(rd.first(32))) c.public_key.assign(rd.begin(), rd.begin() + 32);
  if (!all_zero(rd.subspan(32))) c.nonce.assign(rd.begin() + 32, rd.end());
  c.measurements["measurement"].assign(rep.measurement.begin(), rep.measurement.end());
  c.measurements["host_data"].assign(rep.host_data.begin(), rep.host_data.end());
  c.measurements["id_key_digest"].assign(rep.id_key_digest.begin(), rep.id_key_digest.end());
  c.measurements["author_key_digest"].assign(rep.author_key_digest.begin(), rep.author_key_digest.end());
  c.measurements["family_id"].assign(rep.family_id.begin(), rep.family_id.end());
  c.measurements["image_id"].assign(rep.image_id.begin(), rep.image_id.end());
  c.debug = rep.debug_allowed();
  c.details["version"] = std::to_string(rep.version);
  c.details["guest_svn"] = std::to_string(rep.guest_svn);
  c.details["vmpl"] = std::to_string(rep.vmpl);
  c.details["policy"] = to_hex(std::array<uint8_t, 8>{
      uint8_t(rep.policy >> 56), uint8_t(rep.policy >> 48), uint8_t(rep.policy >> 40), uint8_t(rep.policy >> 32),
      uint8_t(rep.policy >> 24), uint8_t(rep.policy >> 16), uint8_t(rep.policy >> 8), uint8_t(rep.policy)});
  c.details["policy_debug"] = rep.debug_allowed() ? "1" : "0";
  c.details["policy_migrate_ma"] = rep.migrate_ma_allowed() ? "1" : "0";
  c.details["policy_smt"] = rep.smt_allowed() ? "1" : "0";
  c.details["policy_single_socket"] = rep.single_socket_required() ? "1" : "0";
  c.details["signing_key"] = vlek ? "VLEK" : "VCEK";
  c.details["product"] = std::string(snp_product_name(product));
  c.details["reported_tcb"] = std::to_string(rep.reported_tcb);
  c.details["reported_tcb_text"] = tcb_text(reported, product);
  c.details["chip_id"] = to_hex(rep.chip_id);
  return c;
}

Status appraise_snp(const Claims& claims, const SnpPolicy& policy) {
  if (claims.type != EvidenceType::kSevSnp) return policy_error("not SEV-SNP claims");
  auto get = [&](const std::string& k) -> std::string {
    auto it = claims.details.find(k);
    return it == claims.details.end() ? std::string() : it->second;
  };
  // Decimal detail written by SnpVerifier; `fallback` when absent or malformed (claims may be hand-made).
  auto number = [&](const std::string& k, uint64_t fallback) {
    const std::string v = get(k);
    uint64_t out = 0;
    auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
    return (ec == std::errc() && end == v.data() + v.size() && !v.empty()) ? out : fallback;
  };
  const uint64_t vmpl = number("vmpl", 0xFFFFFFFFu);
  if (vmpl == 0xFFFFFFFFu) return policy_error("SNP report was requested by the host (VMPL 0xFFFFFFFF)");
  if (policy.required_vmpl && vmpl != *policy.required_vmpl)
    return policy_error("SNP report VMPL " + std::to_string(vmpl) + " is not the required " +
                        std::to_string(*policy.required_vmpl));
  if (!policy.allow_migration_agent && get("policy_migrate_ma") == "1")
    return policy_error("SNP guest policy allows a migration agent");
  if (!policy.allow_smt && get("policy_smt") == "1") return policy_error("SNP guest policy allows SMT");
  if (policy.require_single_socket && get("policy_single_socket") != "1")
    return policy_error("SNP guest policy does not require a single socket");
  if (policy.min_guest_svn && number("guest_svn", 0) < *policy.min_guest_svn)
    return policy_error("SNP guest SVN below the required minimum");
  if (policy.min_tcb) {
    SnpProduct p = SnpProduct::kUnknown;
    if (get("product") == "Milan") p = SnpProduct::kMilan;
    if (get("product") == "Genoa") p = SnpProduct::kGenoa;
    if (get("product") == "Turin") p = SnpProduct::kTurin;
    const SnpTcb t = decode_snp_tcb(number("reported_tcb", 0), p);
    const SnpTcb& m = *policy.min_tcb;
    if (t.bootloader < m.bootloader || t.tee < m.tee || t.snp < m.snp || t.microcode < m.microcode || t.fmc < m.fmc)
      return policy_error("SNP reported TCB (" + tcb_text(t, p) + ") is below the minimum (" + tcb_text(m, p) + ")");
  }
  return ok_status();
}

Result<std::array<uint8_t, 64>> make_report_data(ByteSpan public_key, ByteSpan nonce) {
  if (public_key.size() != 32 || nonce.size() != 32)
    return invalid_argument("SNP/TDX report data needs a 32-byte public key and a 32-byte nonce");
  std::array<uint8_t, 64> rd{};
  std::memcpy(rd.data(), public_key.data(), 32);
  std::memcpy(rd.data() + 32, nonce.data(), 32);
  return rd;
}

// ------------------------------------------------------------------------------------------------ providers

namespace {
// Linux uapi <linux/sev-guest.h>.
struct SnpReportReq {
  uint8_t user_data[64];
  uint32_t vmpl;
  uint8_t rsvd[28];
};
struct SnpExtReportReq {
  SnpReportReq data;
  uint64_t certs_address;
  uint32_t certs_len;
};
struct SnpReportResp {
  uint8_t data[4000];
};
struct SnpGuestRequestIoctl {
  uint8_t msg_version;
  uint64_t req_data;
  uint64_t resp_data;
  uint64_t exitinfo2;
};
constexpr unsigned long kSnpGetExtReport = _IOWR('S', 0x2, SnpGuestRequestIoctl);
constexpr size_t kCertsBufferSize = 4 * 4096;
}  // namespace

Result<Bytes> sev_guest_ext_report(const std::string& device, ByteSpan report_data, uint32_t vmpl) {
  if (report_data.size() != 64) return invalid_argument("report data must be 64 bytes");
  int fd = ::open(device.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return unavailable("cannot open " + device + " (not inside an SEV-SNP guest?)");
  SnpExtReportReq req{};
  std::memcpy(req.data.user_data, report_data.data(), 64);
  req.data.vmpl = vmpl;
  std::vector<uint8_t> certs(kCertsBufferSize, 0);  // page-aligned size as the kernel requires
  req.certs_address = reinterpret_cast<uint64_t>(certs.data());
  req.certs_len = static_cast<uint32_t>(certs.size());
  SnpReportResp resp{};
  SnpGuestRequestIoctl io{};
  io.msg_version = 1;
  io.req_data = reinterpret_cast<uint64_t>(&req);
  io.resp_data = reinterpret_cast<uint64_t>(&resp);
  int rc = ::ioctl(fd, kSnpGetExtReport, &io);
  ::close(fd);
  if (rc != 0) return unavailable("SNP_GET_EXT_REPORT failed (firmware error " + std::to_string(io.exitinfo2) + ")");
  // Response message: status u32, report_size u32, reserved[24], report.
  const uint32_t status = load_u32_le(resp.data);
  const uint32_t size = load_u32_le(resp.data + 4);
  if (status != 0) return unavailable("SNP firmware returned status " + std::to_string(status));
  if (size != kSnpReportSize) return internal_error("SNP firmware returned a report of unexpected size");
  Bytes doc(resp.data + 32, resp.data + 32 + kSnpReportSize);
  // Keep the certificate table up to the end of its last certificate (the buffer is zero-padded).
  size_t end = 0;
  for (size_t off = 0; off + 24 <= certs.size(); off += 24) {
    const uint32_t o = load_u32_le(certs.data() + off + 16), l = load_u32_le(certs.data() + off + 20);
    if (all_zero(ByteSpan(certs.data() + off, 24))) {
      end = std::max(end, off + 24);
      break;
    }
    if (o <= certs.size() && l <= certs.size() - o) end = std::max(end, size_t(o) + l);
  }
  if (end > 24 && parse_snp_cert_table(ByteSpan(certs).first(end)))
    doc.insert(doc.end(), certs.begin(), certs.begin() + end);
  return doc;
}

SnpProvider::SnpProvider(Options options, std::shared_ptr<TsmFs> fs)
    : options_(std::move(options)), fs_(fs ? std::move(fs) : std::make_shared<TsmFs>()) {}

Result<Evidence> SnpProvider::attest(ByteSpan public_key, ByteSpan nonce) {
  CML_ASSIGN_OR_RETURN(auto rd, make_report_data(public_key, nonce));
  std::lock_guard<std::mutex> lock(mu_);
  if (fs_->exists(options_.tsm_root) || options_.sev_guest_path.empty()) {
    CML_ASSIGN_OR_RETURN(TsmReport rep, tsm_report(*fs_, options_.tsm_root, rd, options_.privlevel, "sev_guest"));
    if (rep.outblob.size() != kSnpReportSize)
      return internal_error("configfs-tsm SNP report has " + std::to_string(rep.outblob.size()) + " bytes");
    Bytes doc = rep.outblob;
    if (!rep.auxblob.empty()) {
      CML_RETURN_IF_ERROR(parse_snp_cert_table(rep.auxblob).status());
      doc.insert(doc.end(), rep.auxblob.begin(), rep.auxblob.end());
    }
    return Evidence{EvidenceType::kSevSnp, std::move(doc)};
  }
  CML_ASSIGN_OR_RETURN(Bytes doc, sev_guest_ext_report(options_.sev_guest_path, rd, options_.privlevel));
  return Evidence{EvidenceType::kSevSnp, std::move(doc)};
}

}  // namespace cml::attest
