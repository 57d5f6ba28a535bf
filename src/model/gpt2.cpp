// GPT-2 decoder: learned position embeddings, pre-LayerNorm blocks, fused QKV, GELU (tanh) MLP, head tied
// to the token embedding. Reads Hugging Face names ("h.N.attn.c_attn.weight", Conv1D weights stored
// [in, out], i.e. transposed) or GGUF names ("blk.N.attn_qkv.weight", stored [out, in]).
#include "model/transformer.h"
#include "tensor/half.h"

namespace cml::model {

namespace {

class Gpt2 final : public Transformer {
 public:
  Gpt2(const WeightFile& file, const ModelConfig& config, LayerRange range, LinearBackend& backend,
       std::shared_ptr<tensor::ThreadPool> pool, bool transpose_head)
      : Transformer(file, config, range, backend, std::move(pool), transpose_head) {}

  Status init() {
    const ModelConfig& c = config_;
    const bool g = c.gguf_names;
    const bool tr = !g;  // Hugging Face Conv1D layout
    const std::string pre = c.prefix;
    if (has_embedding()) {
      CML_ASSIGN_OR_RETURN(wte_, tensor(g ? "token_embd.weight" : pre + "wte.weight", {c.vocab, c.dim}));
      CML_ASSIGN_OR_RETURN(wpe_, tensor(g ? "position_embd.weight" : pre + "wpe.weight", {c.max_context, c.dim}));
    }
    // Some files keep the real context in wpe but we may have been asked for less: wpe rows >= max_context.
    for (int64_t l = range_.begin; l < range_.end; ++l) {
      const std::string p = g ? "blk." + std::to_string(l) + "." : pre + "h." + std::to_string(l) + ".";
      auto n = [&](const char* gguf, const char* hf) { return p + (g ? gguf : hf); };
      Layer L;
      CML_ASSIGN_OR_RETURN(L.ln1_g, vector_f32(n("attn_norm.weight", "ln_1.weight"), c.dim));
      CML_ASSIGN_OR_RETURN(L.ln1_b, vector_f32(n("attn_norm.bias", "ln_1.bias"), c.dim));
      CML_ASSIGN_OR_RETURN(L.ln2_g, vector_f32(n("ffn_norm.weight", "ln_2.weight"), c.dim));
      CML_ASSIGN_OR_RETURN(L.ln2_b, vector_f32(n("ffn_norm.bias", "ln_2.bias"), c.dim));
      CML_ASSIGN_OR_RETURN(L.qkv_b, vector_f32(n("attn_qkv.bias", "attn.c_attn.bias"), 3 * c.dim));
      CML_ASSIGN_OR_RETURN(L.proj_b, vector_f32(n("attn_output.bias", "attn.c_proj.bias"), c.dim));
      CML_ASSIGN_OR_RETURN(L.fc_b, vector_f32(n("ffn_up.bias", "mlp.c_fc.bias"), c.ffn_dim));
      CML_ASSIGN_OR_RETURN(L.down_b, vector_f32(n("ffn_down.bias", "mlp.c_proj.bias"), c.dim));
      layers_.push_back(std::move(L));
      Layer& M = layers_.back();
      std::vector<LinearPart> qkv(1), proj(1), fc(1), down(1);
      CML_ASSIGN_OR_RETURN(qkv[0], part(n("attn_qkv.weight", "attn.c_attn.weight"), 3 * c.dim, c.dim, tr, &M.qkv_b));
      CML_ASSIGN_OR_RETURN(proj[0], part(n("attn_output.weight", "attn.c_proj.weight"), c.dim, c.dim, tr, &M.proj_b));
      CML_ASSIGN_OR_RETURN(fc[0], part(n("ffn_up.weight", "mlp.c_fc.weight"), c.ffn_dim, c.dim, tr, &M.fc_b));
      CML_ASSIGN_OR_RETURN(down[0], part(n("ffn_down.weight", "mlp.c_proj.weight"), c.dim, c.ffn_dim, tr, &M.down_b));
      CML_ASSIGN_OR_RETURN(M.qkv, add_op(std::move(qkv)));
      CML_ASSIGN_OR_RETURN(M.proj, add_op(std::move(proj)));
      CML_ASSIGN_OR_RETURN(M.fc, add_op(std::move(fc)));
      CML_ASSIGN_OR_RETURN(M.down, add_op(std::move(down)));
    }
    if (has_head()) {
      CML_ASSIGN_OR_RETURN(lnf_g_, vector_f32(g ? "output_norm.weight" : pre + "ln_f.weight", c.dim));
      CML_ASSIGN_OR_RETURN(lnf_b_, vector_f32(g ? "output_norm.bias" : pre + "ln_f.bias", c.dim));
      std::string head = g ? "token_embd.weight" : pre + "wte.weight";
      if (g && file_.find("output.weight")) head = "output.weight";
      if (!g && file_.find("lm_head.weight")) head = "lm_head.weight";
      std::vector<LinearPart> h(1);
      CML_ASSIGN_OR_RETURN(h[0], head_part(head));
      CML_ASSIGN_OR_RETURN(head_, add_op(std::move(h)));
    }
    return ok_status();
  }

