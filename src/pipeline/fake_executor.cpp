#include "pipeline/fake_executor.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "crypto/hash.h"

namespace cml::pipeline {

namespace {

std::string digest_of(const std::vector<float>& v) {
  return to_hex(crypto::sha256(ByteSpan(reinterpret_cast<const uint8_t*>(v.data()), v.size() * sizeof(float))));
}

std::vector<float> random_values(uint64_t seed, size_t n, float scale) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> d(-scale, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

std::string layer_name(uint32_t l) {
  return "layers." + std::to_string(l) + ".gain";
}

}  // namespace

std::map<std::string, std::vector<float>> fake_model_tensors(const FakeModelConfig& c) {
  std::map<std::string, std::vector<float>> t;
  t["embed"] = random_values(c.seed * 1000 + 1, size_t(c.vocab) * c.hidden, 1.0f);
  t["head"] = random_values(c.seed * 1000 + 2, size_t(c.vocab) * c.hidden, 1.0f);
  for (uint32_t l = 0; l < c.layers; ++l) t[layer_name(l)] = random_values(c.seed * 1000 + 10 + l, c.hidden, 1.5f);
  return t;
}

std::vector<std::string> fake_stage_tensor_names(const FakeModelConfig& c, uint32_t begin, uint32_t end) {
  std::vector<std::string> n;
  if (begin == 0) n.push_back("embed");
  for (uint32_t l = begin; l < end; ++l) n.push_back(layer_name(l));
  if (end == c.layers) n.push_back("head");
  return n;
}

Manifest fake_model_manifest(const FakeModelConfig& c, uint32_t stages,
                             const std::vector<std::pair<std::string, std::string>>& endpoints) {
  auto all = fake_model_tensors(c);
  Manifest m;
  m.model = {"fake", "(generated)", std::string(64, '0'), "fake", c.layers, c.vocab};
  m.activation = {"f32", c.hidden, 4096};
  auto ranges = balance_layers(c.layers, stages).value();
  for (uint32_t i = 0; i < stages; ++i) {
    StageSpec s;
    s.index = i;
    s.layer_begin = ranges[i].first;
    s.layer_end = ranges[i].second;
    for (const auto& n : fake_stage_tensor_names(c, s.layer_begin, s.layer_end)) s.weights[n] = digest_of(all[n]);
    s.attestation.type = attest::EvidenceType::kMock;
    s.control = parse_endpoint(endpoints.at(i).first).value();
    s.data = parse_endpoint(endpoints.at(i).second).value();
    m.stages.push_back(std::move(s));
  }
  return m;
}

FakeModelExecutor::FakeModelExecutor(const FakeModelConfig& c, uint32_t begin, uint32_t end)
    : c_(c), begin_(begin), end_(end) {
  auto all = fake_model_tensors(c);
  for (const auto& n : fake_stage_tensor_names(c, begin, end)) w_[n] = all[n];
}

void FakeModelExecutor::corrupt_tensor(const std::string& name) {
  auto it = w_.find(name);
  CML_CHECK(it != w_.end());
  it->second[0] += 1.0f;
}

std::map<std::string, std::string> FakeModelExecutor::weight_digests() const {
  std::map<std::string, std::string> d;
  for (const auto& [n, v] : w_) d[n] = digest_of(v);
  return d;
}

Status FakeModelExecutor::start_sequence(uint64_t seq) {
  state_[seq].assign(end_ - begin_, std::vector<float>(c_.hidden, 0.0f));
  return ok_status();
}

Status FakeModelExecutor::forward(const StepHeader& step, const StepInput& in, StepOutput& out) {
  const uint32_t H = c_.hidden;
  const uint64_t T = step.total_tokens();
  if (fail_ && fail_(step))
    return internal_error("fake executor: injected failure at step " + std::to_string(step.step));
  for (const auto& s : step.seqs) {
    if (!state_.count(s.seq)) return invalid_argument("sequence " + std::to_string(s.seq) + " was not started");
  }
  std::vector<float> h(T * H);
  if (is_first()) {
    if (in.tokens.size() != T) return invalid_argument("fake executor: expected " + std::to_string(T) + " tokens");
    const auto& e = w_.at("embed");
    for (uint64_t t = 0; t < T; ++t) {
      if (in.tokens[t] >= c_.vocab) return invalid_argument("fake executor: token id out of range");
      std::copy_n(e.begin() + size_t(in.tokens[t]) * H, H, h.begin() + t * H);
    }
  } else {
    if (in.hidden.size() != T * H) return invalid_argument("fake executor: hidden size mismatch");
    std::copy(in.hidden.begin(), in.hidden.end(), h.begin());
  }
  // Work on copies of the states so a failure leaves them untouched.
  std::map<uint64_t, std::vector<std::vector<float>>> next;
  uint64_t row = 0;
  for (const auto& s : step.seqs) {
    auto st = state_.at(s.seq);
    for (uint32_t k = 0; k < s.len; ++k, ++row) {
      float* x = &h[row * H];
      const float pos = float(s.pos + k);
      for (uint32_t l = begin_; l < end_; ++l) {
        auto& acc = st[l - begin_];
        const auto& g = w_.at(layer_name(l));
        for (uint32_t i = 0; i < H; ++i) {
          acc[i] += x[i];
          x[i] = std::tanh(x[i] * g[i] + 0.5f * acc[i] / (pos + 1.0f) + 0.01f * pos);
        }
      }
    }
    next[s.seq] = std::move(st);
  }
  for (auto& [seq, st] : next) state_[seq] = std::move(st);
  if (!is_last()) {
    out.width = H;
    out.data = std::move(h);
    return ok_status();
  }
  const auto& head = w_.at("head");
  out.width = c_.vocab;
  out.data.assign(step.seqs.size() * size_t(c_.vocab), 0.0f);
  row = 0;
  for (size_t i = 0; i < step.seqs.size(); ++i) {
    row += step.seqs[i].len;
    const float* x = &h[(row - 1) * H];
    for (uint32_t v = 0; v < c_.vocab; ++v) {
      float acc = 0;
      for (uint32_t j = 0; j < H; ++j) acc += head[size_t(v) * H + j] * x[j];
      out.data[i * c_.vocab + v] = acc;
    }
  }
  return ok_status();
}

std::map<std::string, std::string> IdentityExecutor::weight_digests() const {
  return {{"identity", std::string(64, '0')}};
}

Status IdentityExecutor::start_sequence(uint64_t seq) {
  seqs_[seq] = true;
  return ok_status();
}

Status IdentityExecutor::forward(const StepHeader& step, const StepInput& in, StepOutput& out) {
  out.width = hidden_;
  if (!in.hidden.empty()) {
    out.data.assign(in.hidden.begin(), in.hidden.end());
  } else {
    out.data.assign(in.tokens.size() * size_t(hidden_), 0.0f);
    for (size_t t = 0; t < in.tokens.size(); ++t) out.data[t * hidden_] = float(in.tokens[t]);
  }
  if (out.data.size() != step.total_tokens() * hidden_) return invalid_argument("identity: size mismatch");
  return ok_status();
}

Result<model::Sampler> make_sampler(const Sampling& s) {
  model::SamplerOptions o;
  o.temperature = s.temperature;
  o.top_k = static_cast<int>(s.top_k);
  o.top_p = s.top_p;
  o.seed = s.seed;
  return model::Sampler::create(o);
}

}  // namespace cml::pipeline
