#include "crypto/aead.h"

#include <openssl/evp.h>

#include <climits>
#include <cstring>

#include "crypto/openssl_error.h"

namespace cml::crypto {

std::string_view aead_suite_name(AeadSuite s) {
  switch (s) {
    case AeadSuite::kChaCha20Poly1305:
      return "chacha20-poly1305";
    case AeadSuite::kAes256Gcm:
      return "aes-256-gcm";
  }
  return "unknown";
}

Result<AeadSuite> parse_aead_suite(std::string_view name) {
  if (name == "chacha20-poly1305" || name == "chacha") return AeadSuite::kChaCha20Poly1305;
  if (name == "aes-256-gcm" || name == "aes") return AeadSuite::kAes256Gcm;
  return invalid_argument("unknown AEAD suite '" + std::string(name) + "' (chacha20-poly1305, aes-256-gcm)");
}

// Two contexts (seal, open) keyed once; each record only sets the nonce.
struct Aead::Impl {
  const EVP_CIPHER* cipher = nullptr;
  bool chacha = false;
  SecretBytes key;
  EVP_CIPHER_CTX* enc = nullptr;
  EVP_CIPHER_CTX* dec = nullptr;
  size_t enc_iv_len = 0, dec_iv_len = 0;  // 0: the context is not keyed
  ~Impl() {
    EVP_CIPHER_CTX_free(enc);
    EVP_CIPHER_CTX_free(dec);
  }

  Status check_nonce(ByteSpan nonce) const {
    const bool ok = chacha ? nonce.size() == kAeadNonceSize : !nonce.empty() && nonce.size() <= kAeadMaxGcmNonceSize;
    if (ok) return ok_status();
    return invalid_argument(
        std::string(chacha ? "ChaCha20-Poly1305 nonce must be 12 bytes" : "AES-GCM nonce must be 1..128 bytes") +
        ", got " + std::to_string(nonce.size()));
  }

  // Prepares ctx for one record with this nonce; keys it on first use or when the nonce length changes.
  Status prepare(EVP_CIPHER_CTX*& ctx, size_t& iv_len, bool encrypt, ByteSpan nonce) {
    CML_RETURN_IF_ERROR(check_nonce(nonce));
    auto init = encrypt ? EVP_EncryptInit_ex : EVP_DecryptInit_ex;
    if (ctx && iv_len == nonce.size()) {
      if (init(ctx, nullptr, nullptr, nullptr, nonce.data()) == 1) return ok_status();
      iv_len = 0;
      return internal::openssl_failure(crypto_error("AEAD nonce setup failed"));
    }
    iv_len = 0;  // until keyed again below
    if (!ctx) ctx = EVP_CIPHER_CTX_new();
    if (!ctx) return internal_error("EVP_CIPHER_CTX_new failed");
    if (init(ctx, cipher, nullptr, nullptr, nullptr) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_IVLEN, static_cast<int>(nonce.size()), nullptr) != 1 ||
        init(ctx, nullptr, nullptr, key.data(), nonce.data()) != 1) {
      return internal::openssl_failure(
          crypto_error("AEAD key/nonce setup failed for a " + std::to_string(nonce.size()) + "-byte nonce"));
    }
    iv_len = nonce.size();
    return ok_status();
  }
};

Aead::Aead(AeadSuite suite, std::unique_ptr<Impl> impl) : suite_(suite), impl_(std::move(impl)) {}
Aead::~Aead() = default;
Aead::Aead(Aead&&) noexcept = default;
Aead& Aead::operator=(Aead&&) noexcept = default;

Result<Aead> Aead::create(AeadSuite suite, ByteSpan key) {
  if (key.size() != kAeadKeySize)
    return invalid_argument("AEAD key must be 32 bytes, got " + std::to_string(key.size()));
  auto impl = std::make_unique<Impl>();
  switch (suite) {
    case AeadSuite::kChaCha20Poly1305:
      impl->cipher = EVP_chacha20_poly1305();
      impl->chacha = true;
      break;
    case AeadSuite::kAes256Gcm:
      impl->cipher = EVP_aes_256_gcm();
      break;
    default:
      return invalid_argument("unknown AEAD suite");
  }
  impl->key = SecretBytes(key);
  return Aead(suite, std::move(impl));
}

Result<Aead> detail::aes_gcm_any_key_size(ByteSpan key) {
  auto impl = std::make_unique<Aead::Impl>();
  switch (key.size()) {
    case 16:
      impl->cipher = EVP_aes_128_gcm();
      break;
    case 24:
      impl->cipher = EVP_aes_192_gcm();
      break;
    case 32:
      impl->cipher = EVP_aes_256_gcm();
      break;
    default:
      return invalid_argument("AES-GCM key must be 16, 24 or 32 bytes, got " + std::to_string(key.size()));
  }
  impl->key = SecretBytes(key);
  return Aead(AeadSuite::kAes256Gcm, std::move(impl));
}