  Status embed(std::span<const int32_t> tokens, std::span<const SeqSlice> seqs, float* h) override {
    if (!wte_) return internal_error("embed() on a range without the embedding");
    CML_RETURN_IF_ERROR(check_tokens(tokens));
    const int64_t d = config_.dim;
    std::vector<float> pos(static_cast<size_t>(d));
    size_t i = 0;
    for (const SeqSlice& s : seqs) {
      for (int64_t t = 0; t < s.n; ++t, ++i) {
        float* hr = h + i * d;
        embedding_row(*wte_, tokens[i], hr);
        tensor::convert_to_f32(wpe_->dtype,
                               static_cast<const char*>(wpe_->data) +
                                   static_cast<size_t>((s.start_pos + t) * d) * tensor::dtype_size(wpe_->dtype),
                               pos.data(), d);
        tensor::add_inplace(hr, pos.data(), d);
      }
    }
    return ok_status();
  }

  Status blocks(std::span<const SeqSlice> seqs, float* h, int64_t rows) override {
    const ModelConfig& c = config_;
    const int64_t d = c.dim;
    xb_.resize(static_cast<size_t>(rows * d));
    qkv_.resize(static_cast<size_t>(rows * 3 * d));
    att_.resize(static_cast<size_t>(rows * d));
    ffn_.resize(static_cast<size_t>(rows * c.ffn_dim));
    for (size_t li = 0; li < layers_.size(); ++li) {
      const Layer& L = layers_[li];
      tensor::layernorm(h, L.ln1_g.data(), L.ln1_b.data(), xb_.data(), rows, d, c.norm_eps);
      CML_RETURN_IF_ERROR(backend_.run(L.qkv, xb_.data(), rows, qkv_.data()));
      attend(seqs, static_cast<int64_t>(li), qkv_.data(), 3 * d, d, 2 * d, att_.data());
      CML_RETURN_IF_ERROR(backend_.run(L.proj, att_.data(), rows, xb_.data()));
      tensor::add_inplace(h, xb_.data(), rows * d);
      tensor::layernorm(h, L.ln2_g.data(), L.ln2_b.data(), xb_.data(), rows, d, c.norm_eps);
      CML_RETURN_IF_ERROR(backend_.run(L.fc, xb_.data(), rows, ffn_.data()));
      tensor::gelu_tanh(ffn_.data(), rows * c.ffn_dim);
      CML_RETURN_IF_ERROR(backend_.run(L.down, ffn_.data(), rows, xb_.data()));
      tensor::add_inplace(h, xb_.data(), rows * d);
    }
    return ok_status();
  }

  Status head(float* h, int64_t rows, float* logits) override {
    if (!has_head()) return internal_error("head() on a range without the head");
    tensor::layernorm(h, lnf_g_.data(), lnf_b_.data(), h, rows, config_.dim, config_.norm_eps);
    return backend_.run(head_, h, rows, logits);
  }

 private:
  struct Layer {
    std::vector<float> ln1_g, ln1_b, ln2_g, ln2_b, qkv_b, proj_b, fc_b, down_b;
    LinearId qkv = 0, proj = 0, fc = 0, down = 0;
  };
  const TensorRef* wte_ = nullptr;
  const TensorRef* wpe_ = nullptr;
  std::vector<Layer> layers_;  // reserved up front: parts keep pointers to the biases
  std::vector<float> lnf_g_, lnf_b_;
  LinearId head_ = 0;
  std::vector<float> xb_, qkv_, att_, ffn_;

 public:
  void reserve_layers() { layers_.reserve(static_cast<size_t>(range_.end - range_.begin)); }
};

}  // namespace

Result<std::unique_ptr<Transformer>> make_gpt2(const WeightFile& file, const ModelConfig& config, LayerRange range,
                                               LinearBackend& backend, std::shared_ptr<tensor::ThreadPool> pool,
                                               bool transpose_head) {
  auto m = std::make_unique<Gpt2>(file, config, range, backend, std::move(pool), transpose_head);
  m->reserve_layers();
  CML_RETURN_IF_ERROR(m->init());
  return std::unique_ptr<Transformer>(std::move(m));
}

}  // namespace cml::model
