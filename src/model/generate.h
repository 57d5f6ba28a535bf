// Text generation loop over a whole-model Executor: prefill the prompt, then sample one token at a time,
// feeding each back, as llama2.c's run.c does (generation stops early at BOS or EOS when asked to).
//
// Thread safety: one call at a time per executor.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "model/executor.h"
#include "model/sampler.h"

namespace cml::model {

struct GenerateOptions {
  int64_t max_new_tokens = 256;
  SamplerOptions sampler;
  // Stop before emitting any of these ids (e.g. BOS and EOS); empty: never stop early.
  std::vector<int32_t> stop_ids;
  SeqId seq = 0;  // sequence id used inside the executor (started and dropped by generate())
};

// Calls on_token(id) for each generated token as soon as it is sampled; a false return stops generation.
// Returns the generated ids (prompt excluded). The executor must run the whole model (first and last
// range). The prompt must not be empty.
Result<std::vector<int32_t>> generate(Executor& executor, std::span<const int32_t> prompt,
                                      const GenerateOptions& options,
                                      const std::function<bool(int32_t)>& on_token = nullptr);

}  // namespace cml::model
