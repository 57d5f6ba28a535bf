#include "crypto/ecdsa.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>

#include <algorithm>

#include "crypto/openssl_error.h"

namespace cml::crypto {

using internal::openssl_failure;

namespace {
struct BnFree {
  void operator()(BIGNUM* b) const { BN_free(b); }
};
using BnPtr = std::unique_ptr<BIGNUM, BnFree>;

// A P-521 DER signature is at most 139 bytes; an RSA-4096 SPKI about 550. Anything far larger is refused
// before OpenSSL parses it.
constexpr size_t kMaxDerSignature = 256;
constexpr size_t kMaxSpki = 4096;

size_t field_size_of(const PublicKey& key) {
  int bits = EVP_PKEY_get_bits(key.get());
  return static_cast<size_t>((bits + 7) / 8);
}
}  // namespace

PublicKey::PublicKey(EVP_PKEY* owned) : key_(owned, EVP_PKEY_free) {}

Result<PublicKey> PublicKey::from_ec_point(Curve curve, ByteSpan point) {
  const size_t fs = curve == Curve::kP256 ? 32 : 48;
  Bytes sec1;
  if (point.size() == 2 * fs) {
    sec1.reserve(1 + point.size());
    sec1.push_back(0x04);
    sec1.insert(sec1.end(), point.begin(), point.end());
  } else if (point.size() == 2 * fs + 1 && point[0] == 0x04) {
    sec1.assign(point.begin(), point.end());
  } else {
    return invalid_argument("EC public point has wrong length " + std::to_string(point.size()));
  }
  const char* group = curve == Curve::kP256 ? "prime256v1" : "secp384r1";
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr);
  if (!ctx) return internal_error("EC context allocation failed");
  OSSL_PARAM params[3];
  params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, const_cast<char*>(group), 0);
  params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, sec1.data(), sec1.size());
  params[2] = OSSL_PARAM_construct_end();
  EVP_PKEY* pkey = nullptr;
  int ok = EVP_PKEY_fromdata_init(ctx) == 1 && EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) == 1;
  EVP_PKEY_CTX_free(ctx);
  if (!ok || !pkey) {
    EVP_PKEY_free(pkey);
    return openssl_failure(crypto_error("EC public point is not on the curve"));
  }
  // fromdata does not always check the point; do it explicitly.
  EVP_PKEY_CTX* check = EVP_PKEY_CTX_new_from_pkey(nullptr, pkey, nullptr);
  bool valid = check && EVP_PKEY_public_check(check) == 1;
  EVP_PKEY_CTX_free(check);
  if (!valid) {
    EVP_PKEY_free(pkey);
    return openssl_failure(crypto_error("EC public point is not on the curve"));
  }
  return PublicKey(pkey);
}

Result<PublicKey> PublicKey::from_spki_der(ByteSpan der) {
  if (der.size() > kMaxSpki) return invalid_argument("SubjectPublicKeyInfo too long");
  const unsigned char* p = der.data();
  EVP_PKEY* pkey = d2i_PUBKEY(nullptr, &p, static_cast<long>(der.size()));
  if (!pkey) return openssl_failure(invalid_argument("malformed SubjectPublicKeyInfo"));
  if (p != der.data() + der.size()) {
    EVP_PKEY_free(pkey);
    return invalid_argument("trailing bytes after SubjectPublicKeyInfo");
  }
  return PublicKey(pkey);
}

Result<Bytes> ecdsa_raw_to_der(ByteSpan raw) {
  if (raw.empty() || raw.size() % 2 != 0 || raw.size() > 132) return crypto_error("raw ECDSA signature has bad length");
  const size_t half = raw.size() / 2;
  BnPtr r(BN_bin2bn(raw.data(), static_cast<int>(half), nullptr));
  BnPtr s(BN_bin2bn(raw.data() + half, static_cast<int>(half), nullptr));
  if (!r || !s) return internal_error("BN allocation failed");
  ECDSA_SIG* sig = ECDSA_SIG_new();
  if (!sig || ECDSA_SIG_set0(sig, r.get(), s.get()) != 1) {
    ECDSA_SIG_free(sig);
    return internal_error("ECDSA_SIG setup failed");
  }
  r.release();
  s.release();
  unsigned char* der = nullptr;
  int len = i2d_ECDSA_SIG(sig, &der);
  ECDSA_SIG_free(sig);
  if (len <= 0) return internal_error("ECDSA signature encoding failed");
  Bytes out(der, der + len);
  OPENSSL_free(der);
  return out;
}

