#include "attest/test_signer.h"

#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstring>
#include <nlohmann/json.hpp>

#include "attest/cose.h"
#include "crypto/ecdsa.h"

namespace cml::attest {

namespace {

struct KeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using KeyPtr = std::unique_ptr<EVP_PKEY, KeyFree>;
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
using X509Ptr = std::unique_ptr<X509, X509Free>;

Result<KeyPtr> gen_key(const char* curve) {
  EVP_PKEY* k = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", curve);
  if (!k) return internal_error("EC key generation failed");
  return KeyPtr(k);
}

// ECDSA signature, raw r‖s of `field` bytes each.
Result<Bytes> sign_raw(EVP_PKEY* key, const EVP_MD* md, ByteSpan msg, size_t field) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  size_t len = 0;
  bool ok = ctx && EVP_DigestSignInit(ctx, nullptr, md, nullptr, key) == 1 &&
            EVP_DigestSign(ctx, nullptr, &len, msg.data(), msg.size()) == 1;
  Bytes der(len);
  ok = ok && EVP_DigestSign(ctx, der.data(), &len, msg.data(), msg.size()) == 1;
  EVP_MD_CTX_free(ctx);
  if (!ok) return internal_error("ECDSA signing failed");
  der.resize(len);
  return crypto::ecdsa_der_to_raw(der, field);
}

struct CertSpec {
  std::string cn;
  bool ca = false;
  std::vector<std::pair<std::string, Bytes>> extensions;  // OID → extnValue contents (DER)
};

Result<crypto::Certificate> make_cert(const CertSpec& spec, EVP_PKEY* subject_key, X509* issuer, EVP_PKEY* issuer_key,
                                      WallTime nb, WallTime na, long serial, const EVP_MD* md) {
  X509Ptr x(X509_new());
  if (!x) return internal_error("X509_new failed");
  X509_set_version(x.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x.get()), serial);
  X509_NAME* name = X509_get_subject_name(x.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("cml test PKI"), -1, -1,
                             0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(spec.cn.c_str()), -1, -1,
                             0);
  X509_set_issuer_name(x.get(), issuer ? X509_get_subject_name(issuer) : name);
  ASN1_TIME_set(X509_getm_notBefore(x.get()), static_cast<time_t>(to_unix_seconds(nb)));
  ASN1_TIME_set(X509_getm_notAfter(x.get()), static_cast<time_t>(to_unix_seconds(na)));
  X509_set_pubkey(x.get(), subject_key);
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer ? issuer : x.get(), x.get(), nullptr, nullptr, 0);
  auto add = [&](int nid, const char* value) {
    X509_EXTENSION* e = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
    if (e) {
      X509_add_ext(x.get(), e, -1);
      X509_EXTENSION_free(e);
    }
  };
  add(NID_basic_constraints, spec.ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
  add(NID_key_usage, spec.ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature");
  for (const auto& [oid, value] : spec.extensions) {
    ASN1_OBJECT* obj = OBJ_txt2obj(oid.c_str(), 1);
    ASN1_OCTET_STRING* os = ASN1_OCTET_STRING_new();
    ASN1_OCTET_STRING_set(os, value.data(), static_cast<int>(value.size()));
    X509_EXTENSION* e = X509_EXTENSION_create_by_OBJ(nullptr, obj, 0, os);
    if (e) X509_add_ext(x.get(), e, -1);
    X509_EXTENSION_free(e);
    ASN1_OCTET_STRING_free(os);
    ASN1_OBJECT_free(obj);
  }
  if (X509_sign(x.get(), issuer_key, md) <= 0) return internal_error("certificate signing failed");
  unsigned char* der = nullptr;
  int n = i2d_X509(x.get(), &der);
  if (n <= 0) return internal_error("certificate encoding failed");
  Bytes bytes(der, der + n);
  OPENSSL_free(der);
  return crypto::Certificate::from_der(bytes);
}

Bytes der_int(uint64_t v) {
  Bytes body;
  do {
    body.insert(body.begin(), static_cast<uint8_t>(v & 0xff));
    v >>= 8;
  } while (v);
  if (body[0] & 0x80) body.insert(body.begin(), 0);
  Bytes out = {0x02, static_cast<uint8_t>(body.size())};
  out.insert(out.end(), body.begin(), body.end());
  return out;
}

Bytes der_tlv(uint8_t tag, ByteSpan body) {
  Bytes out = {tag};
  if (body.size() < 128) {
    out.push_back(static_cast<uint8_t>(body.size()));
  } else if (body.size() < 256) {
    out.push_back(0x81);
    out.push_back(static_cast<uint8_t>(body.size()));
  } else {
    out.push_back(0x82);
    out.push_back(static_cast<uint8_t>(body.size() >> 8));
    out.push_back(static_cast<uint8_t>(body.size()));
  }
  out.insert(out.end(), body.begin(), body.end());
  return out;
}

Bytes der_oid(std::string_view dotted) {
  std::vector<uint64_t> arcs;
  size_t pos = 0;
  while (pos <= dotted.size()) {
    size_t dot = dotted.find('.', pos);
    if (dot == std::string_view::npos) dot = dotted.size();
    arcs.push_back(std::stoull(std::string(dotted.substr(pos, dot - pos))));
    pos = dot + 1;
  }
  Bytes body = {static_cast<uint8_t>(arcs[0] * 40 + arcs[1])};
  for (size_t i = 2; i < arcs.size(); ++i) {
    Bytes enc;
    uint64_t v = arcs[i];
    enc.push_back(static_cast<uint8_t>(v & 0x7f));
    while (v >>= 7) enc.insert(enc.begin(), static_cast<uint8_t>(0x80 | (v & 0x7f)));
    body.insert(body.end(), enc.begin(), enc.end());
  }
  return der_tlv(0x06, body);
}

Bytes concat(std::initializer_list<ByteSpan> parts) {
  Bytes out;
  for (auto p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

std::string to_pem(const crypto::Certificate& c) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(bio, c.get());
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<size_t>(n));
  BIO_free(bio);
  return out;
}

Bytes point_of(EVP_PKEY* k) {
  size_t len = 0;
  EVP_PKEY_get_octet_string_param(k, "encoded-pub-key", nullptr, 0, &len);
  Bytes p(len);
  EVP_PKEY_get_octet_string_param(k, "encoded-pub-key", p.data(), p.size(), &len);
  return Bytes(p.begin() + 1, p.end());  // drop the 0x04 prefix
}

constexpr std::array<uint8_t, 6> kTestFmspc = {0x00, 0x90, 0x6e, 0xd5, 0x00, 0x00};
constexpr std::array<uint8_t, 64> kTestChipId = {0xc1, 0x11, 0x22, 0x33};
constexpr uint16_t kTestQeSvn = 8;

}  // namespace

