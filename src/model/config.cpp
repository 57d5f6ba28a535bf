#include "model/config.h"

#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace cml::model {

namespace {

constexpr int64_t kMaxDim = 1 << 16;
constexpr int64_t kMaxLayers = 1024;
constexpr int64_t kMaxVocab = 1 << 22;
constexpr int64_t kMaxContext = 1 << 20;

std::optional<int64_t> first_int(const WeightFile& f, std::initializer_list<const char*> keys) {
  for (const char* k : keys) {
    if (auto v = f.meta_int(k)) return v;
  }
  return std::nullopt;
}

std::optional<double> first_float(const WeightFile& f, std::initializer_list<const char*> keys) {
  for (const char* k : keys) {
    if (auto v = f.meta_float(k)) return v;
    if (auto s = f.meta_string(k)) {  // safetensors __metadata__ values are strings
      char* end = nullptr;
      const double d = std::strtod(s->c_str(), &end);
      if (end != s->c_str() && *end == '\0') return d;
    }
  }
  return std::nullopt;
}

std::optional<int64_t> first_int_or_string(const WeightFile& f, std::initializer_list<const char*> keys) {
  if (auto v = first_int(f, keys)) return v;
  for (const char* k : keys) {
    if (auto s = f.meta_string(k)) {
      char* end = nullptr;
      const long long d = std::strtoll(s->c_str(), &end, 10);
      if (end != s->c_str() && *end == '\0') return d;
    }
  }
  return std::nullopt;
}

// Number of layers: one past the highest N with a tensor "<pre>N." present.
int64_t count_layers(const WeightFile& f, const std::string& pre) {
  int64_t n = 0;
  for (const auto& t : f.tensors()) {
    if (t.name.rfind(pre, 0) != 0) continue;
    const char* s = t.name.c_str() + pre.size();
    char* end = nullptr;
    const long long i = std::strtoll(s, &end, 10);
    if (end != s && *end == '.' && i >= 0 && i < kMaxLayers) n = std::max<int64_t>(n, i + 1);
  }
  return n;
}

Status check_range(const char* what, int64_t v, int64_t max) {
  if (v <= 0 || v > max) {
    return invalid_argument(std::string("model ") + what + " = " + std::to_string(v) + " out of range (1.." +
                            std::to_string(max) + ")");
  }
  return ok_status();
}

std::string shape_str(const std::vector<int64_t>& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

}  // namespace

int64_t ModelConfig::layer_weight_count() const {
  const int64_t q = n_heads * head_dim;
  const int64_t attention = dim * (q + 2 * kv_dim()) + q * dim;
  const int64_t mlp = (arch == Arch::kGpt2 ? 2 : 3) * dim * ffn_dim;  // GPT-2: fc, proj; Llama: gate, up, down
  return attention + mlp;
}

const char* arch_name(Arch a) {
  return a == Arch::kLlama ? "llama" : "gpt2";
}

Result<const TensorRef*> require_tensor(const WeightFile& file, const std::string& name,
                                        std::initializer_list<int64_t> shape) {
  const TensorRef* t = file.find(name);
  if (t == nullptr) return invalid_argument("weight file lacks tensor " + name);
  if (t->dtype != tensor::DType::kF32 && t->dtype != tensor::DType::kF16 && t->dtype != tensor::DType::kBF16) {
    return invalid_argument("tensor " + name + " has unsupported dtype " + std::string(tensor::dtype_name(t->dtype)));
  }
  if (!std::equal(t->shape.begin(), t->shape.end(), shape.begin(), shape.end())) {
    return invalid_argument("tensor " + name + " has shape " + shape_str(t->shape) + ", expected " +
                            shape_str(std::vector<int64_t>(shape)));
  }
  if (t->data == nullptr || t->nbytes < static_cast<size_t>(t->numel()) * tensor::dtype_size(t->dtype)) {
    return invalid_argument("tensor " + name + " has too few bytes for its shape");
  }
  return t;
}

Result<ModelConfig> read_model_config(const WeightFile& f, const ConfigOverrides& ov) {
  ModelConfig c;
  const std::string general_arch = f.meta_string("general.architecture").value_or("");
  const bool gguf_llama = f.find("token_embd.weight") && f.find("blk.0.attn_q.weight");
  const bool gguf_gpt2 = f.find("token_embd.weight") && f.find("blk.0.attn_qkv.weight");
  std::string hf_prefix;
  bool hf_gpt2 = false;
  for (const char* p : {"", "transformer."}) {
    if (f.find(std::string(p) + "wte.weight") && f.find(std::string(p) + "wpe.weight")) {
      hf_gpt2 = true;
      hf_prefix = p;
      break;
    }
  }
  if (gguf_llama && (general_arch.empty() || general_arch == "llama")) {
    c.arch = Arch::kLlama;
    c.gguf_names = true;
  } else if (gguf_gpt2 && (general_arch.empty() || general_arch == "gpt2")) {
    c.arch = Arch::kGpt2;
    c.gguf_names = true;
  } else if (hf_gpt2) {
    c.arch = Arch::kGpt2;
    c.prefix = hf_prefix;
  } else {
    return invalid_argument("unsupported model: no Llama (GGUF names) or GPT-2 tensors found (architecture '" +
                            general_arch + "')");
  }

  if (c.arch == Arch::kLlama) {
    const TensorRef* emb = f.find("token_embd.weight");
    if (emb->shape.size() != 2) return invalid_argument("token_embd.weight must be 2-D");
    c.vocab = emb->shape[0];
    c.dim = first_int(f, {"llama.embedding_length", "dim", "llama2c.dim"}).value_or(emb->shape[1]);
    c.n_layers = first_int(f, {"llama.block_count", "n_layers", "llama2c.n_layers"}).value_or(count_layers(f, "blk."));
    auto heads = ov.n_heads ? ov.n_heads : first_int(f, {"llama.attention.head_count", "n_heads", "llama2c.n_heads"});
    if (!heads) return invalid_argument("Llama model lacks the attention head count");
    c.n_heads = *heads;
    c.n_kv_heads =
        ov.n_kv_heads
            ? *ov.n_kv_heads
            : first_int(f, {"llama.attention.head_count_kv", "n_kv_heads", "llama2c.n_kv_heads"}).value_or(c.n_heads);
    const TensorRef* gate = f.find("blk.0.ffn_gate.weight");
    c.ffn_dim = first_int(f, {"llama.feed_forward_length", "hidden_dim", "llama2c.hidden_dim"})
                    .value_or(gate && gate->shape.size() == 2 ? gate->shape[0] : 0);
    c.max_context = ov.max_context
                        ? *ov.max_context
                        : first_int(f, {"llama.context_length", "seq_len", "llama2c.seq_len"}).value_or(2048);
    c.norm_eps = static_cast<float>(
        ov.norm_eps ? *ov.norm_eps : first_float(f, {"llama.attention.layer_norm_rms_epsilon"}).value_or(1e-5));
    c.rope_theta = static_cast<float>(first_float(f, {"llama.rope.freq_base"}).value_or(10000.0));
    c.rope_style = tensor::RopeStyle::kInterleaved;  // GGUF and llama2.c keep Meta's Q/K layout
  } else {
    const std::string wte = c.gguf_names ? "token_embd.weight" : c.prefix + "wte.weight";
    const std::string wpe = c.gguf_names ? "position_embd.weight" : c.prefix + "wpe.weight";
    const TensorRef* e = f.find(wte);
    const TensorRef* p = f.find(wpe);
    if (!e || !p || e->shape.size() != 2 || p->shape.size() != 2) {
      return invalid_argument("GPT-2 model lacks 2-D token and position embeddings");
    }
    c.vocab = e->shape[0];
    c.dim = e->shape[1];
    c.max_context = p->shape[0];
    c.n_layers = c.gguf_names ? first_int(f, {"gpt2.block_count"}).value_or(count_layers(f, "blk."))
                              : count_layers(f, c.prefix + "h.");
    auto heads = ov.n_heads ? ov.n_heads : first_int_or_string(f, {"gpt2.attention.head_count", "n_head"});
    c.n_heads = heads ? *heads : c.dim / 64;
    c.n_kv_heads = c.n_heads;
    const std::string fc = c.gguf_names ? "blk.0.ffn_up.weight" : c.prefix + "h.0.mlp.c_fc.weight";
    const TensorRef* t = f.find(fc);
    if (!t || t->shape.size() != 2) return invalid_argument("GPT-2 model lacks " + fc);
    c.ffn_dim = c.gguf_names ? t->shape[0] : t->shape[1];
    c.norm_eps = static_cast<float>(
        ov.norm_eps ? *ov.norm_eps
                    : first_float(f, {"gpt2.attention.layer_norm_epsilon", "layer_norm_epsilon"}).value_or(1e-5));
  }
  CML_RETURN_IF_ERROR(check_range("vocabulary size", c.vocab, kMaxVocab));
  CML_RETURN_IF_ERROR(check_range("width", c.dim, kMaxDim));
  CML_RETURN_IF_ERROR(check_range("layer count", c.n_layers, kMaxLayers));
  CML_RETURN_IF_ERROR(check_range("head count", c.n_heads, c.dim));
  CML_RETURN_IF_ERROR(check_range("kv head count", c.n_kv_heads, c.n_heads));
  CML_RETURN_IF_ERROR(check_range("feed-forward width", c.ffn_dim, 4 * kMaxDim));
  CML_RETURN_IF_ERROR(check_range("context length", c.max_context, kMaxContext));
  if (c.dim % c.n_heads != 0) return invalid_argument("model width is not a multiple of the head count");
  if (c.n_heads % c.n_kv_heads != 0) return invalid_argument("head count is not a multiple of the kv head count");
  c.head_dim = c.dim / c.n_heads;
  if (c.arch == Arch::kLlama && c.head_dim % 2 != 0) return invalid_argument("RoPE needs an even head size");
  if (!(c.norm_eps > 0.0f) || !std::isfinite(c.norm_eps)) return invalid_argument("normalisation epsilon must be > 0");
  if (!(c.rope_theta > 0.0f) || !std::isfinite(c.rope_theta)) return invalid_argument("RoPE base must be > 0");
  return c;
}

Result<ConfigOverrides> read_hf_config_json(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return ConfigOverrides{};
  std::string text;
  text.resize((1 << 20) + 1);
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(in.gcount()));
  auto r = parse_hf_config_json(text);
  if (!r.is_ok()) return r.status().with_context(path);
  return r;
}

Result<ConfigOverrides> parse_hf_config_json(std::string_view text) {
  ConfigOverrides ov;
  if (text.size() > (1u << 20)) return invalid_argument("config.json larger than 1 MiB");
  const nlohmann::json j = nlohmann::json::parse(text.begin(), text.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) return invalid_argument("config.json is not a JSON object");
  auto get_int = [&](const char* key) -> std::optional<int64_t> {
    auto it = j.find(key);
    if (it == j.end() || !it->is_number_integer()) return std::nullopt;
    return it->get<int64_t>();
  };
  auto get_num = [&](const char* key) -> std::optional<double> {
    auto it = j.find(key);
    if (it == j.end() || !it->is_number()) return std::nullopt;
    return it->get<double>();
  };
  ov.n_heads = get_int("n_head");
  if (!ov.n_heads) ov.n_heads = get_int("num_attention_heads");
  ov.n_kv_heads = get_int("num_key_value_heads");
  ov.norm_eps = get_num("layer_norm_epsilon");
  if (!ov.norm_eps) ov.norm_eps = get_num("rms_norm_eps");
  return ov;
}

}  // namespace cml::model
