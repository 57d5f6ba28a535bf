#include "crypto/x509.h"

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <cstring>
#include <ctime>
#include <map>
#include <mutex>
#include <set>

namespace cml::crypto {

namespace {

struct StoreFree {
  void operator()(X509_STORE* s) const { X509_STORE_free(s); }
};
struct StoreCtxFree {
  void operator()(X509_STORE_CTX* s) const { X509_STORE_CTX_free(s); }
};
struct StackFree {
  void operator()(STACK_OF(X509) * s) const { sk_X509_free(s); }
};
struct ChainFree {
  void operator()(STACK_OF(X509) * s) const { sk_X509_pop_free(s, X509_free); }
};
struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};

WallTime asn1_to_wall(const ASN1_TIME* t) {
  struct tm tmv;
  std::memset(&tmv, 0, sizeof(tmv));
  if (!t || ASN1_TIME_to_tm(t, &tmv) != 1) return WallTime{};
  return from_unix_seconds(static_cast<int64_t>(timegm(&tmv)));
}

std::string name_line(const X509_NAME* name) {
  if (!name) return {};
  std::unique_ptr<BIO, BioFree> bio(BIO_new(BIO_s_mem()));
  if (!bio) return {};
  X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return n > 0 ? std::string(data, static_cast<size_t>(n)) : std::string();
}

std::string short_name(const Certificate& c) {
  std::string cn = c.common_name();
  return "'" + (cn.empty() ? c.subject() : cn) + "'";
}

void clear_openssl_errors() {
  ERR_clear_error();
}

// Process-wide caches (bounded; cleared wholesale when full). Both are keyed by content hashes, so a hit
// means "these exact bytes": parsed certificates by SHA-256 of their DER, and verified certificate
// signatures by SHA-256(child DER) ‖ SHA-256(issuer DER). Validity times are never cached.
constexpr size_t kMaxCacheEntries = 1024;

struct Caches {
  std::mutex mu;
  std::map<Digest256, std::pair<std::shared_ptr<X509>, std::pair<WallTime, WallTime>>> parsed;
  std::set<std::pair<Digest256, Digest256>> verified_links;
};
Caches& caches() {
  static Caches c;
  return c;
}

Digest256 der_digest(X509* x) {
  Digest256 d{};
  unsigned int len = 0;
  X509_digest(x, EVP_sha256(), d.data(), &len);
  return d;
}

// Signature of `child` under `issuer`'s key, remembered once verified.
bool verify_link_cached(X509* child, X509* issuer) {
  const auto key = std::make_pair(der_digest(child), der_digest(issuer));
  {
    std::lock_guard<std::mutex> lock(caches().mu);
    if (caches().verified_links.count(key)) return true;
  }
  EVP_PKEY* k = X509_get0_pubkey(issuer);
  if (!k || X509_verify(child, k) != 1) {
    ERR_clear_error();
    return false;
  }
  std::lock_guard<std::mutex> lock(caches().mu);
  if (caches().verified_links.size() >= kMaxCacheEntries) caches().verified_links.clear();
  caches().verified_links.insert(key);
  return true;
}

// Replaces OpenSSL's final verification step (signatures and times along the built chain); chain building,
// trust anchors and CA/extension checks stay OpenSSL's. The trust anchor's own self-signature is not checked:
// anchors are pinned by their exact bytes.
int verify_signatures_and_times(X509_STORE_CTX* ctx) {
  STACK_OF(X509)* chain = X509_STORE_CTX_get0_chain(ctx);
  const int n = chain ? sk_X509_num(chain) : 0;
  time_t t = X509_VERIFY_PARAM_get_time(X509_STORE_CTX_get0_param(ctx));
  for (int i = n - 1; i >= 0; --i) {
    X509* x = sk_X509_value(chain, i);
    auto fail = [&](int err) {
      X509_STORE_CTX_set_error_depth(ctx, i);
      X509_STORE_CTX_set_current_cert(ctx, x);
      X509_STORE_CTX_set_error(ctx, err);
      return 0;
    };
    if (i < n - 1 && !verify_link_cached(x, sk_X509_value(chain, i + 1)))
      return fail(X509_V_ERR_CERT_SIGNATURE_FAILURE);
    if (X509_cmp_time(X509_get0_notBefore(x), &t) > 0) return fail(X509_V_ERR_CERT_NOT_YET_VALID);
    if (X509_cmp_time(X509_get0_notAfter(x), &t) < 0) return fail(X509_V_ERR_CERT_HAS_EXPIRED);
  }
  return 1;
}

bool looks_like_pem(ByteSpan data) {
  return as_string_view(data).find("-----BEGIN ") != std::string_view::npos;
}

}  // namespace

