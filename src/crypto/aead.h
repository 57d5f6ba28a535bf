// AEAD: ChaCha20-Poly1305 (RFC 8439) and AES-256-GCM, 32-byte keys, 12-byte nonces, 16-byte tags.
//
// An Aead object holds one key and a reusable OpenSSL cipher context, so sealing a record costs no
// allocation. seal/open work in place or out of place (out may alias in exactly).
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
  // Decrypts ciphertext‖tag (in.size() >= 16) into out (out.size() == in.size() - 16). CRYPTO on a bad tag;
  // out is wiped then.
  Status open(ByteSpan nonce, ByteSpan aad, ByteSpan ciphertext_and_tag, MutableByteSpan out);

  // Variants with a detached tag and any nonce length the suite accepts (for Wycheproof vectors).
  Status seal_detached(ByteSpan nonce, ByteSpan aad, ByteSpan plaintext, MutableByteSpan ciphertext,
                       MutableByteSpan tag);
  Status open_detached(ByteSpan nonce, ByteSpan aad, ByteSpan ciphertext, ByteSpan tag, MutableByteSpan plaintext);

 private:
  struct Impl;
  Aead(AeadSuite suite, std::unique_ptr<Impl> impl);
  AeadSuite suite_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cml::crypto
