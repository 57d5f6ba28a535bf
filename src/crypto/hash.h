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