struct TestSigner::Impl {
  WallTime nb, na;
  // Nitro
  KeyPtr nitro_root_key, nitro_leaf_key;
  crypto::Certificate nitro_root, nitro_inter, nitro_leaf;
  KeyPtr nitro_inter_key;
  // SNP
  KeyPtr ark_key, ask_key;
  crypto::Certificate ark, ask;
  std::map<uint64_t, std::pair<std::shared_ptr<EVP_PKEY>, crypto::Certificate>> vceks;  // per TCB
  mutable std::mutex vcek_mu;
  // TDX
  KeyPtr sgx_root_key, pck_ca_key, pck_key, tcb_signer_key, att_key;
  crypto::Certificate sgx_root, pck_ca, pck, tcb_signer;
  Bytes att_point;
  std::array<uint8_t, 32> qe_mrsigner{};

  Result<std::pair<std::shared_ptr<EVP_PKEY>, crypto::Certificate>> vcek_for(const SnpTcb& tcb) const {
    const uint64_t raw = encode_snp_tcb(tcb, SnpProduct::kMilan);
    std::lock_guard<std::mutex> lock(vcek_mu);
    auto& cache = const_cast<std::map<uint64_t, std::pair<std::shared_ptr<EVP_PKEY>, crypto::Certificate>>&>(vceks);
    auto it = cache.find(raw);
    if (it != cache.end()) return it->second;
    CML_ASSIGN_OR_RETURN(KeyPtr k, gen_key("P-384"));
    CertSpec spec{"SEV-VCEK", false, {}};
    spec.extensions.emplace_back("1.3.6.1.4.1.3704.1.2", der_tlv(0x16, as_bytes("Milan-B0")));
    spec.extensions.emplace_back("1.3.6.1.4.1.3704.1.3.1", der_int(tcb.bootloader));
    spec.extensions.emplace_back("1.3.6.1.4.1.3704.1.3.2", der_int(tcb.tee));
    spec.extensions.emplace_back("1.3.6.1.4.1.3704.1.3.3", der_int(tcb.snp));
    spec.extensions.emplace_back("1.3.6.1.4.1.3704.1.3.8", der_int(tcb.microcode));
    spec.extensions.emplace_back("1.3.6.1.4.1.3704.1.4", Bytes(kTestChipId.begin(), kTestChipId.end()));
    CML_ASSIGN_OR_RETURN(crypto::Certificate c, make_cert(spec, k.get(), ask.get(), ask_key.get(), nb, na,
                                                          100 + long(cache.size()), EVP_sha384()));
    std::shared_ptr<EVP_PKEY> shared(k.release(), EVP_PKEY_free);
    cache[raw] = {shared, c};
    return cache[raw];
  }
};

