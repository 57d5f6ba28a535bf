#include "model/generate.h"

#include <algorithm>

namespace cml::model {

Result<std::vector<int32_t>> generate(Executor& ex, std::span<const int32_t> prompt, const GenerateOptions& o,
                                      const std::function<bool(int32_t)>& on_token) {
  if (!ex.takes_tokens() || !ex.returns_logits()) return invalid_argument("generate() needs the whole model");
  if (prompt.empty()) return invalid_argument("empty prompt (start with BOS)");
  if (static_cast<int64_t>(prompt.size()) > ex.max_context()) {
    return invalid_argument("prompt of " + std::to_string(prompt.size()) + " tokens exceeds the context length " +
                            std::to_string(ex.max_context()));
  }
  CML_ASSIGN_OR_RETURN(Sampler sampler, Sampler::create(o.sampler));
  CML_RETURN_IF_ERROR(ex.start_sequence(o.seq));
  struct Dropper {
    Executor& e;
    SeqId s;
    ~Dropper() { e.drop_sequence(s).ignore_error(); }
  } dropper{ex, o.seq};

  std::vector<int32_t> out;
  std::vector<float> logits;
  CML_RETURN_IF_ERROR(ex.forward(o.seq, 0, prompt, logits, /*last_only=*/true));
  int64_t pos = static_cast<int64_t>(prompt.size());
  for (int64_t i = 0; i < o.max_new_tokens; ++i) {
    const int32_t next = sampler.sample(logits);
    if (std::find(o.stop_ids.begin(), o.stop_ids.end(), next) != o.stop_ids.end()) break;
    out.push_back(next);
    if (on_token && !on_token(next)) break;
    if (i + 1 == o.max_new_tokens || pos >= ex.max_context()) break;
    const int32_t tok[1] = {next};
    CML_RETURN_IF_ERROR(ex.forward(o.seq, pos, tok, logits, true));
    ++pos;
  }
  return out;
}

}  // namespace cml::model