// ---------------------------------------------------------------------------------------------- Certificate

Result<Certificate> Certificate::from_der(ByteSpan der) {
  if (der.empty()) return invalid_argument("empty certificate");
  if (der.size() > kMaxCertificateSize) return invalid_argument("certificate larger than the allowed maximum");
  const Digest256 digest = sha256(der);
  {
    std::lock_guard<std::mutex> lock(caches().mu);
    auto it = caches().parsed.find(digest);
    if (it != caches().parsed.end()) {
      Certificate c;
      c.x509_ = it->second.first;
      c.der_.assign(der.begin(), der.end());
      c.not_before_ = it->second.second.first;
      c.not_after_ = it->second.second.second;
      return c;
    }
  }
  const unsigned char* p = der.data();
  X509* x = d2i_X509(nullptr, &p, static_cast<long>(der.size()));
  if (!x) {
    clear_openssl_errors();
    return invalid_argument("malformed X.509 certificate");
  }
  Certificate c;
  c.x509_.reset(x, X509_free);
  if (p != der.data() + der.size()) return invalid_argument("trailing bytes after X.509 certificate");
  c.der_.assign(der.begin(), der.end());
  c.not_before_ = asn1_to_wall(X509_get0_notBefore(x));
  c.not_after_ = asn1_to_wall(X509_get0_notAfter(x));
  // Only well-formed certificates whose public key decodes are cached (X509 objects are then read-only).
  if (X509_get0_pubkey(x) != nullptr) {
    std::lock_guard<std::mutex> lock(caches().mu);
    if (caches().parsed.size() >= kMaxCacheEntries) caches().parsed.clear();
    caches().parsed.emplace(digest, std::make_pair(c.x509_, std::make_pair(c.not_before_, c.not_after_)));
  }
  clear_openssl_errors();
  return c;
}

void clear_certificate_caches() {
  std::lock_guard<std::mutex> lock(caches().mu);
  caches().parsed.clear();
  caches().verified_links.clear();
}

Result<std::vector<Certificate>> Certificate::chain_from_pem(std::string_view pem) {
  if (pem.size() > 16 * kMaxCertificateSize) return invalid_argument("PEM input too large");
  std::vector<Certificate> out;
  constexpr std::string_view kBegin = "-----BEGIN CERTIFICATE-----";
  constexpr std::string_view kEnd = "-----END CERTIFICATE-----";
  size_t pos = 0;
  while ((pos = pem.find(kBegin, pos)) != std::string_view::npos) {
    size_t end = pem.find(kEnd, pos);
    if (end == std::string_view::npos) return invalid_argument("unterminated PEM certificate block");
    end += kEnd.size();
    std::string_view block = pem.substr(pos, end - pos);
    std::unique_ptr<BIO, BioFree> bio(BIO_new_mem_buf(block.data(), static_cast<int>(block.size())));
    if (!bio) return internal_error("BIO allocation failed");
    X509* x = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr);
    if (!x) {
      clear_openssl_errors();
      return invalid_argument("malformed PEM certificate #" + std::to_string(out.size() + 1));
    }
    unsigned char* der = nullptr;
    int n = i2d_X509(x, &der);
    X509_free(x);
    if (n <= 0) return invalid_argument("certificate does not re-encode");
    Bytes bytes(der, der + n);
    OPENSSL_free(der);
    CML_ASSIGN_OR_RETURN(auto cert, from_der(bytes));
    out.push_back(std::move(cert));
    pos = end;
  }
  if (out.empty()) return invalid_argument("no PEM certificate found");
  return out;
}

Result<std::vector<Certificate>> Certificate::parse_any(ByteSpan data) {
  if (looks_like_pem(data)) return chain_from_pem(as_string_view(data));
  // One or more concatenated DER certificates.
  std::vector<Certificate> out;
  DerReader r(data);
  while (!r.empty()) {
    CML_ASSIGN_OR_RETURN(auto el, r.next());
    if (el.tag != 0x30) return invalid_argument("DER input is not a certificate sequence");
    CML_ASSIGN_OR_RETURN(auto cert, from_der(el.whole));
    out.push_back(std::move(cert));
  }
  if (out.empty()) return invalid_argument("no certificate found");
  return out;
}