TestSigner::TestSigner(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TestSigner::~TestSigner() = default;

TestTcbLevel TestSigner::platform_tcb() {
  TestTcbLevel t;
  t.sgx = {4, 4, 2, 2, 3, 1, 0, 5};
  t.pcesvn = 13;
  t.tdx = {3, 0, 5};
  return t;
}

Result<std::shared_ptr<const TestSigner>> TestSigner::create(WallTime nb, WallTime na) {
  auto m = std::make_unique<Impl>();
  m->nb = nb;
  m->na = na;
  // Nitro: root → intermediate → leaf, all P-384 / SHA-384 like AWS.
  CML_ASSIGN_OR_RETURN(m->nitro_root_key, gen_key("P-384"));
  CML_ASSIGN_OR_RETURN(m->nitro_inter_key, gen_key("P-384"));
  CML_ASSIGN_OR_RETURN(m->nitro_leaf_key, gen_key("P-384"));
  CML_ASSIGN_OR_RETURN(m->nitro_root, make_cert({"test.nitro-enclaves", true, {}}, m->nitro_root_key.get(), nullptr,
                                                m->nitro_root_key.get(), nb, na, 1, EVP_sha384()));
  CML_ASSIGN_OR_RETURN(m->nitro_inter,
                       make_cert({"test.zonal.nitro", true, {}}, m->nitro_inter_key.get(), m->nitro_root.get(),
                                 m->nitro_root_key.get(), nb, na, 2, EVP_sha384()));
  CML_ASSIGN_OR_RETURN(m->nitro_leaf,
                       make_cert({"i-test.enclave", false, {}}, m->nitro_leaf_key.get(), m->nitro_inter.get(),
                                 m->nitro_inter_key.get(), nb, na, 3, EVP_sha384()));
  // SNP: ARK → ASK → VCEK (per TCB, on demand). EC keys stand in for AMD's RSA-PSS keys.
  CML_ASSIGN_OR_RETURN(m->ark_key, gen_key("P-384"));
  CML_ASSIGN_OR_RETURN(m->ask_key, gen_key("P-384"));
  CML_ASSIGN_OR_RETURN(m->ark, make_cert({"ARK-Milan", true, {}}, m->ark_key.get(), nullptr, m->ark_key.get(), nb, na,
                                         10, EVP_sha384()));
  CML_ASSIGN_OR_RETURN(m->ask, make_cert({"SEV-Milan", true, {}}, m->ask_key.get(), m->ark.get(), m->ark_key.get(), nb,
                                         na, 11, EVP_sha384()));
  // TDX: SGX root → PCK CA → PCK; root → TCB signer; attestation key.
  CML_ASSIGN_OR_RETURN(m->sgx_root_key, gen_key("P-256"));
  CML_ASSIGN_OR_RETURN(m->pck_ca_key, gen_key("P-256"));
  CML_ASSIGN_OR_RETURN(m->pck_key, gen_key("P-256"));
  CML_ASSIGN_OR_RETURN(m->tcb_signer_key, gen_key("P-256"));
  CML_ASSIGN_OR_RETURN(m->att_key, gen_key("P-256"));
  CML_ASSIGN_OR_RETURN(m->sgx_root, make_cert({"Test SGX Root CA", true, {}}, m->sgx_root_key.get(), nullptr,
                                              m->sgx_root_key.get(), nb, na, 20, EVP_sha256()));
  CML_ASSIGN_OR_RETURN(m->pck_ca, make_cert({"Test SGX PCK Platform CA", true, {}}, m->pck_ca_key.get(),
                                            m->sgx_root.get(), m->sgx_root_key.get(), nb, na, 21, EVP_sha256()));
  {
    const TestTcbLevel plat = platform_tcb();
    Bytes tcb_items;
    const std::string base = "1.2.840.113741.1.13.1";
    for (int i = 0; i < 16; ++i)
      tcb_items = concat(
          {tcb_items, der_tlv(0x30, concat({der_oid(base + ".2." + std::to_string(i + 1)), der_int(plat.sgx[i])}))});
    tcb_items = concat({tcb_items, der_tlv(0x30, concat({der_oid(base + ".2.17"), der_int(plat.pcesvn)}))});
    tcb_items = concat({tcb_items, der_tlv(0x30, concat({der_oid(base + ".2.18"), der_tlv(0x04, plat.sgx)}))});
    Bytes ext = concat({der_tlv(0x30, concat({der_oid(base + ".1"), der_tlv(0x04, Bytes(16, 0x5a))})),
                        der_tlv(0x30, concat({der_oid(base + ".2"), der_tlv(0x30, tcb_items)})),
                        der_tlv(0x30, concat({der_oid(base + ".3"), der_tlv(0x04, Bytes{0, 0})})),
                        der_tlv(0x30, concat({der_oid(base + ".4"), der_tlv(0x04, kTestFmspc)}))});
    CertSpec spec{"Test SGX PCK Certificate", false, {{base, der_tlv(0x30, ext)}}};
    CML_ASSIGN_OR_RETURN(
        m->pck, make_cert(spec, m->pck_key.get(), m->pck_ca.get(), m->pck_ca_key.get(), nb, na, 22, EVP_sha256()));
  }
  CML_ASSIGN_OR_RETURN(m->tcb_signer, make_cert({"Test SGX TCB Signing", false, {}}, m->tcb_signer_key.get(),
                                                m->sgx_root.get(), m->sgx_root_key.get(), nb, na, 23, EVP_sha256()));
  m->att_point = point_of(m->att_key.get());
  m->qe_mrsigner.fill(0xdc);
  return std::shared_ptr<const TestSigner>(new TestSigner(std::move(m)));
}

Result<Bytes> TestSigner::nitro_document(ByteSpan public_key, ByteSpan nonce, const TestNitroParams& p) const {
  std::map<int, Bytes> pcrs = p.pcrs;
  if (pcrs.empty())
    for (int i = 0; i < 3; ++i) pcrs[i] = Bytes(48, static_cast<uint8_t>(0x11 * (i + 1)));
  const WallTime ts = p.timestamp.value_or(Clock::system().now());
  cose::CborWriter w;
  w.map(9);
  w.tstr("module_id").tstr("i-test-enc0000000000000001");
  w.tstr("digest").tstr("SHA384");
  w.tstr("timestamp")
      .uint(
          static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(ts.time_since_epoch()).count()));
  w.tstr("pcrs").map(pcrs.size());
  for (const auto& [i, v] : pcrs) w.uint(static_cast<uint64_t>(i)).bstr(v);
  w.tstr("certificate").bstr(impl_->nitro_leaf.der());
  w.tstr("cabundle").array(2).bstr(impl_->nitro_root.der()).bstr(impl_->nitro_inter.der());
  w.tstr("public_key").bstr_or_null(public_key);
  w.tstr("user_data").bstr_or_null(p.user_data);
  w.tstr("nonce").bstr_or_null(nonce);
  const Bytes payload = w.take();
  cose::CborWriter h;
  h.map(1).uint(1).nint(cose::kAlgEs384);
  const Bytes prot = h.take();
  CML_ASSIGN_OR_RETURN(Bytes sig,
                       sign_raw(impl_->nitro_leaf_key.get(), EVP_sha384(), cose::sig_structure(prot, payload), 48));
  return cose::encode_sign1(prot, payload, sig, p.tagged);
}

