// StageExecutor: the computation of one stage — a contiguous layer range of a model — as the pipeline
// runtime sees it. The model runtime's layer-range executor is adapted to it (model_executor.h); tests
// and benchmarks use FakeModelExecutor / IdentityExecutor (fake_executor.h).
//
// A step is a batch of sequences (StepHeader: per sequence its id, first position and token count). The
// first stage receives token ids, the others hidden states [T, hidden]; every stage but the last
// produces hidden states [T, hidden], the last produces logits for the last token of every sequence
// [n_seqs, vocab]. Rows are in the header's order, sequence by sequence.
//
// Thread safety: the runtime serialises every call on one executor (one mutex).
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "base/status.h"
#include "model/sampler.h"
#include "pipeline/protocol.h"

namespace cml::pipeline {

struct StepInput {
  std::span<const uint32_t> tokens;  // first stage
  std::span<const float> hidden;     // other stages: T × hidden_size
};

struct StepOutput {
  std::vector<float> data;  // T × hidden_size, or n_seqs × vocab_size on the last stage (reused)
  uint32_t width = 0;       // hidden_size or vocab_size
};

class StageExecutor {
 public:
  virtual ~StageExecutor() = default;
  // SHA-256 (lower-case hex) of every tensor the executor loaded, by name — compared with the manifest
  // before the stage reports Ready.
  virtual std::map<std::string, std::string> weight_digests() const = 0;
  virtual bool is_first() const = 0;
  virtual bool is_last() const = 0;
  virtual uint32_t hidden_size() const = 0;
  virtual uint32_t vocab_size() const = 0;
  // Allocates the sequence's KV cache (an existing sequence with that id is reset).
  virtual Status start_sequence(uint64_t seq) = 0;
  virtual void drop_sequence(uint64_t seq) = 0;
  virtual size_t live_sequences() const = 0;
  // Runs the stage's layers on a step. An error leaves the KV caches as they were before the step.
  virtual Status forward(const StepHeader& step, const StepInput& in, StepOutput& out) = 0;
};

// The model runtime's sampler for a sequence's sampling settings.
Result<model::Sampler> make_sampler(const Sampling& s);

}  // namespace cml::pipeline
