// ModelConfig: the hyper-parameters of a decoder transformer, read from a weight file's metadata and
// checked against its tensor shapes (a hostile file cannot make the runtime index out of bounds).
//
// Sources, in order: GGUF metadata (`<arch>.embedding_length`, …), llama2.c header ints, overrides (e.g.
// a Hugging Face config.json beside a safetensors file), then what the tensor shapes imply (GPT-2's head
// size is 64 in every released size).
//
// Thread safety: plain values.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/status.h"
#include "model/weights.h"
#include "tensor/kernels.h"

namespace cml::model {

enum class Arch { kLlama, kGpt2 };
const char* arch_name(Arch a);

struct ModelConfig {
  Arch arch = Arch::kLlama;
  int64_t vocab = 0;
  int64_t dim = 0;
  int64_t n_layers = 0;
  int64_t n_heads = 0;
  int64_t n_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t ffn_dim = 0;
  int64_t max_context = 0;
  float norm_eps = 1e-5f;
  float rope_theta = 10000.0f;
  tensor::RopeStyle rope_style = tensor::RopeStyle::kInterleaved;
  std::string prefix;       // tensor-name prefix ("" or "transformer." for Hugging Face GPT-2)
  bool gguf_names = false;  // GGUF / llama2.c tensor names (blk.N.*) rather than Hugging Face names

  int64_t kv_dim() const { return n_kv_heads * head_dim; }
  // Weights one decode step multiplies by: per transformer layer (attention and MLP projections), and
  // for the output head (vocab × dim; the embedding lookup reads one row and is not counted).
  int64_t layer_weight_count() const;
  int64_t head_weight_count() const { return vocab * dim; }
};

// Values that the file may not carry (Hugging Face config.json fields).
struct ConfigOverrides {
  std::optional<int64_t> n_heads;
  std::optional<int64_t> n_kv_heads;
  std::optional<double> norm_eps;
  std::optional<int64_t> max_context;
};

// Reads and validates the configuration; INVALID_ARGUMENT with a clear message for inconsistent files.
Result<ModelConfig> read_model_config(const WeightFile& file, const ConfigOverrides& overrides = {});

// Reads n_head / layer_norm_epsilon / n_positions (GPT-2) or num_attention_heads / num_key_value_heads /
// rms_norm_eps (Llama) from a Hugging Face config.json (at most 1 MiB). Missing file: empty overrides.
Result<ConfigOverrides> read_hf_config_json(const std::string& path);
// The same over the file's contents (INVALID_ARGUMENT above 1 MiB or for anything but a JSON object).
Result<ConfigOverrides> parse_hf_config_json(std::string_view text);

// Looks up a tensor and checks its shape (row-major) and dtype family (F32/F16/BF16).
Result<const TensorRef*> require_tensor(const WeightFile& file, const std::string& name,
                                        std::initializer_list<int64_t> shape);

}  // namespace cml::model