Result<Bytes> TestSigner::snp_document(ByteSpan report_data, const TestSnpParams& p) const {
  if (report_data.size() != 64) return invalid_argument("SNP report data must be 64 bytes");
  CML_ASSIGN_OR_RETURN(auto vcek, impl_->vcek_for(p.tcb));
  Bytes r(kSnpReportSize, 0);
  uint8_t* b = r.data();
  auto put32 = [&](size_t off, uint32_t v) {
    for (int i = 0; i < 4; ++i) b[off + i] = uint8_t(v >> (8 * i));
  };
  auto put64 = [&](size_t off, uint64_t v) {
    for (int i = 0; i < 8; ++i) b[off + i] = uint8_t(v >> (8 * i));
  };
  put32(0x00, 3);  // version
  put64(0x08, p.policy);
  put32(0x30, p.vmpl);
  put32(0x34, 1);  // ECDSA P-384 with SHA-384
  const uint64_t tcb = encode_snp_tcb(p.tcb, SnpProduct::kMilan);
  put64(0x38, tcb);
  put32(0x48, 0);  // signing key VCEK
  std::memcpy(b + 0x50, report_data.data(), 64);
  std::memcpy(b + 0x90, p.measurement.data(), 48);
  std::memcpy(b + 0xC0, p.host_data.data(), 32);
  put64(0x180, tcb);
  b[0x188] = 0x19;  // Milan family/model
  b[0x189] = 0x01;
  std::memcpy(b + 0x1A0, kTestChipId.data(), 64);
  put64(0x1E0, tcb);
  put64(0x1F0, tcb);
  CML_ASSIGN_OR_RETURN(Bytes sig, sign_raw(vcek.first.get(), EVP_sha384(), ByteSpan(r).first(kSnpSignedSize), 48));
  for (int half = 0; half < 2; ++half)
    for (int i = 0; i < 48; ++i) b[0x2A0 + 72 * half + i] = sig[48 * half + 47 - i];
  SnpCertTable t;
  t.vcek = vcek.second.der();
  if (p.include_chain) {
    t.ask = impl_->ask.der();
    t.ark = impl_->ark.der();
  }
  return make_snp_document(r, t);
}

