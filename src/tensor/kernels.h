// Element-wise and row-wise kernels of decoder transformers, on f32 activations stored row-major.
//
// Numerics follow the usual reference implementations (llama2.c for RMSNorm/RoPE/softmax, PyTorch for
// LayerNorm and the tanh-approximated GELU that GPT-2 uses): accumulate in f32 (LayerNorm statistics in
// double), subtract the row maximum before exp. Results of a row never depend on the other rows or on
// the thread count.
//
// Thread safety: pure functions over caller-owned buffers.
#pragma once

#include <cstdint>
#include <vector>

#include "tensor/thread_pool.h"

namespace cml::tensor {

// y[r] = x[r] / sqrt(mean(x[r]^2) + eps) * w, for `rows` rows of `dim` (y may alias x).
void rmsnorm(const float* x, const float* w, float* y, int64_t rows, int64_t dim, float eps);
// y[r] = (x[r] - mean) / sqrt(var + eps) * g + b (biased variance; y may alias x; b may be null).
void layernorm(const float* x, const float* g, const float* b, float* y, int64_t rows, int64_t dim, float eps);
// In-place softmax over n values.
void softmax(float* x, int64_t n);
// In-place GELU, tanh approximation: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), computed as the
// equal x / (1 + e^(-2 sqrt(2/pi) (x + 0.044715 x^3))) (vectorised exp, a few ulp).
void gelu_tanh(float* x, int64_t n);
// In-place SiLU: x * sigmoid(x).
void silu(float* x, int64_t n);
// gate[i] = silu(gate[i]) * up[i] (SwiGLU).
void swiglu(float* gate, const float* up, int64_t n);
// y[i] += x[i].
void add_inplace(float* y, const float* x, int64_t n);

// Rotary position embedding tables: cos/sin of pos * theta^(-2i/rot_dim) for i < rot_dim/2, computed in
// f32 the way llama2.c does, so that outputs match it bit for bit. Rows are computed on first use (the
// table grows with the positions actually reached, not with the context length a file claims).
enum class RopeStyle {
  kInterleaved,  // rotate pairs (x[2i], x[2i+1]): Meta / llama2.c / GGUF Llama layout
  kHalf,         // rotate (x[i], x[i + rot_dim/2]): Hugging Face / NeoX layout
};
class RopeTable {
 public:
  RopeTable() = default;
  RopeTable(int64_t rot_dim, float theta);
  int64_t rot_dim() const { return rot_dim_; }
  // Makes rows 0 .. positions-1 available (not thread-safe; call before concurrent apply()).
  void reserve(int64_t positions);
  // Rotates `n_heads` consecutive heads of `head_dim` values (the first rot_dim of each) at `pos`;
  // reserve(pos + 1) must have been called.
  void apply(float* x, int64_t n_heads, int64_t head_dim, int64_t pos, RopeStyle style) const;

 private:
  int64_t rows_ = 0, rot_dim_ = 0;
  float theta_ = 10000.0f;
  std::vector<float> cos_, sin_;  // [rows, rot_dim/2]
};

// Causal multi-head attention with grouped-query heads over a KV cache.
//   q:   [n_tokens, n_heads * head_dim] (row stride q_stride floats); token t sits at position start_pos+t.
//   k,v: cache rows for positions 0 .. start_pos+n_tokens-1, [pos, n_kv_heads * head_dim] (row stride
//        kv_stride floats); query head h reads kv head h / (n_heads / n_kv_heads).
//   out: [n_tokens, n_heads * head_dim] (row stride out_stride).
// Token t attends to positions [0, start_pos + t]. Scores are q·k / sqrt(head_dim) (a division, as
// llama2.c and PyTorch's GPT-2 compute it). A (token, head) pair's result depends only on its own inputs,
// never on n_tokens, the pool or its size. Small jobs (decode at short contexts) run on the calling thread.
struct AttentionShape {
  int64_t n_heads = 0, n_kv_heads = 0, head_dim = 0;
};
void attention(const AttentionShape& s, const float* q, int64_t q_stride, int64_t n_tokens, int64_t start_pos,
               const float* k, const float* v, int64_t kv_stride, float* out, int64_t out_stride, ThreadPool* pool);

}  // namespace cml::tensor
