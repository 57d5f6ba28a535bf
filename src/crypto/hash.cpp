#include "crypto/hash.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>

namespace cml::crypto {

namespace {
const EVP_MD* md_for(HashAlg alg) {
  switch (alg) {
    case HashAlg::kSha256:
      return EVP_sha256();
    case HashAlg::kSha384:
      return EVP_sha384();
    case HashAlg::kSha512:
      return EVP_sha512();
  }
  return EVP_sha256();
}
}  // namespace

Bytes hash(HashAlg alg, ByteSpan data) {
  const EVP_MD* md = md_for(alg);
  Bytes out(static_cast<size_t>(EVP_MD_get_size(md)));
  unsigned int len = 0;
  CML_CHECK(EVP_Digest(data.data(), data.size(), out.data(), &len, md, nullptr) == 1);
  return out;
}

Digest256 sha256(ByteSpan data) {
  Digest256 d{};
  unsigned int len = 0;
  CML_CHECK(EVP_Digest(data.data(), data.size(), d.data(), &len, EVP_sha256(), nullptr) == 1);
  return d;
}

Digest384 sha384(ByteSpan data) {
  Digest384 d{};
  unsigned int len = 0;
  CML_CHECK(EVP_Digest(data.data(), data.size(), d.data(), &len, EVP_sha384(), nullptr) == 1);
  return d;
}

Digest256 hmac_sha256(ByteSpan key, ByteSpan data) {
  return HmacSha256(key).update(data).finish();
}

namespace {
// An unkeyed HMAC context with SHA-256 selected, one per thread: keyed contexts are copies of it, so no
// call pays for looking up the algorithms by name (a locked provider query, which dominated short MACs).
EVP_MAC_CTX* hmac_template() {
  struct Template {
    EVP_MAC_CTX* ctx = nullptr;
    Template() {
      EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
      CML_CHECK_MSG(mac != nullptr, "HMAC unavailable in OpenSSL");
      ctx = EVP_MAC_CTX_new(mac);
      EVP_MAC_free(mac);  // the context keeps its own reference
      char digest[] = "SHA256";
      const OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                                   OSSL_PARAM_construct_end()};
      CML_CHECK_MSG(ctx != nullptr && EVP_MAC_CTX_set_params(ctx, params) == 1, "HMAC-SHA256 setup failed");
    }
    ~Template() { EVP_MAC_CTX_free(ctx); }
  };
  thread_local Template t;
  return t.ctx;
}
}  // namespace

struct HmacSha256::Impl {
  EVP_MAC_CTX* ctx = EVP_MAC_CTX_dup(hmac_template());
  ~Impl() { EVP_MAC_CTX_free(ctx); }  // OpenSSL cleanses HMAC state when it frees it
};

HmacSha256::HmacSha256(ByteSpan key) : impl_(std::make_unique<Impl>()) {
  // An empty key must still be a real pointer: OpenSSL reads a null key as "keep the previous key".
  static const uint8_t kEmpty = 0;
  CML_CHECK(impl_->ctx != nullptr &&
            EVP_MAC_init(impl_->ctx, key.empty() ? &kEmpty : key.data(), key.size(), nullptr) == 1);
}
HmacSha256::~HmacSha256() = default;
HmacSha256::HmacSha256(HmacSha256&&) noexcept = default;
HmacSha256& HmacSha256::operator=(HmacSha256&&) noexcept = default;

HmacSha256& HmacSha256::update(ByteSpan data) {
  CML_CHECK(data.empty() || EVP_MAC_update(impl_->ctx, data.data(), data.size()) == 1);
  return *this;
}

Digest256 HmacSha256::finish() {
  Digest256 d{};
  size_t len = 0;
  CML_CHECK(EVP_MAC_final(impl_->ctx, d.data(), &len, d.size()) == 1 && len == d.size());
  // A null key restarts the MAC under the key already set.
  CML_CHECK(EVP_MAC_init(impl_->ctx, nullptr, 0, nullptr) == 1);
  return d;
}

struct Sha256::Impl {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  ~Impl() { EVP_MD_CTX_free(ctx); }
};

Sha256::Sha256() : impl_(std::make_unique<Impl>()) {
  CML_CHECK(impl_->ctx && EVP_DigestInit_ex(impl_->ctx, EVP_sha256(), nullptr) == 1);
}
Sha256::~Sha256() = default;
Sha256::Sha256(Sha256&&) noexcept = default;
Sha256& Sha256::operator=(Sha256&&) noexcept = default;

void Sha256::update(ByteSpan data) {
  CML_CHECK(EVP_DigestUpdate(impl_->ctx, data.data(), data.size()) == 1);
}

Digest256 Sha256::finish() {
  Digest256 d{};
  unsigned int len = 0;
  CML_CHECK(EVP_DigestFinal_ex(impl_->ctx, d.data(), &len) == 1);
  return d;
}

}  // namespace cml::crypto
