#include "model/synthetic.h"

#include <cmath>

#include "tensor/half.h"

namespace cml::model {

namespace {

class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed) {}
  uint64_t next() {
    uint64_t z = (s_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  // Uniform in [-1, 1).
  float sym() { return static_cast<float>(next() >> 40) * (2.0f / 16777216.0f) - 1.0f; }

 private:
  uint64_t s_;
};

struct Builder {
  InMemoryWeightFile& f;
  Rng rng;
  tensor::DType dtype;
  float std_;

  // Fills a tensor of `dtype` directly (no f32 copy of big matrices).
  void random(const std::string& name, std::vector<int64_t> shape, tensor::DType dt, float scale, float offset = 0.0f) {
    tensor::Tensor t = tensor::Tensor::uninitialized(dt, std::move(shape));
    const int64_t n = t.numel();
    const float a = scale * std::sqrt(3.0f);  // uniform [-a, a) has std `scale`
    if (dt == tensor::DType::kF32) {
      float* p = t.mutable_data<float>();
      for (int64_t i = 0; i < n; ++i) p[i] = offset + a * rng.sym();
    } else {
      uint16_t* p = static_cast<uint16_t*>(t.mutable_raw());
      for (int64_t i = 0; i < n; ++i) {
        const float v = offset + a * rng.sym();
        p[i] = dt == tensor::DType::kBF16 ? tensor::f32_to_bf16(v) : tensor::f32_to_f16(v);
      }
    }
    f.add_tensor(name, std::move(t));
  }
  void matrix(const std::string& name, std::vector<int64_t> shape) { random(name, std::move(shape), dtype, std_); }
  void gain(const std::string& name, int64_t n) { random(name, {n}, tensor::DType::kF32, 0.1f, 1.0f); }
  void bias(const std::string& name, int64_t n) { random(name, {n}, tensor::DType::kF32, std_); }
};

}  // namespace

SyntheticSpec gpt2_124m_spec(tensor::DType dtype) {
  SyntheticSpec s;
  s.vocab = 50257;
  s.dim = 768;
  s.n_layers = 12;
  s.n_heads = 12;
  s.n_kv_heads = 12;
  s.ffn_dim = 3072;
  s.max_context = 1024;
  s.dtype = dtype;
  return s;
}

std::unique_ptr<InMemoryWeightFile> make_synthetic_gpt2(const SyntheticSpec& s) {
  auto f = std::make_unique<InMemoryWeightFile>("synthetic-gpt2");
  Builder b{*f, Rng(s.seed), s.dtype, s.init_std};
  b.matrix("wte.weight", {s.vocab, s.dim});
  b.random("wpe.weight", {s.max_context, s.dim}, s.dtype, 0.01f);
  for (int64_t l = 0; l < s.n_layers; ++l) {
    const std::string p = "h." + std::to_string(l) + ".";
    b.gain(p + "ln_1.weight", s.dim);
    b.bias(p + "ln_1.bias", s.dim);
    b.matrix(p + "attn.c_attn.weight", {s.dim, 3 * s.dim});  // Conv1D: [in, out]
    b.bias(p + "attn.c_attn.bias", 3 * s.dim);
    b.matrix(p + "attn.c_proj.weight", {s.dim, s.dim});
    b.bias(p + "attn.c_proj.bias", s.dim);
    b.gain(p + "ln_2.weight", s.dim);
    b.bias(p + "ln_2.bias", s.dim);
    b.matrix(p + "mlp.c_fc.weight", {s.dim, s.ffn_dim});
    b.bias(p + "mlp.c_fc.bias", s.ffn_dim);
    b.matrix(p + "mlp.c_proj.weight", {s.ffn_dim, s.dim});
    b.bias(p + "mlp.c_proj.bias", s.dim);
  }
  b.gain("ln_f.weight", s.dim);
  b.bias("ln_f.bias", s.dim);
  f->set_meta("n_head", std::to_string(s.n_heads));
  return f;
}

std::unique_ptr<InMemoryWeightFile> make_synthetic_llama(const SyntheticSpec& s) {
  auto f = std::make_unique<InMemoryWeightFile>("synthetic-llama");
  Builder b{*f, Rng(s.seed), s.dtype, s.init_std};
  const int64_t hd = s.dim / s.n_heads;
  const int64_t kv = s.n_kv_heads * hd;
  b.random("token_embd.weight", {s.vocab, s.dim}, s.dtype, 1.0f);
  for (int64_t l = 0; l < s.n_layers; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    b.gain(p + "attn_norm.weight", s.dim);
    b.matrix(p + "attn_q.weight", {s.dim, s.dim});
    b.matrix(p + "attn_k.weight", {kv, s.dim});
    b.matrix(p + "attn_v.weight", {kv, s.dim});
    b.matrix(p + "attn_output.weight", {s.dim, s.dim});
    b.gain(p + "ffn_norm.weight", s.dim);
    b.matrix(p + "ffn_gate.weight", {s.ffn_dim, s.dim});
    b.matrix(p + "ffn_down.weight", {s.dim, s.ffn_dim});
    b.matrix(p + "ffn_up.weight", {s.ffn_dim, s.dim});
  }
  b.gain("output_norm.weight", s.dim);
  if (!s.tied_head) b.matrix("output.weight", {s.vocab, s.dim});
  f->set_meta("general.architecture", std::string("llama"));
  f->set_meta("llama.embedding_length", int64_t{s.dim});
  f->set_meta("llama.block_count", int64_t{s.n_layers});
  f->set_meta("llama.attention.head_count", int64_t{s.n_heads});
  f->set_meta("llama.attention.head_count_kv", int64_t{s.n_kv_heads});
  f->set_meta("llama.feed_forward_length", int64_t{s.ffn_dim});
  f->set_meta("llama.context_length", int64_t{s.max_context});
  return f;
}

}  // namespace cml::model
