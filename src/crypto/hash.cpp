#include "crypto/hash.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

namespace cml::crypto {

namespace {
const EVP_MD* md_for(HashAlg alg) {
  switch (alg) {
    case HashAlg::kSha256: return EVP_sha256();
    case HashAlg::kSha384: return EVP_sha384();
    case HashAlg::kSha512: return EVP_sha512();
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
  Digest256 d{};
  unsigned int len = 0;
  static const uint8_t kEmpty = 0;
  CML_CHECK(HMAC(EVP_sha256(), key.empty() ? &kEmpty : key.data(), static_cast<int>(key.size()), data.data(),
                 data.size(), d.data(), &len) != nullptr);
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

void Sha256::update(ByteSpan data) { CML_CHECK(EVP_DigestUpdate(impl_->ctx, data.data(), data.size()) == 1); }

Digest256 Sha256::finish() {
  Digest256 d{};
  unsigned int len = 0;
  CML_CHECK(EVP_DigestFinal_ex(impl_->ctx, d.data(), &len) == 1);
  return d;
}

}  // namespace cml::crypto