namespace {
bool fits_int(size_t n) {
  return n <= static_cast<size_t>(INT_MAX);
}

Status evp_failure(std::string msg) {
  return internal::openssl_failure(crypto_error(std::move(msg)));
}
Status evp_failure_wiping(MutableByteSpan out, std::string msg) {
  secure_wipe(out);
  return evp_failure(std::move(msg));
}
}  // namespace

Status Aead::seal_detached(ByteSpan nonce, ByteSpan aad, ByteSpan plaintext, MutableByteSpan ciphertext,
                           MutableByteSpan tag) {
  if (ciphertext.size() != plaintext.size() || tag.size() != kAeadTagSize || !fits_int(plaintext.size()) ||
      !fits_int(aad.size()))
    return invalid_argument("AEAD seal: bad buffer sizes");
  CML_RETURN_IF_ERROR(impl_->prepare(impl_->enc, impl_->enc_iv_len, true, nonce));
  EVP_CIPHER_CTX* ctx = impl_->enc;
  int len = 0;
  if (!aad.empty() && EVP_EncryptUpdate(ctx, nullptr, &len, aad.data(), static_cast<int>(aad.size())) != 1)
    return evp_failure("AEAD seal: AAD failed");
  if (!plaintext.empty() &&
      EVP_EncryptUpdate(ctx, ciphertext.data(), &len, plaintext.data(), static_cast<int>(plaintext.size())) != 1)
    return evp_failure("AEAD seal failed");
  if (EVP_EncryptFinal_ex(ctx, ciphertext.data() + plaintext.size(), &len) != 1)
    return evp_failure("AEAD seal final failed");
  if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, kAeadTagSize, tag.data()) != 1)
    return evp_failure("AEAD seal: tag failed");
  return ok_status();
}

Status Aead::open_detached(ByteSpan nonce, ByteSpan aad, ByteSpan ciphertext, ByteSpan tag, MutableByteSpan plaintext) {
  if (plaintext.size() != ciphertext.size() || !fits_int(ciphertext.size()) || !fits_int(aad.size()))
    return invalid_argument("AEAD open: bad buffer sizes");
  CML_RETURN_IF_ERROR(impl_->check_nonce(nonce));  // an argument error before any authentication verdict
  if (tag.size() != kAeadTagSize) return crypto_error("AEAD open: tag must be 16 bytes");
  CML_RETURN_IF_ERROR(impl_->prepare(impl_->dec, impl_->dec_iv_len, false, nonce));
  EVP_CIPHER_CTX* ctx = impl_->dec;
  int len = 0;
  if (!aad.empty() && EVP_DecryptUpdate(ctx, nullptr, &len, aad.data(), static_cast<int>(aad.size())) != 1)
    return evp_failure("AEAD open: AAD failed");
  if (!ciphertext.empty() &&
      EVP_DecryptUpdate(ctx, plaintext.data(), &len, ciphertext.data(), static_cast<int>(ciphertext.size())) != 1)
    return evp_failure_wiping(plaintext, "AEAD open failed");
  if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, kAeadTagSize, const_cast<uint8_t*>(tag.data())) != 1)
    return evp_failure_wiping(plaintext, "AEAD open: tag setup failed");
  if (EVP_DecryptFinal_ex(ctx, plaintext.data() + ciphertext.size(), &len) != 1)
    return evp_failure_wiping(plaintext, "AEAD authentication failed (tag mismatch)");
  return ok_status();
}

Status Aead::seal(ByteSpan nonce, ByteSpan aad, ByteSpan plaintext, MutableByteSpan out) {
  if (nonce.size() != kAeadNonceSize) return invalid_argument("AEAD seal: nonce must be 12 bytes");
  if (out.size() != plaintext.size() + kAeadTagSize)
    return invalid_argument("AEAD seal: output must be plaintext + 16");
  return seal_detached(nonce, aad, plaintext, out.first(plaintext.size()), out.subspan(plaintext.size()));
}

Status Aead::open(ByteSpan nonce, ByteSpan aad, ByteSpan in, MutableByteSpan out) {
  if (nonce.size() != kAeadNonceSize) return invalid_argument("AEAD open: nonce must be 12 bytes");
  if (in.size() < kAeadTagSize) return crypto_error("AEAD open: record shorter than its tag");
  size_t n = in.size() - kAeadTagSize;
  if (out.size() != n) return invalid_argument("AEAD open: output must be input - 16");
  return open_detached(nonce, aad, in.first(n), in.subspan(n), out);
}

}  // namespace cml::crypto