std::string Certificate::subject() const {
  return name_line(X509_get_subject_name(x509_.get()));
}
std::string Certificate::issuer() const {
  return name_line(X509_get_issuer_name(x509_.get()));
}

std::string Certificate::common_name() const {
  const X509_NAME* name = X509_get_subject_name(x509_.get());
  int idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
  if (idx < 0) return {};
  const ASN1_STRING* s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
  unsigned char* utf8 = nullptr;
  int n = ASN1_STRING_to_UTF8(&utf8, s);
  if (n < 0) return {};
  std::string out(reinterpret_cast<char*>(utf8), static_cast<size_t>(n));
  OPENSSL_free(utf8);
  return out;
}

Bytes Certificate::serial() const {
  const ASN1_INTEGER* s = X509_get0_serialNumber(x509_.get());
  return Bytes(s->data, s->data + s->length);
}

WallTime Certificate::not_before() const {
  return not_before_;
}
WallTime Certificate::not_after() const {
  return not_after_;
}

Result<PublicKey> Certificate::public_key() const {
  EVP_PKEY* k = X509_get_pubkey(x509_.get());
  if (!k) {
    clear_openssl_errors();
    return invalid_argument("certificate " + short_name(*this) + " has an unreadable public key");
  }
  return PublicKey(k);
}

std::optional<Bytes> Certificate::extension(std::string_view oid) const {
  ASN1_OBJECT* obj = OBJ_txt2obj(std::string(oid).c_str(), 1);
  if (!obj) {
    clear_openssl_errors();
    return std::nullopt;
  }
  int idx = X509_get_ext_by_OBJ(x509_.get(), obj, -1);
  ASN1_OBJECT_free(obj);
  if (idx < 0) return std::nullopt;
  const ASN1_OCTET_STRING* v = X509_EXTENSION_get_data(X509_get_ext(x509_.get(), idx));
  if (!v) return std::nullopt;
  return Bytes(v->data, v->data + v->length);
}

Status Certificate::verify_signed_by(const Certificate& issuer_cert) const {
  EVP_PKEY* k = X509_get0_pubkey(issuer_cert.get());
  if (!k || X509_verify(x509_.get(), k) != 1) {
    clear_openssl_errors();
    return attestation_error("signature of certificate " + short_name(*this) + " does not verify under " +
                             short_name(issuer_cert));
  }
  return ok_status();
}

// ------------------------------------------------------------------------------------------------------ Crl

Result<Crl> Crl::from_der(ByteSpan der) {
  if (der.empty() || der.size() > kMaxCertificateSize) return invalid_argument("CRL is empty or too large");
  const unsigned char* p = der.data();
  X509_CRL* c = d2i_X509_CRL(nullptr, &p, static_cast<long>(der.size()));
  if (!c) {
    clear_openssl_errors();
    return invalid_argument("malformed CRL");
  }
  Crl out;
  out.crl_.reset(c, X509_CRL_free);
  if (p != der.data() + der.size()) return invalid_argument("trailing bytes after CRL");
  return out;
}

Result<Crl> Crl::parse_any(ByteSpan data) {
  if (data.size() > 4 * kMaxCertificateSize) return invalid_argument("CRL input too large");
  if (looks_like_pem(data)) {
    std::unique_ptr<BIO, BioFree> bio(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
    X509_CRL* c = bio ? PEM_read_bio_X509_CRL(bio.get(), nullptr, nullptr, nullptr) : nullptr;
    if (!c) {
      clear_openssl_errors();
      return invalid_argument("malformed PEM CRL");
    }
    Crl out;
    out.crl_.reset(c, X509_CRL_free);
    return out;
  }
  if (!data.empty() && data[0] == 0x30) return from_der(data);
  // Hex text of DER.
  std::string_view text = as_string_view(data);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) text.remove_suffix(1);
  auto der = from_hex(text);
  if (!der) return invalid_argument("CRL is neither PEM, DER nor hex");
  return from_der(*der);
}