Result<Bytes> TestSigner::tdx_quote(ByteSpan report_data, const TestTdxParams& p) const {
  if (report_data.size() != 64) return invalid_argument("TDX report data must be 64 bytes");
  if (p.version != 4 && p.version != 5) return invalid_argument("TDX quote version must be 4 or 5");
  ByteWriter w;
  w.u16_le(p.version);
  w.u16_le(2);     // ECDSA P-256
  w.u32_le(0x81);  // TDX
  w.u16_le(0);
  w.u16_le(13);
  w.zeros(16 + 20);
  if (p.version == 5) {
    w.u16_le(3);
    w.u32_le(static_cast<uint32_t>(kTdReport15Size));
  }
  w.bytes(p.tee_tcb_svn);
  w.zeros(48);  // MRSEAM
  w.zeros(48);  // MRSIGNERSEAM (Intel module: zero)
  w.u64_le(0);  // SEAM attributes
  w.u64_le(p.td_attributes);
  w.u64_le(0xe7);  // XFAM
  w.bytes(p.mrtd);
  w.zeros(48 * 3);  // MRCONFIGID, MROWNER, MROWNERCONFIG
  for (const auto& r : p.rtmr) w.bytes(r);
  w.bytes(report_data);
  if (p.version == 5) {
    w.bytes(p.tee_tcb_svn);
    w.zeros(48);
  }
  const Bytes signed_part = w.data();
  CML_ASSIGN_OR_RETURN(Bytes qsig, sign_raw(impl_->att_key.get(), EVP_sha256(), signed_part, 32));
  // QE report.
  Bytes qe(kSgxReportSize, 0);
  std::memcpy(qe.data() + 48, "\x11\x00\x00\x00\x00\x00\x00\x00", 8);  // attributes (INIT | MODE64)
  std::memcpy(qe.data() + 128, impl_->qe_mrsigner.data(), 32);
  qe[256] = 2;  // ISVPRODID (TD_QE)
  qe[258] = static_cast<uint8_t>(kTestQeSvn);
  const Bytes auth = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08};
  crypto::Sha256 h;
  h.update(impl_->att_point);
  h.update(auth);
  const auto bind = h.finish();
  std::memcpy(qe.data() + 320, bind.data(), 32);
  CML_ASSIGN_OR_RETURN(Bytes qesig, sign_raw(impl_->pck_key.get(), EVP_sha256(), qe, 32));
  const std::string pem = to_pem(impl_->pck) + to_pem(impl_->pck_ca) + to_pem(impl_->sgx_root);
  ByteWriter cd;
  cd.bytes(qe);
  cd.bytes(qesig);
  cd.u16_le(static_cast<uint16_t>(auth.size()));
  cd.bytes(auth);
  cd.u16_le(5);
  cd.u32_le(static_cast<uint32_t>(pem.size()));
  cd.bytes(as_bytes(pem));
  ByteWriter sd;
  sd.bytes(qsig);
  sd.bytes(impl_->att_point);
  sd.u16_le(6);
  sd.u32_le(static_cast<uint32_t>(cd.size()));
  sd.bytes(cd.data());
  w.u32_le(static_cast<uint32_t>(sd.size()));
  w.bytes(sd.data());
  return w.take();
}

