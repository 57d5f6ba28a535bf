// The model runtime's layer-range executor as a pipeline StageExecutor, and sharding a model file into
// a manifest.
//
// Thread safety: as StageExecutor. shard_model is a pure function of the file.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "model/executor.h"
#include "model/weights.h"
#include "pipeline/executor.h"
#include "pipeline/manifest.h"

namespace cml::pipeline {

// A model by path (GGUF, safetensors, llama2.c), or a deterministic random-weight model built in memory:
// "synthetic:gpt2-124m" (GPT-2 124M shape), "synthetic:llama-tiny" (6 layers, dim 64, vocab 512).
// Synthetic models have no tokenizer.
Result<std::shared_ptr<const model::WeightFile>> open_model_source(const std::string& spec);
bool is_synthetic_source(const std::string& spec);

// SHA-256 (hex) of every named tensor's raw bytes in the file.
Result<std::map<std::string, std::string>> tensor_digests(const model::WeightFile& file,
                                                          const std::vector<std::string>& names);

class ModelStageExecutor final : public StageExecutor {
 public:
  // Builds the executor for layers [begin, end) of `file`, and hashes the tensors it uses.
  static Result<std::unique_ptr<ModelStageExecutor>> create(std::shared_ptr<const model::WeightFile> file,
                                                            uint32_t begin, uint32_t end,
                                                            const model::ExecutorOptions& options);
  // The same, computing the weight products with `backend` (not yet finalized; null: local BLAS), which the
  // stage executor owns and destroys after the model executor — e.g. a GroupCover backend built from the
  // manifest's offload entry. options.backend must be null. Errors of the backend's finalize() (a worker
  // that cannot be reached, a bundle for another model) are returned here.
  static Result<std::unique_ptr<ModelStageExecutor>> create(std::shared_ptr<const model::WeightFile> file,
                                                            uint32_t begin, uint32_t end,
                                                            model::ExecutorOptions options,
                                                            std::unique_ptr<model::LinearBackend> backend);
  std::map<std::string, std::string> weight_digests() const override { return digests_; }
  bool is_first() const override { return exec_->takes_tokens(); }
  bool is_last() const override { return exec_->returns_logits(); }
  uint32_t hidden_size() const override { return static_cast<uint32_t>(exec_->config().dim); }
  uint32_t vocab_size() const override { return static_cast<uint32_t>(exec_->config().vocab); }
  Status start_sequence(uint64_t seq) override;
  void drop_sequence(uint64_t seq) override;
  size_t live_sequences() const override { return live_; }
  Status forward(const StepHeader& step, const StepInput& in, StepOutput& out) override;
  model::Executor& executor() { return *exec_; }

 private:
  std::shared_ptr<const model::WeightFile> file_;
  std::unique_ptr<model::LinearBackend> backend_;  // declared before exec_: outlives it
  std::unique_ptr<model::Executor> exec_;
  std::map<std::string, std::string> digests_;
  size_t live_ = 0;
  std::vector<model::StepInput> steps_;
  std::vector<int32_t> tokens_;
};

struct ShardOptions {
  uint32_t stages = 1;
  std::string model_name;  // default: the file name
  // Endpoints of stage i (default: tcp://127.0.0.1:(base_port + 2i) control, +1 data).
  std::vector<std::pair<std::string, std::string>> endpoints;
  uint16_t base_port = 7100;
  attest::EvidenceType attestation = attest::EvidenceType::kMock;
  // Expected measurements, for every stage (NAME → bytes), e.g. pcr0=…
  std::map<std::string, Bytes> expect;
  uint32_t max_seq_len = 0;  // 0: the model's context length
  // Offload entries by stage index (stages not named get {"kind":"none"}); an index ≥ stages is refused.
  std::map<uint32_t, Offload> offload;
};

// Opens the model, balances its layers over the stages and hashes every tensor each stage loads.
Result<Manifest> shard_model(const std::string& model_path, const ShardOptions& options);

}  // namespace cml::pipeline
