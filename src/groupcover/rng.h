// SecureRng: a buffered view of the OpenSSL CSPRNG (crypto::random_fill) for the many small draws of
// obfuscation and masking. Every value comes from the CSPRNG; nothing is seeded from a fixed value, so
// two runs (or two layers, or two models) never share randomness.
//
// Thread safety: one thread per object.
#pragma once

#include <array>
#include <cstdint>
#include <span>

namespace cml::groupcover {

class SecureRng {
 public:
  SecureRng() = default;
  ~SecureRng();
  SecureRng(const SecureRng&) = delete;
  SecureRng& operator=(const SecureRng&) = delete;

  uint64_t next_u64();
  // Uniform in [0, n) without modulo bias; n ≥ 1.
  uint64_t below(uint64_t n);
  // Uniform double in [0, 1) with 53 random bits.
  double uniform();
  // Standard normal (Box–Muller).
  double normal();
  // Fills `out` with floats uniform on the grid {k · 2^-23 : −2^23 ≤ k < 2^23}, i.e. in [−1, 1), each
  // with 24 significant bits so that scaling by a power of two is exact.
  void fill_mask(std::span<float> out);

 private:
  void refill();
  std::array<uint64_t, 512> buf_{};
  size_t pos_ = buf_.size();
};

}  // namespace cml::groupcover
