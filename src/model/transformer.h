// Transformer: the layers [begin, end) of one decoder model, plus the token embedding when the range
// starts at layer 0 and the final norm + output head when it ends at the last layer. Implemented by
// Llama (llama.h) and GPT-2 (gpt2.h); driven by the Executor (executor.h), which owns the KV cache.
//
// Every product with a weight matrix goes through the LinearBackend given at construction. Only the
// tensors of the range are looked up and registered. All the rows of one call (the tokens of every
// sequence in the batch, in order) go through each linear op together.
//
// Thread safety: one call at a time (the executor serialises).
#pragma once

#include <memory>
#include <span>
#include <string>
#include <vector>

#include "model/config.h"
#include "model/kv_cache.h"
#include "model/linear_backend.h"
#include "model/weights.h"
#include "tensor/kernels.h"
#include "tensor/thread_pool.h"

namespace cml::model {

// Layers [begin, end) of a model; end = -1 means "to the last layer".
struct LayerRange {
  int64_t begin = 0;
  int64_t end = -1;
};

// The rows of one sequence within a batch: `n` consecutive rows at positions start_pos .. start_pos+n-1.
struct SeqSlice {
  KvSequence* kv = nullptr;
  int64_t start_pos = 0;
  int64_t n = 0;
};

class Transformer {
 public:
  virtual ~Transformer() = default;

  const ModelConfig& config() const { return config_; }
  LayerRange range() const { return range_; }
  bool has_embedding() const { return range_.begin == 0; }
  bool has_head() const { return range_.end == config_.n_layers; }
  // Names of the weight-file tensors this range uses.
  const std::vector<std::string>& used_tensors() const { return used_; }

  // First range only: hidden rows h[rows, dim] for the tokens (ids checked against the vocabulary).
  virtual Status embed(std::span<const int32_t> tokens, std::span<const SeqSlice> seqs, float* h) = 0;
  // Runs every block of the range over h[rows, dim] in place, appending keys/values to the sequences'
  // caches at their positions (their committed lengths are left to the caller).
  virtual Status blocks(std::span<const SeqSlice> seqs, float* h, int64_t rows) = 0;
  // Last range only: final norm of h (in place) and logits[rows, vocab].
  virtual Status head(float* h, int64_t rows, float* logits) = 0;

 protected:
  Transformer(const WeightFile& file, ModelConfig config, LayerRange range, LinearBackend& backend,
              std::shared_ptr<tensor::ThreadPool> pool, bool transpose_head);

  // Looks up a tensor with the given shape, records it as used.
  Result<const TensorRef*> tensor(const std::string& name, std::initializer_list<int64_t> shape);
  // A 1-D tensor converted to f32.
  Result<std::vector<float>> vector_f32(const std::string& name, int64_t n);
  // A weight matrix as a linear part. `shape` is the stored (row-major) shape.
  Result<LinearPart> part(const std::string& name, int64_t out, int64_t in, bool transposed,
                          const std::vector<float>* bias = nullptr);
  Result<LinearId> add_op(std::vector<LinearPart> parts);
  // The output head ([vocab, dim] in the file) as a linear part. With transpose_head_ the part is a private
  // copy in [dim, vocab] order (transposed = true): the multi-row decode kernel for that layout keeps a tile
  // of every row's outputs in registers, while the [vocab, dim] layout needs one reduction per output and
  // row (bench_model, GPT-2 124M: an 8-sequence step costs 1.7x a 1-sequence step with the copy, 2.1-2.5x
  // without it).
  Result<LinearPart> head_part(const std::string& name);

  // Embedding row `token` of `emb` ([vocab, dim], any float dtype) into `out`, scaled by nothing.
  void embedding_row(const TensorRef& emb, int32_t token, float* out) const;
  Status check_tokens(std::span<const int32_t> tokens) const;

  // Stores the K and V rows found in qkv (row stride qkv_stride, K at column k_off, V at v_off) into the
  // caches of layer `layer` (relative to the range) and runs causal attention into att[rows, dim].
  void attend(std::span<const SeqSlice> seqs, int64_t layer, float* qkv, int64_t qkv_stride, int64_t k_off,
              int64_t v_off, float* att);

  const WeightFile& file_;
  ModelConfig config_;
  LayerRange range_;
  LinearBackend& backend_;
  std::shared_ptr<tensor::ThreadPool> pool_;
  std::vector<std::string> used_;
  bool transpose_head_ = false;
  std::vector<uint8_t> head_t_;  // the transposed head copy (transpose_head_ only)
};

// transpose_head: keep a transposed copy of the output head (see head_part; costs vocab × dim weights).
Result<std::unique_ptr<Transformer>> make_llama(const WeightFile& file, const ModelConfig& config, LayerRange range,
                                                LinearBackend& backend, std::shared_ptr<tensor::ThreadPool> pool,
                                                bool transpose_head = false);
Result<std::unique_ptr<Transformer>> make_gpt2(const WeightFile& file, const ModelConfig& config, LayerRange range,
                                               LinearBackend& backend, std::shared_ptr<tensor::ThreadPool> pool,
                                               bool transpose_head = false);

}  // namespace cml::model
