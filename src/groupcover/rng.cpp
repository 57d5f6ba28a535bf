#include "groupcover/rng.h"

#include <cmath>
#include <cstring>
#include <numbers>

#include "crypto/random.h"
#include "crypto/secret.h"

namespace cml::groupcover {

SecureRng::~SecureRng() {
  crypto::secure_wipe({reinterpret_cast<uint8_t*>(buf_.data()), sizeof(buf_)});
}

void SecureRng::refill() {
  crypto::random_fill({reinterpret_cast<uint8_t*>(buf_.data()), sizeof(buf_)});
  pos_ = 0;
}

uint64_t SecureRng::next_u64() {
  if (pos_ == buf_.size()) refill();
  const uint64_t v = buf_[pos_];
  buf_[pos_++] = 0;
  return v;
}

uint64_t SecureRng::below(uint64_t n) {
  if (n <= 1) return 0;
  const uint64_t limit = UINT64_MAX - (UINT64_MAX % n);
  for (;;) {
    const uint64_t v = next_u64();
    if (v < limit) return v % n;
  }
}

double SecureRng::uniform() {
  return double(next_u64() >> 11) * 0x1.0p-53;
}

double SecureRng::normal() {
  double u1 = uniform();
  while (u1 <= 0.0) u1 = uniform();
  const double u2 = uniform();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
}

void SecureRng::fill_mask(std::span<float> out) {
  // The CSPRNG writes the masks' random words straight into `out` in one call (through the 4 KiB buffer
  // the per-call overhead of RAND_bytes, not its AES, dominated), and each word becomes its float in
  // place: the top 24 bits of the 32-bit word as a signed integer in [−2^23, 2^23), times 2^-23.
  crypto::random_fill({reinterpret_cast<uint8_t*>(out.data()), out.size_bytes()});
  for (float& f : out) {
    uint32_t w = 0;
    std::memcpy(&w, &f, sizeof w);
    const int32_t k = int32_t(w >> 8) - (1 << 23);
    f = float(k) * 0x1.0p-23f;
  }
}

}  // namespace cml::groupcover
