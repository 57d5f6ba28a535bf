// Sampler: picks the next token from logits. Greedy (temperature 0: the first index of the maximum),
// or temperature-scaled softmax restricted to the top-k logits and then to the smallest set whose
// probability reaches top-p. Seedable: the same seed and logits give the same tokens on every platform
// (SplitMix64 generator, own float conversion; no std:: distributions).
//
// Thread safety: one thread per Sampler.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "base/status.h"

namespace cml::model {

struct SamplerOptions {
  float temperature = 0.0f;  // 0: greedy
  int top_k = 0;             // 0: no limit
  float top_p = 1.0f;        // 1: no limit
  uint64_t seed = 0;
};

class Sampler {
 public:
  // INVALID_ARGUMENT for negative temperature or top_k, or top_p outside (0, 1].
  static Result<Sampler> create(const SamplerOptions& options);
  int32_t sample(std::span<const float> logits);
  // Uniform in [0, 1).
  float next_uniform();

 private:
  explicit Sampler(const SamplerOptions& o) : opt_(o), state_(o.seed) {}
  SamplerOptions opt_;
  uint64_t state_;
  std::vector<std::pair<float, int32_t>> cand_;
};

// Index of the largest value (the first one on ties).
int32_t argmax(std::span<const float> values);

}  // namespace cml::model
