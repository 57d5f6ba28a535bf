// Executors without a model file, for tests and benchmarks.
//
// FakeModel is a tiny deterministic "transformer-like" model with named weight tensors: an embedding
// [vocab, hidden], one gain vector per layer, and an output head [vocab, hidden]. Every layer keeps a
// per-sequence running state (its "KV cache"), so results depend on the whole history of a sequence and
// a mixed-up cache shows up as different tokens. Batched steps compute each row exactly like a
// single-sequence step, so concurrent sequences must equal their single-sequence results bit for bit.
//
// IdentityExecutor passes hidden states through unchanged (the transport benchmark's executor).
//
// Thread safety: like StageExecutor (callers serialise).
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "pipeline/executor.h"
#include "pipeline/manifest.h"

namespace cml::pipeline {

struct FakeModelConfig {
  uint32_t vocab = 64;
  uint32_t hidden = 16;
  uint32_t layers = 6;
  uint64_t seed = 1;
};

// All tensors of the model, name → f32 values.
std::map<std::string, std::vector<float>> fake_model_tensors(const FakeModelConfig& c);
// Tensors a stage with layers [begin, end) loads.
std::vector<std::string> fake_stage_tensor_names(const FakeModelConfig& c, uint32_t begin, uint32_t end);
// A manifest for the fake model over `stages` stages with the given endpoints (control_i, data_i).
Manifest fake_model_manifest(const FakeModelConfig& c, uint32_t stages,
                             const std::vector<std::pair<std::string, std::string>>& endpoints);

class FakeModelExecutor final : public StageExecutor {
 public:
  FakeModelExecutor(const FakeModelConfig& c, uint32_t begin, uint32_t end);
  // Replaces one loaded tensor's values (a "wrong weights" stage).
  void corrupt_tensor(const std::string& name);
  // Makes forward fail while `fail` returns true for the step.
  void set_failure(std::function<bool(const StepHeader&)> fail) { fail_ = std::move(fail); }

  std::map<std::string, std::string> weight_digests() const override;
  bool is_first() const override { return begin_ == 0; }
  bool is_last() const override { return end_ == c_.layers; }
  uint32_t hidden_size() const override { return c_.hidden; }
  uint32_t vocab_size() const override { return c_.vocab; }
  Status start_sequence(uint64_t seq) override;
  void drop_sequence(uint64_t seq) override { state_.erase(seq); }
  size_t live_sequences() const override { return state_.size(); }
  Status forward(const StepHeader& step, const StepInput& in, StepOutput& out) override;

 private:
  FakeModelConfig c_;
  uint32_t begin_, end_;
  std::map<std::string, std::vector<float>> w_;
  std::map<uint64_t, std::vector<std::vector<float>>> state_;  // seq → per layer running state
  std::function<bool(const StepHeader&)> fail_;
};

class IdentityExecutor final : public StageExecutor {
 public:
  IdentityExecutor(uint32_t hidden, bool first, bool last) : hidden_(hidden), first_(first), last_(last) {}
  std::map<std::string, std::string> weight_digests() const override;
  bool is_first() const override { return first_; }
  bool is_last() const override { return last_; }
  uint32_t hidden_size() const override { return hidden_; }
  uint32_t vocab_size() const override { return hidden_; }
  Status start_sequence(uint64_t seq) override;
  void drop_sequence(uint64_t seq) override { seqs_.erase(seq); }
  size_t live_sequences() const override { return seqs_.size(); }
  Status forward(const StepHeader& step, const StepInput& in, StepOutput& out) override;

 private:
  uint32_t hidden_;
  bool first_, last_;
  std::map<uint64_t, bool> seqs_;
};

}  // namespace cml::pipeline
