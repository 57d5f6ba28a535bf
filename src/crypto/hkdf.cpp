#include "crypto/hkdf.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>

#include "crypto/openssl_error.h"

namespace cml::crypto {

namespace {
Result<SecretBytes> run_hkdf(int mode, ByteSpan salt, ByteSpan key, ByteSpan info, size_t length) {
  // Fetched once: an explicit fetch per call costs a locked provider lookup.
  static EVP_KDF* const kdf = EVP_KDF_fetch(nullptr, "HKDF", nullptr);
  if (!kdf) return crypto_error("HKDF unavailable in OpenSSL");
  EVP_KDF_CTX* ctx = EVP_KDF_CTX_new(kdf);
  if (!ctx) return crypto_error("HKDF context allocation failed");
  static uint8_t kZeroSalt[32] = {};
  char digest[] = "SHA256";
  OSSL_PARAM params[6];
  int n = 0;
  params[n++] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0);
  params[n++] = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode);
  // An empty span may carry a null pointer, which OpenSSL reads as "no key" and fails the derivation;
  // RFC 5869 allows an empty IKM, so point at a real (zero-length) buffer instead.
  static uint8_t kNoBytes[1] = {};
  uint8_t* key_ptr = key.empty() ? kNoBytes : const_cast<uint8_t*>(key.data());
  params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, key_ptr, key.size());
  if (mode != EVP_KDF_HKDF_MODE_EXPAND_ONLY) {
    if (salt.empty())
      params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, kZeroSalt, sizeof kZeroSalt);
    else
      params[n++] =
          OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, const_cast<uint8_t*>(salt.data()), salt.size());
  }
  if (mode != EVP_KDF_HKDF_MODE_EXTRACT_ONLY)
    params[n++] =
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, const_cast<uint8_t*>(info.data()), info.size());
  params[n] = OSSL_PARAM_construct_end();
  SecretBytes out(length);
  int rc = EVP_KDF_derive(ctx, out.data(), out.size(), params);
  EVP_KDF_CTX_free(ctx);
  if (rc != 1) return internal::openssl_failure(crypto_error("HKDF derivation failed"));
  return out;
}
}  // namespace

Result<SecretBytes> hkdf_sha256(ByteSpan salt, ByteSpan ikm, ByteSpan info, size_t length) {
  if (length == 0 || length > 255 * 32) return invalid_argument("HKDF-SHA256 output length must be 1..8160");
  return run_hkdf(EVP_KDF_HKDF_MODE_EXTRACT_AND_EXPAND, salt, ikm, info, length);
}

Result<SecretBytes> hkdf_sha256_extract(ByteSpan salt, ByteSpan ikm) {
  return run_hkdf(EVP_KDF_HKDF_MODE_EXTRACT_ONLY, salt, ikm, {}, 32);
}

Result<SecretBytes> hkdf_sha256_expand(ByteSpan prk, ByteSpan info, size_t length) {
  if (length == 0 || length > 255 * 32) return invalid_argument("HKDF-SHA256 output length must be 1..8160");
  if (prk.size() < 32) return invalid_argument("HKDF PRK must be at least 32 bytes");
  return run_hkdf(EVP_KDF_HKDF_MODE_EXPAND_ONLY, {}, prk, info, length);
}

}  // namespace cml::crypto