Result<Bytes> ecdsa_der_to_raw(ByteSpan der, size_t field_size) {
  if (der.size() > kMaxDerSignature) return crypto_error("DER ECDSA signature too long");
  const unsigned char* p = der.data();
  ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size()));
  if (!sig) return openssl_failure(crypto_error("malformed DER ECDSA signature"));
  bool trailing = p != der.data() + der.size();
  const BIGNUM *r = nullptr, *s = nullptr;
  ECDSA_SIG_get0(sig, &r, &s);
  Bytes out(2 * field_size);
  // BN_bn2binpad writes the magnitude only, so a negative r or s must be refused, not turned positive
  // (OpenSSL 3.0 already refuses negative INTEGERs here; this keeps the rule whatever the library does).
  bool ok = !trailing && !BN_is_negative(r) && !BN_is_negative(s) && field_size > 0 && field_size <= 66 &&
            BN_bn2binpad(r, out.data(), static_cast<int>(field_size)) >= 0 &&
            BN_bn2binpad(s, out.data() + field_size, static_cast<int>(field_size)) >= 0;
  ECDSA_SIG_free(sig);
  if (!ok) return openssl_failure(crypto_error("ECDSA signature does not fit the curve"));
  return out;
}

Status ecdsa_verify_digest(const PublicKey& key, ByteSpan digest, ByteSpan signature, SignatureFormat format) {
  if (!key.valid()) return invalid_argument("no public key");
  // An RSA (or other) key must not be used here: OpenSSL would run its own algorithm on the bytes.
  if (EVP_PKEY_get_base_id(key.get()) != EVP_PKEY_EC) return invalid_argument("ECDSA verification needs an EC key");
  Bytes der_storage;
  ByteSpan der = signature;
  if (format == SignatureFormat::kRaw) {
    if (signature.size() != 2 * field_size_of(key)) return crypto_error("raw ECDSA signature has wrong length");
    CML_ASSIGN_OR_RETURN(der_storage, ecdsa_raw_to_der(signature));
    der = der_storage;
  } else {
    // Strict DER: re-encode and compare, so BER variants and trailing bytes are refused.
    if (signature.size() > kMaxDerSignature) return crypto_error("DER ECDSA signature too long");
    const unsigned char* p = signature.data();
    ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(signature.size()));
    if (!sig) return openssl_failure(crypto_error("malformed DER ECDSA signature"));
    unsigned char* re = nullptr;
    int len = i2d_ECDSA_SIG(sig, &re);
    ECDSA_SIG_free(sig);
    bool canonical = len == static_cast<int>(signature.size()) && std::equal(signature.begin(), signature.end(), re);
    OPENSSL_free(re);
    if (!canonical) return crypto_error("non-canonical DER ECDSA signature");
  }
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new(key.get(), nullptr);
  if (!ctx) return internal_error("EVP_PKEY_CTX_new failed");
  int rc =
      EVP_PKEY_verify_init(ctx) == 1 ? EVP_PKEY_verify(ctx, der.data(), der.size(), digest.data(), digest.size()) : -1;
  EVP_PKEY_CTX_free(ctx);
  if (rc != 1) return openssl_failure(crypto_error("ECDSA signature verification failed"));
  return ok_status();
}

Status ecdsa_verify(const PublicKey& key, HashAlg alg, ByteSpan message, ByteSpan signature, SignatureFormat format) {
  Bytes digest = hash(alg, message);
  return ecdsa_verify_digest(key, digest, signature, format);
}

}  // namespace cml::crypto
