// Executor: runs a layer range [begin, end) of a model file for any number of sequences, the unit of
// work of a pipeline stage.
//
//   * The first range (begin == 0) takes token ids and embeds them; later ranges take hidden states
//     [n_tokens, dim] f32 from the previous range.
//   * Middle ranges return hidden states; the last range (end == n_layers) applies the final norm and the
//     output head and returns logits [rows, vocab].
//   * Only the tensors of the range are touched (the file stays memory-mapped; pages of other layers are
//     never read), and only the range's layers have a KV cache.
//   * Sequences are started, fed and dropped by id. One forward() call may carry several sequences; their
//     tokens go through every weight product together (rows = Σ tokens), so weights are streamed once
//     per step however many sequences are in flight. A sequence's numbers do not depend on the other
//     sequences in its batch as long as the batch has at most tensor::kGemvMaxRows rows (decode).
//   * A failed step leaves every sequence's committed length unchanged.
//
// Splitting a model into ranges and handing hidden states across gives bit-identical logits to running
// it whole (same kernels, same order).
//
// Thread safety: one thread at a time per Executor (calls are serialised by an internal mutex).
#pragma once

#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "model/config.h"
#include "model/kv_cache.h"
#include "model/linear_backend.h"
#include "model/transformer.h"
#include "model/weights.h"
#include "tensor/thread_pool.h"

namespace cml::model {

struct ExecutorOptions {
  int threads = 1;             // compute threads (pool shared by kernels and the BLAS backend)
  int64_t max_sequences = 64;  // sequences in flight at once
  int64_t max_context = 0;     // 0: the model's context length; otherwise the smaller of the two
  // Caches of dropped sequences kept (wiped) for the next ones: −1 as many as were in flight at once,
  // 0 none (every sequence maps fresh memory), n at most n.
  int64_t kv_reuse = -1;
  // Backend for the weight products; null: a BlasLinearBackend owned by the executor. An external backend
  // must outlive the executor and must not have been finalized.
  LinearBackend* backend = nullptr;
  ConfigOverrides overrides;
  // Keep a transposed copy of the output head (vocab × dim more weight memory; GPT-2 124M F32: 154 MB) so
  // that decode steps of several sequences run the head in the multi-row kernel's fast layout (see
  // Transformer::head_part). Only with the executor's own (local) backend; an external backend such as
  // GroupCover sees the file's layout (and a TEE should not hold a second copy). A trade-off, so off by
  // default: batches of 4–8 sequences get faster, a single sequence's step slower (the transposed layout
  // reads y many times per step). `cml stage --batch-head` turns it on. The head's sums are then taken in
  // another order, so logits differ in the last bits from an executor without it.
  bool transpose_head = false;
};

// One sequence's part of a forward step.
struct StepInput {
  SeqId seq = 0;
  // Position of the first token; must equal the sequence's current length (a smaller value rewinds the
  // sequence to that length first, discarding the later positions).
  int64_t start_pos = 0;
  std::span<const int32_t> tokens;  // first range: the token ids
  std::span<const float> hidden;    // other ranges: n_tokens * dim floats
  int64_t n_tokens = 0;             // for hidden input (tokens.size() for token input)
  bool last_only = false;           // last range: logits of the final token only
};

class Executor {
 public:
  // `file` must outlive the executor.
  static Result<std::unique_ptr<Executor>> create(std::shared_ptr<const WeightFile> file, LayerRange range,
                                                  const ExecutorOptions& options);
  // Opens a weight file by path (GGUF, safetensors, llama2.c) and creates the executor. For safetensors,
  // a Hugging Face config.json in the same directory supplies what the file lacks (head count, epsilon)
  // unless `options.overrides` already does.
  static Result<std::unique_ptr<Executor>> open(const std::string& path, LayerRange range,
                                                const ExecutorOptions& options);
  ~Executor();

  const ModelConfig& config() const { return model_->config(); }
  const WeightFile& file() const { return *file_; }
  LayerRange range() const { return model_->range(); }
  bool takes_tokens() const { return model_->has_embedding(); }
  bool returns_logits() const { return model_->has_head(); }
  // Width of one output row: vocab (last range) or dim.
  int64_t output_width() const;
  int64_t max_context() const { return max_context_; }
  LinearBackend& backend() { return *backend_; }
  const std::vector<std::string>& used_tensors() const { return model_->used_tensors(); }

  Status start_sequence(SeqId seq);
  // Forgets a sequence and wipes its cache (kept for reuse, see ExecutorOptions::kv_reuse); NOT_FOUND if
  // unknown.
  Status drop_sequence(SeqId seq);
  // Current length (tokens in the cache), or NOT_FOUND.
  Result<int64_t> sequence_length(SeqId seq);

  // Runs one step for the given sequences. `out` receives, in input order, for each step its rows
  // (all its tokens, or the last one when last_only) of output_width() floats.
  Status forward(std::span<const StepInput> steps, std::vector<float>& out);
  // One sequence, token input (first range).
  Status forward(SeqId seq, int64_t start_pos, std::span<const int32_t> tokens, std::vector<float>& out,
                 bool last_only = false);
  // One sequence, hidden-state input (later ranges).
  Status forward_hidden(SeqId seq, int64_t start_pos, std::span<const float> hidden, std::vector<float>& out,
                        bool last_only = false);

 private:
  Executor() = default;

  std::shared_ptr<const WeightFile> file_;
  std::shared_ptr<tensor::ThreadPool> pool_;
  std::unique_ptr<LinearBackend> owned_backend_;
  LinearBackend* backend_ = nullptr;
  std::unique_ptr<Transformer> model_;
  std::unique_ptr<KvCache> cache_;
  int64_t max_context_ = 0;
  std::mutex mu_;
  std::vector<float> h_, rows_buf_;
  std::vector<int32_t> tokens_;
  std::vector<SeqSlice> slices_;
};

}  // namespace cml::model