std::string Crl::issuer() const {
  return name_line(X509_CRL_get_issuer(crl_.get()));
}
WallTime Crl::last_update() const {
  return asn1_to_wall(X509_CRL_get0_lastUpdate(crl_.get()));
}
std::optional<WallTime> Crl::next_update() const {
  const ASN1_TIME* t = X509_CRL_get0_nextUpdate(crl_.get());
  if (!t) return std::nullopt;
  return asn1_to_wall(t);
}

Status Crl::check(const Certificate& issuer_cert, WallTime now) const {
  if (X509_NAME_cmp(X509_CRL_get_issuer(crl_.get()), X509_get_subject_name(issuer_cert.get())) != 0)
    return attestation_error("CRL issuer '" + issuer() + "' is not '" + issuer_cert.subject() + "'");
  EVP_PKEY* k = X509_get0_pubkey(issuer_cert.get());
  if (!k || X509_CRL_verify(crl_.get(), k) != 1) {
    clear_openssl_errors();
    return attestation_error("signature of the CRL issued by '" + issuer() + "' does not verify");
  }
  if (last_update() > now)
    return attestation_error("CRL issued by '" + issuer() + "' is not yet valid (thisUpdate " +
                             format_rfc3339(last_update()) + ")");
  auto next = next_update();
  if (!next) return attestation_error("CRL issued by '" + issuer() + "' has no nextUpdate");
  if (*next < now)
    return attestation_error("CRL issued by '" + issuer() + "' is stale (nextUpdate " + format_rfc3339(*next) + ")");
  return ok_status();
}

bool Crl::is_revoked(const Certificate& cert) const {
  X509_REVOKED* rev = nullptr;
  return X509_CRL_get0_by_serial(crl_.get(), &rev, X509_get0_serialNumber(cert.get())) == 1;
}

// ------------------------------------------------------------------------------------------- verify_chain

Status verify_chain(const Certificate& leaf, std::span<const Certificate> intermediates,
                    std::span<const Certificate> roots, WallTime now, std::span<const Crl> crls) {
  if (!leaf.valid()) return invalid_argument("no leaf certificate");
  if (roots.empty()) return attestation_error("no trusted root configured");
  std::unique_ptr<X509_STORE, StoreFree> store(X509_STORE_new());
  std::unique_ptr<X509_STORE_CTX, StoreCtxFree> ctx(X509_STORE_CTX_new());
  std::unique_ptr<STACK_OF(X509), StackFree> untrusted(sk_X509_new_null());
  if (!store || !ctx || !untrusted) return internal_error("X509 store allocation failed");
  for (const auto& r : roots) X509_STORE_add_cert(store.get(), r.get());
  for (const auto& c : intermediates) sk_X509_push(untrusted.get(), c.get());
  if (X509_STORE_CTX_init(ctx.get(), store.get(), leaf.get(), untrusted.get()) != 1)
    return internal_error("X509 store context init failed");
  X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx.get());
  X509_VERIFY_PARAM_set_time(param, static_cast<time_t>(to_unix_seconds(now)));
  X509_STORE_CTX_set_verify(ctx.get(), verify_signatures_and_times);
  int ok = X509_verify_cert(ctx.get());
  if (ok != 1) {
    int err = X509_STORE_CTX_get_error(ctx.get());
    X509* cur = X509_STORE_CTX_get_current_cert(ctx.get());
    std::string who = "'" + (cur ? name_line(X509_get_subject_name(cur)) : std::string("?")) + "'";
    clear_openssl_errors();
    switch (err) {
      case X509_V_ERR_CERT_HAS_EXPIRED:
        return attestation_error("certificate " + who + " expired (notAfter " +
                                 format_rfc3339(asn1_to_wall(X509_get0_notAfter(cur))) + ", now " +
                                 format_rfc3339(now) + ")");
      case X509_V_ERR_CERT_NOT_YET_VALID:
        return attestation_error("certificate " + who + " is not yet valid (notBefore " +
                                 format_rfc3339(asn1_to_wall(X509_get0_notBefore(cur))) + ", now " +
                                 format_rfc3339(now) + ")");
      case X509_V_ERR_CERT_SIGNATURE_FAILURE:
        return attestation_error("signature of certificate " + who + " does not verify");
      case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
      case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
      case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
      case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
      case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
        return attestation_error("certificate chain does not lead to a trusted root (stops at " + who + ")");
      default:
        return attestation_error("certificate " + who + " rejected: " + X509_verify_cert_error_string(err));
    }
  }
  if (crls.empty()) return ok_status();
  std::unique_ptr<STACK_OF(X509), ChainFree> chain(X509_STORE_CTX_get1_chain(ctx.get()));
  const int n = chain ? sk_X509_num(chain.get()) : 0;
  for (const auto& crl : crls) {
    bool used = false;
    // chain[0] is the leaf; chain[i+1] issued chain[i].
    for (int i = 0; i + 1 < n; ++i) {
      X509* subject = sk_X509_value(chain.get(), i);
      X509* issuer_x = sk_X509_value(chain.get(), i + 1);
      if (X509_NAME_cmp(X509_CRL_get_issuer(crl.get()), X509_get_subject_name(issuer_x)) != 0) continue;
      unsigned char* der = nullptr;
      int len = i2d_X509(issuer_x, &der);
      if (len <= 0) return internal_error("certificate re-encoding failed");
      auto issuer_cert = Certificate::from_der(ByteSpan(der, static_cast<size_t>(len)));
      OPENSSL_free(der);
      if (!issuer_cert) return issuer_cert.status();
      CML_RETURN_IF_ERROR(crl.check(*issuer_cert, now));
      X509_REVOKED* rev = nullptr;
      if (X509_CRL_get0_by_serial(crl.get(), &rev, X509_get0_serialNumber(subject)) == 1)
        return attestation_error("certificate '" + name_line(X509_get_subject_name(subject)) +
                                 "' is revoked by the CRL of '" + crl.issuer() + "'");
      used = true;
    }
    if (!used)
      return attestation_error("CRL issued by '" + crl.issuer() + "' does not belong to this certificate chain");
  }
  return ok_status();
}