Result<TdxCollateral> TestSigner::tdx_collateral(const std::vector<TestTcbLevel>& levels, WallTime issue, WallTime next,
                                                 uint16_t qe_min_isvsvn) const {
  using nlohmann::json;
  auto comps = [](const std::array<uint8_t, 16>& a) {
    json arr = json::array();
    for (uint8_t v : a) arr.push_back({{"svn", v}});
    return arr;
  };
  json tcb_levels = json::array();
  for (const auto& l : levels) {
    json lvl = {{"tcb", {{"sgxtcbcomponents", comps(l.sgx)}, {"pcesvn", l.pcesvn}, {"tdxtcbcomponents", comps(l.tdx)}}},
                {"tcbDate", format_rfc3339(issue)},
                {"tcbStatus", l.status}};
    if (!l.advisories.empty()) lvl["advisoryIDs"] = l.advisories;
    tcb_levels.push_back(lvl);
  }
  json tcb = {{"id", "TDX"},
              {"version", 3},
              {"issueDate", format_rfc3339(issue)},
              {"nextUpdate", format_rfc3339(next)},
              {"fmspc", to_hex(kTestFmspc)},
              {"pceId", "0000"},
              {"tcbType", 0},
              {"tcbEvaluationDataNumber", 17},
              {"tdxModule",
               {{"mrsigner", std::string(96, '0')},
                {"attributes", "0000000000000000"},
                {"attributesMask", "FFFFFFFFFFFFFFFF"}}},
              {"tcbLevels", tcb_levels}};
  json qe = {
      {"id", "TD_QE"},
      {"version", 2},
      {"issueDate", format_rfc3339(issue)},
      {"nextUpdate", format_rfc3339(next)},
      {"tcbEvaluationDataNumber", 17},
      {"miscselect", "00000000"},
      {"miscselectMask", "FFFFFFFF"},
      {"attributes", "11000000000000000000000000000000"},
      {"attributesMask", "FBFFFFFFFFFFFFFF0000000000000000"},
      {"mrsigner", to_hex(impl_->qe_mrsigner)},
      {"isvprodid", 2},
      {"tcbLevels",
       json::array(
           {{{"tcb", {{"isvsvn", qe_min_isvsvn}}}, {"tcbDate", format_rfc3339(issue)}, {"tcbStatus", "UpToDate"}}})}};
  TdxCollateral c;
  c.tcb_info_json = tcb.dump();
  c.qe_identity_json = qe.dump();
  CML_ASSIGN_OR_RETURN(c.tcb_info_signature,
                       sign_raw(impl_->tcb_signer_key.get(), EVP_sha256(), as_bytes(c.tcb_info_json), 32));
  CML_ASSIGN_OR_RETURN(c.qe_identity_signature,
                       sign_raw(impl_->tcb_signer_key.get(), EVP_sha256(), as_bytes(c.qe_identity_json), 32));
  c.tcb_signing_chain = {impl_->tcb_signer, impl_->sgx_root};
  return c;
}

