#include "crypto/secret.h"

#include <openssl/crypto.h>

#include <cstring>
#include <new>

namespace cml::crypto {

void secure_wipe(MutableByteSpan buf) {
  if (!buf.empty()) OPENSSL_cleanse(buf.data(), buf.size());
}

SecretBytes::SecretBytes(size_t n) : data_(n ? new uint8_t[n]() : nullptr), size_(n) {}

SecretBytes::SecretBytes(ByteSpan d) : SecretBytes(d.size()) {
  if (!d.empty()) std::memcpy(data_, d.data(), d.size());
}

SecretBytes::~SecretBytes() { wipe(); }

SecretBytes::SecretBytes(SecretBytes&& o) noexcept : data_(o.data_), size_(o.size_) {
  o.data_ = nullptr;
  o.size_ = 0;
}

SecretBytes& SecretBytes::operator=(SecretBytes&& o) noexcept {
  if (this != &o) {
    wipe();
    data_ = o.data_;
    size_ = o.size_;
    o.data_ = nullptr;
    o.size_ = 0;
  }
  return *this;
}

void SecretBytes::wipe() {
  if (data_) {
    OPENSSL_cleanse(data_, size_);
    delete[] data_;
  }
  data_ = nullptr;
  size_ = 0;
}

}  // namespace cml::crypto
