// llama.c legacy checkpoints (Karpathy's llama2.c `run.c` format, version 0, no magic).
//
// Layout: a Config of 7 little-endian int32 (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size,
// seq_len), then f32 arrays: token embedding [vocab, dim]; attention RMSNorm weights [layers, dim];
// wq [layers, dim, dim]; wk, wv [layers, kv_dim, dim]; wo [layers, dim, dim]; FFN RMSNorm [layers, dim];
// w1 [layers, hidden, dim]; w2 [layers, dim, hidden]; w3 [layers, hidden, dim]; final RMSNorm [dim];
// two legacy RoPE tables [seq_len, head_size/2] (ignored); and, only when vocab_size is negative (untied
// classifier), the classifier [vocab, dim]. The file size must match the config exactly.
//
// The tensors are exposed under GGUF names with row-major [out, in] shapes, so that a Llama model reads
// either format the same way:
//   token_embd.weight [vocab, dim]             blk.N.attn_norm.weight [dim]
//   blk.N.attn_q.weight [dim, dim]             blk.N.attn_k.weight / attn_v.weight [kv_dim, dim]
//   blk.N.attn_output.weight [dim, dim]        blk.N.ffn_norm.weight [dim]
//   blk.N.ffn_gate.weight (w1) [hidden, dim]   blk.N.ffn_down.weight (w2) [dim, hidden]
//   blk.N.ffn_up.weight (w3) [hidden, dim]     output_norm.weight [dim]
//   output.weight [vocab, dim]                 only when the classifier is untied (as in GGUF files)
// and the config as GGUF metadata: general.architecture = "llama", llama.embedding_length,
// llama.feed_forward_length, llama.block_count, llama.attention.head_count, llama.attention.head_count_kv,
// llama.context_length, llama.vocab_size, llama.rope.dimension_count (head size),
// llama.attention.layer_norm_rms_epsilon = 1e-5 and llama.rope.freq_base = 10000 (run.c's constants),
// llama.tensor_data_layout = "Meta AI original pth" (Q/K rows are not permuted), and
// llama2c.shared_classifier (bool).
//
// Thread safety: the returned WeightFile is immutable; any thread may read it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "base/bytes.h"
#include "model/weights.h"

namespace cml::model {

struct Llama2cConfig {
  int32_t dim = 0;
  int32_t hidden_dim = 0;
  int32_t n_layers = 0;
  int32_t n_heads = 0;
  int32_t n_kv_heads = 0;
  int32_t vocab_size = 0;  // absolute value
  int32_t seq_len = 0;
  bool shared_classifier = true;
};

// Bounds on the config (each far above llama2.c models).
inline constexpr int32_t kLlama2cMaxDim = 1 << 16;
inline constexpr int32_t kLlama2cMaxLayers = 1024;
inline constexpr int32_t kLlama2cMaxVocab = 1 << 20;
inline constexpr int32_t kLlama2cMaxSeqLen = 1 << 20;

// Parses and validates the 28-byte config header and returns the exact file size it implies.
Result<Llama2cConfig> parse_llama2c_config(ByteSpan header);
Result<uint64_t> llama2c_expected_file_size(const Llama2cConfig& config);

Result<std::unique_ptr<WeightFile>> open_llama2c_checkpoint(const std::string& path);
// Parses a checkpoint already in memory. Nothing is copied: `data` must outlive the result.
Result<std::unique_ptr<WeightFile>> parse_llama2c_checkpoint(ByteSpan data);

}  // namespace cml::model
