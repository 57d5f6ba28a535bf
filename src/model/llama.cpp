// Llama decoder (Meta / llama2.c / GGUF layout): RMSNorm, RoPE on interleaved pairs, grouped-query
// attention, SwiGLU feed-forward, tied or separate output head. Numerics follow llama2.c's run.c.
#include <cstring>

#include "model/transformer.h"

namespace cml::model {

namespace {

class Llama final : public Transformer {
 public:
  Llama(const WeightFile& file, const ModelConfig& config, LayerRange range, LinearBackend& backend,
        std::shared_ptr<tensor::ThreadPool> pool, bool transpose_head)
      : Transformer(file, config, range, backend, std::move(pool), transpose_head),
        rope_(config.head_dim, config.rope_theta) {}

  Status init() {
    const ModelConfig& c = config_;
    const int64_t kv = c.kv_dim();
    if (has_embedding() || has_head()) {
      CML_ASSIGN_OR_RETURN(embedding_, tensor("token_embd.weight", {c.vocab, c.dim}));
    }
    for (int64_t l = range_.begin; l < range_.end; ++l) {
      const std::string p = "blk." + std::to_string(l) + ".";
      Layer L;
      CML_ASSIGN_OR_RETURN(L.attn_norm, vector_f32(p + "attn_norm.weight", c.dim));
      CML_ASSIGN_OR_RETURN(L.ffn_norm, vector_f32(p + "ffn_norm.weight", c.dim));
      std::vector<LinearPart> qkv(3), gate_up(2), o(1), down(1);
      CML_ASSIGN_OR_RETURN(qkv[0], part(p + "attn_q.weight", c.dim, c.dim, false));
      CML_ASSIGN_OR_RETURN(qkv[1], part(p + "attn_k.weight", kv, c.dim, false));
      CML_ASSIGN_OR_RETURN(qkv[2], part(p + "attn_v.weight", kv, c.dim, false));
      CML_ASSIGN_OR_RETURN(o[0], part(p + "attn_output.weight", c.dim, c.dim, false));
      CML_ASSIGN_OR_RETURN(gate_up[0], part(p + "ffn_gate.weight", c.ffn_dim, c.dim, false));
      CML_ASSIGN_OR_RETURN(gate_up[1], part(p + "ffn_up.weight", c.ffn_dim, c.dim, false));
      CML_ASSIGN_OR_RETURN(down[0], part(p + "ffn_down.weight", c.dim, c.ffn_dim, false));
      CML_ASSIGN_OR_RETURN(L.qkv, add_op(std::move(qkv)));
      CML_ASSIGN_OR_RETURN(L.o, add_op(std::move(o)));
      CML_ASSIGN_OR_RETURN(L.gate_up, add_op(std::move(gate_up)));
      CML_ASSIGN_OR_RETURN(L.down, add_op(std::move(down)));
      layers_.push_back(std::move(L));
    }
    if (has_head()) {
      CML_ASSIGN_OR_RETURN(final_norm_, vector_f32("output_norm.weight", c.dim));
      const std::string head = file_.find("output.weight") ? "output.weight" : "token_embd.weight";
      std::vector<LinearPart> h(1);
      CML_ASSIGN_OR_RETURN(h[0], head_part(head));
      CML_ASSIGN_OR_RETURN(head_, add_op(std::move(h)));
    }
    return ok_status();
  }

  Status embed(std::span<const int32_t> tokens, std::span<const SeqSlice>, float* h) override {
    if (!embedding_) return internal_error("embed() on a range without the embedding");
    CML_RETURN_IF_ERROR(check_tokens(tokens));
    for (size_t i = 0; i < tokens.size(); ++i) embedding_row(*embedding_, tokens[i], h + i * config_.dim);
    return ok_status();
  }

  Status blocks(std::span<const SeqSlice> seqs, float* h, int64_t rows) override {
    const ModelConfig& c = config_;
    const int64_t kv = c.kv_dim();
    const int64_t qkv_w = c.dim + 2 * kv;
    xb_.resize(static_cast<size_t>(rows * c.dim));
    qkv_.resize(static_cast<size_t>(rows * qkv_w));
    att_.resize(static_cast<size_t>(rows * c.dim));
    ffn_.resize(static_cast<size_t>(rows * 2 * c.ffn_dim));
    for (size_t li = 0; li < layers_.size(); ++li) {
      const Layer& L = layers_[li];
      tensor::rmsnorm(h, L.attn_norm.data(), xb_.data(), rows, c.dim, c.norm_eps);
      CML_RETURN_IF_ERROR(backend_.run(L.qkv, xb_.data(), rows, qkv_.data()));
      int64_t row = 0;
      for (const SeqSlice& s : seqs) {
        rope_.reserve(s.start_pos + s.n);
        for (int64_t t = 0; t < s.n; ++t) {
          float* r = qkv_.data() + (row + t) * qkv_w;
          rope_.apply(r, c.n_heads, c.head_dim, s.start_pos + t, c.rope_style);
          rope_.apply(r + c.dim, c.n_kv_heads, c.head_dim, s.start_pos + t, c.rope_style);
        }
        row += s.n;
      }
      attend(seqs, static_cast<int64_t>(li), qkv_.data(), qkv_w, c.dim, c.dim + kv, att_.data());
      CML_RETURN_IF_ERROR(backend_.run(L.o, att_.data(), rows, xb_.data()));
      tensor::add_inplace(h, xb_.data(), rows * c.dim);
      tensor::rmsnorm(h, L.ffn_norm.data(), xb_.data(), rows, c.dim, c.norm_eps);
      CML_RETURN_IF_ERROR(backend_.run(L.gate_up, xb_.data(), rows, ffn_.data()));
      for (int64_t r = 0; r < rows; ++r) {
        float* g = ffn_.data() + r * 2 * c.ffn_dim;
        tensor::swiglu(g, g + c.ffn_dim, c.ffn_dim);
        // compact the gated half to rows of ffn_dim for the down projection
        if (r > 0) std::memmove(ffn_.data() + r * c.ffn_dim, g, static_cast<size_t>(c.ffn_dim) * 4);
      }
      CML_RETURN_IF_ERROR(backend_.run(L.down, ffn_.data(), rows, xb_.data()));
      tensor::add_inplace(h, xb_.data(), rows * c.dim);
    }
    return ok_status();
  }

  Status head(float* h, int64_t rows, float* logits) override {
    if (!has_head()) return internal_error("head() on a range without the head");
    tensor::rmsnorm(h, final_norm_.data(), h, rows, config_.dim, config_.norm_eps);
    return backend_.run(head_, h, rows, logits);
  }

 private:
  struct Layer {
    std::vector<float> attn_norm, ffn_norm;
    LinearId qkv = 0, o = 0, gate_up = 0, down = 0;
  };
  tensor::RopeTable rope_;
  const TensorRef* embedding_ = nullptr;
  std::vector<Layer> layers_;
  std::vector<float> final_norm_;
  LinearId head_ = 0;
  std::vector<float> xb_, qkv_, att_, ffn_;
};

}  // namespace

Result<std::unique_ptr<Transformer>> make_llama(const WeightFile& file, const ModelConfig& config, LayerRange range,
                                                LinearBackend& backend, std::shared_ptr<tensor::ThreadPool> pool,
                                                bool transpose_head) {
  auto m = std::make_unique<Llama>(file, config, range, backend, std::move(pool), transpose_head);
  CML_RETURN_IF_ERROR(m->init());
  return std::unique_ptr<Transformer>(std::move(m));
}

}  // namespace cml::model
