// SHA-256 / SHA-384 (one-shot and incremental) and HMAC-SHA256, through OpenSSL EVP.
// Thread safety: one-shot functions are thread-safe; a Sha256/Sha384 object belongs to one thread.
#pragma once

#include <array>
#include <memory>

#include "base/bytes.h"

namespace cml::crypto {

using Digest256 = std::array<uint8_t, 32>;
using Digest384 = std::array<uint8_t, 48>;

Digest256 sha256(ByteSpan data);
Digest384 sha384(ByteSpan data);
Digest256 hmac_sha256(ByteSpan key, ByteSpan data);

// HMAC-SHA256 under one key for several messages: the key is processed once (HKDF-Expand computes
// every block under the same PRK). finish() returns the tag and starts the next message under the same
// key. The destructor wipes the key state. Belongs to one thread.
class HmacSha256 {
 public:
  explicit HmacSha256(ByteSpan key);
  ~HmacSha256();
  HmacSha256(const HmacSha256&) = delete;
  HmacSha256& operator=(const HmacSha256&) = delete;
  HmacSha256(HmacSha256&&) noexcept;
  HmacSha256& operator=(HmacSha256&&) noexcept;
  HmacSha256& update(ByteSpan data);
  Digest256 finish();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

enum class HashAlg { kSha256, kSha384, kSha512 };
// Digest of `data` with `alg` (32, 48 or 64 bytes).
Bytes hash(HashAlg alg, ByteSpan data);

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(Sha256&&) noexcept;
  Sha256& operator=(Sha256&&) noexcept;
  void update(ByteSpan data);
  Digest256 finish();  // the object may not be updated afterwards

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cml::crypto
