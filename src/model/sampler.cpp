#include "model/sampler.h"

#include <algorithm>
#include <cmath>

namespace cml::model {

int32_t argmax(std::span<const float> v) {
  int32_t best = 0;
  for (size_t i = 1; i < v.size(); ++i) {
    if (v[i] > v[static_cast<size_t>(best)]) best = static_cast<int32_t>(i);
  }
  return best;
}

Result<Sampler> Sampler::create(const SamplerOptions& o) {
  if (!(o.temperature >= 0.0f) || !std::isfinite(o.temperature)) return invalid_argument("temperature must be >= 0");
  if (o.top_k < 0) return invalid_argument("top-k must be >= 0");
  if (!(o.top_p > 0.0f && o.top_p <= 1.0f)) return invalid_argument("top-p must be in (0, 1]");
  return Sampler(o);
}

float Sampler::next_uniform() {
  // SplitMix64
  uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  return static_cast<float>(z >> 40) * (1.0f / 16777216.0f);  // 24 random bits
}

int32_t Sampler::sample(std::span<const float> logits) {
  if (logits.empty()) return -1;
  if (opt_.temperature == 0.0f) return argmax(logits);
  cand_.clear();
  cand_.reserve(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) cand_.emplace_back(logits[i], static_cast<int32_t>(i));
  auto by_value = [](const auto& a, const auto& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  };
  size_t keep = cand_.size();
  if (opt_.top_k > 0 && static_cast<size_t>(opt_.top_k) < keep) {
    keep = static_cast<size_t>(opt_.top_k);
    std::partial_sort(cand_.begin(), cand_.begin() + static_cast<std::ptrdiff_t>(keep), cand_.end(), by_value);
  } else {
    std::sort(cand_.begin(), cand_.end(), by_value);
  }
  cand_.resize(keep);
  // Softmax with temperature over the kept candidates (sorted, largest first).
  const float mx = cand_[0].first;
  double sum = 0.0;
  for (auto& c : cand_) {
    c.first = std::exp((c.first - mx) / opt_.temperature);
    sum += c.first;
  }
  for (auto& c : cand_) c.first = static_cast<float>(c.first / sum);
  if (opt_.top_p < 1.0f) {
    double cum = 0.0;
    size_t n = 0;
    while (n < cand_.size()) {
      cum += cand_[n].first;
      ++n;
      if (cum >= opt_.top_p) break;
    }
    cand_.resize(n);
    for (auto& c : cand_) c.first = static_cast<float>(c.first / cum);
  }
  const float r = next_uniform();
  float acc = 0.0f;
  for (const auto& c : cand_) {
    acc += c.first;
    if (r < acc) return c.second;
  }
  return cand_.back().second;
}

}  // namespace cml::model
