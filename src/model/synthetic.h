// Synthetic models: random weights with the exact tensor names, shapes and layouts of real files (GPT-2 in
// Hugging Face safetensors naming with Conv1D [in, out] weights; Llama in GGUF naming with GGUF metadata),
// for benchmarks and tests that need a model of a given shape but no particular weights.
//
// Values are uniform with standard deviation `init_std` (norm gains around 1), drawn from a seeded
// generator, so the same spec always gives the same model.
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <memory>

#include "model/memory_weights.h"

namespace cml::model {

struct SyntheticSpec {
  int64_t vocab = 256;
  int64_t dim = 64;
  int64_t n_layers = 2;
  int64_t n_heads = 4;
  int64_t n_kv_heads = 4;  // Llama only
  int64_t ffn_dim = 256;
  int64_t max_context = 128;
  tensor::DType dtype = tensor::DType::kF32;  // of the weight matrices and embeddings
  bool tied_head = true;                      // Llama: false adds output.weight
  float init_std = 0.02f;
  uint64_t seed = 1;
};

// GPT-2 124M shape: vocab 50257, dim 768, 12 layers, 12 heads, ffn 3072, context 1024.
SyntheticSpec gpt2_124m_spec(tensor::DType dtype);

std::unique_ptr<InMemoryWeightFile> make_synthetic_gpt2(const SyntheticSpec& spec);
std::unique_ptr<InMemoryWeightFile> make_synthetic_llama(const SyntheticSpec& spec);

}  // namespace cml::model