Result<crypto::Crl> TestSigner::snp_crl(bool revoke_vcek, WallTime last, WallTime next, const SnpTcb& tcb) const {
  CML_ASSIGN_OR_RETURN(auto vcek, impl_->vcek_for(tcb));
  X509_CRL* crl = X509_CRL_new();
  if (!crl) return internal_error("X509_CRL_new failed");
  std::unique_ptr<X509_CRL, void (*)(X509_CRL*)> guard(crl, X509_CRL_free);
  X509_CRL_set_version(crl, 1);
  X509_CRL_set_issuer_name(crl, X509_get_subject_name(impl_->ark.get()));
  ASN1_TIME* t1 = ASN1_TIME_set(nullptr, static_cast<time_t>(to_unix_seconds(last)));
  ASN1_TIME* t2 = ASN1_TIME_set(nullptr, static_cast<time_t>(to_unix_seconds(next)));
  X509_CRL_set1_lastUpdate(crl, t1);
  X509_CRL_set1_nextUpdate(crl, t2);
  ASN1_TIME_free(t1);
  if (revoke_vcek) {
    X509_REVOKED* rev = X509_REVOKED_new();
    X509_REVOKED_set_serialNumber(rev, const_cast<ASN1_INTEGER*>(X509_get0_serialNumber(vcek.second.get())));
    X509_REVOKED_set_revocationDate(rev, t2);
    X509_CRL_add0_revoked(crl, rev);
  }
  ASN1_TIME_free(t2);
  X509_CRL_sort(crl);
  if (X509_CRL_sign(crl, impl_->ark_key.get(), EVP_sha384()) <= 0) return internal_error("CRL signing failed");
  unsigned char* der = nullptr;
  int n = i2d_X509_CRL(crl, &der);
  if (n <= 0) return internal_error("CRL encoding failed");
  Bytes bytes(der, der + n);
  OPENSSL_free(der);
  return crypto::Crl::from_der(bytes);
}

NitroVerifierOptions TestSigner::nitro_options() const {
  NitroVerifierOptions o;
  o.roots = {impl_->nitro_root};
  return o;
}
SnpVerifierOptions TestSigner::snp_options() const {
  SnpVerifierOptions o;
  o.arks = {impl_->ark};
  return o;
}
TdxVerifierOptions TestSigner::tdx_options() const {
  TdxVerifierOptions o;
  o.roots = {impl_->sgx_root};
  return o;
}

namespace {
class TestProvider final : public Provider {
 public:
  TestProvider(std::shared_ptr<const TestSigner> s, EvidenceType t) : s_(std::move(s)), t_(t) {}
  EvidenceType type() const override { return t_; }
  Result<Evidence> attest(ByteSpan public_key, ByteSpan nonce) override {
    Evidence e;
    e.type = t_;
    if (t_ == EvidenceType::kNitro) {
      CML_ASSIGN_OR_RETURN(e.document, s_->nitro_document(public_key, nonce));
      return e;
    }
    CML_ASSIGN_OR_RETURN(auto rd, make_report_data(public_key, nonce));
    if (t_ == EvidenceType::kSevSnp) {
      CML_ASSIGN_OR_RETURN(e.document, s_->snp_document(rd));
    } else {
      CML_ASSIGN_OR_RETURN(e.document, s_->tdx_quote(rd));
    }
    return e;
  }

 private:
  std::shared_ptr<const TestSigner> s_;
  EvidenceType t_;
};
}  // namespace

std::unique_ptr<Provider> TestSigner::provider(EvidenceType type) const {
  CML_CHECK(type == EvidenceType::kNitro || type == EvidenceType::kSevSnp || type == EvidenceType::kTdx);
  // Documents are produced by a copy-free alias of this signer; the caller keeps the signer alive.
  std::shared_ptr<const TestSigner> self(std::shared_ptr<const TestSigner>{}, this);
  return std::make_unique<TestProvider>(self, type);
}

std::shared_ptr<const Verifier> TestSigner::verifier(EvidenceType type) const {
  switch (type) {
    case EvidenceType::kNitro:
      return std::make_shared<NitroVerifier>(nitro_options());
    case EvidenceType::kSevSnp:
      return std::make_shared<SnpVerifier>(snp_options());
    case EvidenceType::kTdx:
      return std::make_shared<TdxVerifier>(tdx_options());
    case EvidenceType::kMock:
      break;
  }
  CML_CHECK_MSG(false, "test signer has no mock format");
  return nullptr;
}

}  // namespace cml::attest
