// AEAD: ChaCha20-Poly1305 (RFC 8439) and AES-256-GCM, 32-byte keys, 12-byte nonces, 16-byte tags.
//
// An Aead object holds one key and a reusable OpenSSL cipher context, so sealing a record costs no
// allocation. seal/open work in place or out of place (out may alias in exactly).
// Nonce rules: seal/open take exactly 12 bytes. The detached variants take what the suite defines:
// ChaCha20-Poly1305 exactly 12 bytes (RFC 8439), AES-GCM 1..128 bytes (128 is OpenSSL 3's bound; the
// GCM standard allows longer). Any other length is INVALID_ARGUMENT and touches no output.
// Thread safety: one thread per object (the context is stateful); create one per direction.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>

#include "base/bytes.h"
#include "crypto/secret.h"

namespace cml::crypto {

enum class AeadSuite : uint8_t {
  kChaCha20Poly1305 = 1,
  kAes256Gcm = 2,
};
std::string_view aead_suite_name(AeadSuite s);  // "chacha20-poly1305", "aes-256-gcm"
Result<AeadSuite> parse_aead_suite(std::string_view name);

constexpr size_t kAeadKeySize = 32;
constexpr size_t kAeadNonceSize = 12;
constexpr size_t kAeadTagSize = 16;
constexpr size_t kAeadMaxGcmNonceSize = 128;

class Aead;
namespace detail {
// AES-GCM with a 16-, 24- or 32-byte key. Only for conformance tests (Wycheproof covers all three key
// sizes); the protocol uses Aead::create. suite() reports kAes256Gcm whatever the key size.
Result<Aead> aes_gcm_any_key_size(ByteSpan key);
}  // namespace detail

class Aead {
 public:
  // INVALID_ARGUMENT if the key is not 32 bytes.
  static Result<Aead> create(AeadSuite suite, ByteSpan key);
  ~Aead();
  Aead(Aead&&) noexcept;
  Aead& operator=(Aead&&) noexcept;

  AeadSuite suite() const { return suite_; }

  // Encrypts plaintext into out[0, n) and writes the tag to out[n, n+16); out.size() must be n + 16.
  Status seal(ByteSpan nonce, ByteSpan aad, ByteSpan plaintext, MutableByteSpan out);
  // Decrypts ciphertext‖tag (in.size() >= 16) into out (out.size() == in.size() - 16). CRYPTO on a bad tag
  // or a record shorter than the tag; out is wiped on a bad tag.
  Status open(ByteSpan nonce, ByteSpan aad, ByteSpan ciphertext_and_tag, MutableByteSpan out);

  // Variants with a detached tag and any nonce length the suite accepts (for Wycheproof vectors).
  Status seal_detached(ByteSpan nonce, ByteSpan aad, ByteSpan plaintext, MutableByteSpan ciphertext,
                       MutableByteSpan tag);
  Status open_detached(ByteSpan nonce, ByteSpan aad, ByteSpan ciphertext, ByteSpan tag, MutableByteSpan plaintext);

 private:
  friend Result<Aead> detail::aes_gcm_any_key_size(ByteSpan key);
  struct Impl;
  Aead(AeadSuite suite, std::unique_ptr<Impl> impl);
  AeadSuite suite_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cml::crypto
