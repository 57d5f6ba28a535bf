// Whole-model obfuscation: every selected weight matrix gets its own fresh grouping, mixes and input
// permutation (nothing is shared between layers or models), and the results are written as a bundle
// directory: worker.gcw (W'' only) and tee.gcs (sealed secrets).
//
// Thread safety: pure functions.
#pragma once

#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "groupcover/bundle.h"
#include "groupcover/obfuscate.h"

namespace cml::model {
struct TensorRef;
}

namespace cml::groupcover {

struct NamedMatrix {
  std::string name;
  MatrixView w;
  const float* bias = nullptr;  // [out] f32 or null
};

struct ObfuscatedModel {
  std::shared_ptr<const WorkerBundle> worker;
  std::shared_ptr<const TeeSecrets> secrets;
  ObfuscationStats stats;  // worst over all matrices
};

// `progress` (optional) is called after each matrix with (done, total, name).
Result<ObfuscatedModel> obfuscate_model(std::span<const NamedMatrix> matrices, const ObfuscationConfig& config,
                                        const std::function<void(size_t, size_t, const std::string&)>& progress = {});

// Chooses the matrices a transformer's LinearBackend multiplies by: every 2-D F32/F16/BF16 tensor with
// at least two rows, except position embeddings and norms. Hugging Face GPT-2 Conv1D weights
// (attn.c_attn, attn.c_proj, mlp.c_fc, mlp.c_proj in safetensors) are stored [in, out] and marked
// transposed. Biases "<prefix>.bias" next to "<prefix>.weight" are attached.
std::vector<NamedMatrix> select_linear_weights(const std::vector<model::TensorRef>& tensors, const std::string& format);

Status write_bundle_dir(const std::string& dir, const ObfuscatedModel& m, ByteSpan operator_key);
// Reads both files, opens the TEE bundle and checks that the worker bundle is the one it names.
Result<ObfuscatedModel> read_bundle_dir(const std::string& dir, ByteSpan operator_key);
// Reads only the worker bundle (the worker's view).
Result<std::shared_ptr<const WorkerBundle>> read_worker_bundle(const std::string& path);

}  // namespace cml::groupcover