// ---------------------------------------------------------------------------------------------------- DER

Result<DerElement> DerReader::next() {
  const size_t n = data_.size();
  if (pos_ + 2 > n) return invalid_argument("truncated DER element");
  const size_t start = pos_;
  uint8_t tag = data_[pos_++];
  if ((tag & 0x1f) == 0x1f) return invalid_argument("multi-byte DER tags are not supported");
  size_t len = data_[pos_++];
  if (len & 0x80) {
    size_t count = len & 0x7f;
    if (count == 0 || count > 4) return invalid_argument("unsupported DER length encoding");
    if (pos_ + count > n) return invalid_argument("truncated DER length");
    len = 0;
    for (size_t i = 0; i < count; ++i) len = (len << 8) | data_[pos_++];
  }
  if (len > n - pos_) return invalid_argument("DER element longer than its container");
  DerElement el;
  el.tag = tag;
  el.value = data_.subspan(pos_, len);
  pos_ += len;
  el.whole = data_.subspan(start, pos_ - start);
  return el;
}

Result<DerElement> DerReader::expect(uint8_t tag, std::string_view what) {
  auto el = next();
  if (!el) return invalid_argument(std::string(what) + ": " + el.status().message());
  if (el->tag != tag) return invalid_argument(std::string(what) + ": unexpected DER tag");
  return el;
}

Result<std::string> der_oid_to_string(ByteSpan c) {
  if (c.empty() || c.size() > 64) return invalid_argument("bad OID length");
  std::string out;
  uint64_t v = 0;
  bool first = true;
  for (size_t i = 0; i < c.size(); ++i) {
    if (v > (uint64_t(1) << 56)) return invalid_argument("OID arc too large");
    v = (v << 7) | (c[i] & 0x7f);
    if (c[i] & 0x80) {
      if (i + 1 == c.size()) return invalid_argument("truncated OID");
      continue;
    }
    if (first) {
      uint64_t a = v < 40 ? 0 : (v < 80 ? 1 : 2);
      out = std::to_string(a) + "." + std::to_string(v - 40 * a);
      first = false;
    } else {
      out += "." + std::to_string(v);
    }
    v = 0;
  }
  return out;
}

Result<uint64_t> der_uint(ByteSpan c) {
  if (c.empty()) return invalid_argument("empty INTEGER");
  if (c[0] & 0x80) return invalid_argument("negative INTEGER");
  size_t i = 0;
  while (i + 1 < c.size() && c[i] == 0) ++i;
  if (c.size() - i > 8) return invalid_argument("INTEGER too large");
  uint64_t v = 0;
  for (; i < c.size(); ++i) v = (v << 8) | c[i];
  return v;
}

}  // namespace cml::crypto
