// SecretBytes: a byte buffer that wipes itself (OPENSSL_cleanse) on destruction, move-assignment and wipe();
// a moved-from object is empty.
// Use it for every key, shared secret and seed. Copying is explicit (clone()).
// Thread safety: a value; one thread per object.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "base/bytes.h"

namespace cml::crypto {

class SecretBytes {
 public:
  SecretBytes() = default;
  explicit SecretBytes(size_t n);
  explicit SecretBytes(ByteSpan data);
  ~SecretBytes();
  SecretBytes(SecretBytes&& other) noexcept;
  SecretBytes& operator=(SecretBytes&& other) noexcept;
  SecretBytes(const SecretBytes&) = delete;
  SecretBytes& operator=(const SecretBytes&) = delete;

  SecretBytes clone() const { return SecretBytes(span()); }
  uint8_t* data() { return data_; }
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  ByteSpan span() const { return {data_, size_}; }
  MutableByteSpan mutable_span() { return {data_, size_}; }
  void wipe();  // zero and release

 private:
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// Wipes any buffer (OPENSSL_cleanse: not optimised away).
void secure_wipe(MutableByteSpan buf);

}  // namespace cml::crypto
