#include "pipeline/model_executor.h"

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "crypto/hash.h"
#include "model/config.h"
#include "model/synthetic.h"

namespace cml::pipeline {

bool is_synthetic_source(const std::string& spec) {
  return spec.starts_with("synthetic:");
}

Result<std::shared_ptr<const model::WeightFile>> open_model_source(const std::string& spec) {
  if (spec == "synthetic:gpt2-124m") {
    return std::shared_ptr<const model::WeightFile>(
        model::make_synthetic_gpt2(model::gpt2_124m_spec(tensor::DType::kF32)));
  }
  if (spec == "synthetic:llama-tiny") {
    model::SyntheticSpec s;
    s.vocab = 512;
    s.dim = 64;
    s.n_layers = 6;
    s.n_heads = 4;
    s.n_kv_heads = 4;
    s.ffn_dim = 176;
    s.max_context = 256;
    s.init_std = 0.08f;
    s.seed = 7;
    return std::shared_ptr<const model::WeightFile>(model::make_synthetic_llama(s));
  }
  if (is_synthetic_source(spec)) {
    return invalid_argument("unknown synthetic model '" + spec + "' (synthetic:gpt2-124m, synthetic:llama-tiny)");
  }
  CML_ASSIGN_OR_RETURN(auto f, model::open_weight_file(spec));
  return std::shared_ptr<const model::WeightFile>(std::move(f));
}

Result<std::map<std::string, std::string>> tensor_digests(const model::WeightFile& file,
                                                          const std::vector<std::string>& names) {
  std::map<std::string, std::string> out;
  for (const auto& n : names) {
    const model::TensorRef* t = file.find(n);
    if (!t) return not_found("tensor '" + n + "' is not in the model file");
    out[n] = to_hex(crypto::sha256(ByteSpan(static_cast<const uint8_t*>(t->data), t->nbytes)));
  }
  return out;
}

Result<std::unique_ptr<ModelStageExecutor>> ModelStageExecutor::create(std::shared_ptr<const model::WeightFile> file,
                                                                       uint32_t begin, uint32_t end,
                                                                       const model::ExecutorOptions& options) {
  auto e = std::unique_ptr<ModelStageExecutor>(new ModelStageExecutor());
  e->file_ = file;
  CML_ASSIGN_OR_RETURN(e->exec_, model::Executor::create(file, model::LayerRange{begin, end}, options));
  CML_ASSIGN_OR_RETURN(e->digests_, tensor_digests(*file, e->exec_->used_tensors()));
  return e;
}

Result<std::unique_ptr<ModelStageExecutor>> ModelStageExecutor::create(std::shared_ptr<const model::WeightFile> file,
                                                                       uint32_t begin, uint32_t end,
                                                                       model::ExecutorOptions options,
                                                                       std::unique_ptr<model::LinearBackend> backend) {
  if (options.backend) return invalid_argument("ModelStageExecutor: give the backend either by pointer or owned");
  auto e = std::unique_ptr<ModelStageExecutor>(new ModelStageExecutor());
  e->file_ = file;
  e->backend_ = std::move(backend);
  options.backend = e->backend_.get();
  CML_ASSIGN_OR_RETURN(e->exec_, model::Executor::create(file, model::LayerRange{begin, end}, options));
  CML_ASSIGN_OR_RETURN(e->digests_, tensor_digests(*file, e->exec_->used_tensors()));
  return e;
}

Status ModelStageExecutor::start_sequence(uint64_t seq) {
  exec_->drop_sequence(static_cast<model::SeqId>(seq)).ignore_error();  // a restart of the same id
  CML_RETURN_IF_ERROR(exec_->start_sequence(static_cast<model::SeqId>(seq)));
  ++live_;
  return ok_status();
}

void ModelStageExecutor::drop_sequence(uint64_t seq) {
  if (exec_->drop_sequence(static_cast<model::SeqId>(seq)).is_ok()) --live_;
}

Status ModelStageExecutor::forward(const StepHeader& step, const StepInput& in, StepOutput& out) {
  const int64_t dim = exec_->config().dim;
  const uint64_t T = step.total_tokens();
  steps_.clear();
  if (is_first()) {
    if (in.tokens.size() != T) return invalid_argument("expected " + std::to_string(T) + " token ids");
    tokens_.resize(T);
    for (size_t i = 0; i < T; ++i) {
      if (in.tokens[i] >= uint64_t(exec_->config().vocab)) return invalid_argument("token id out of range");
      tokens_[i] = static_cast<int32_t>(in.tokens[i]);
    }
  } else if (in.hidden.size() != T * uint64_t(dim)) {
    return invalid_argument("expected " + std::to_string(T) + " × " + std::to_string(dim) + " hidden values");
  }
  uint64_t row = 0;
  for (const auto& s : step.seqs) {
    model::StepInput si;
    si.seq = static_cast<model::SeqId>(s.seq);
    si.start_pos = s.pos;
    si.n_tokens = s.len;
    if (is_first())
      si.tokens = std::span<const int32_t>(tokens_.data() + row, s.len);
    else
      si.hidden = in.hidden.subspan(row * dim, size_t(s.len) * dim);
    si.last_only = is_last();
    steps_.push_back(si);
    row += s.len;
  }
  CML_RETURN_IF_ERROR(exec_->forward(steps_, out.data));
  out.width = static_cast<uint32_t>(exec_->output_width());
  return ok_status();
}

namespace {
Result<std::string> file_sha256(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return not_found("cannot open " + path);
  crypto::Sha256 h;
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), buf.size());
    h.update(ByteSpan(reinterpret_cast<const uint8_t*>(buf.data()), size_t(in.gcount())));
  }
  return to_hex(h.finish());
}
}  // namespace

Result<Manifest> shard_model(const std::string& model_path, const ShardOptions& o) {
  CML_ASSIGN_OR_RETURN(std::shared_ptr<const model::WeightFile> file, open_model_source(model_path));
  CML_ASSIGN_OR_RETURN(model::ModelConfig cfg, model::read_model_config(*file));
  // Stages balanced by the weights each multiplies per token, the output head included.
  CML_ASSIGN_OR_RETURN(auto ranges,
                       balance_layers(static_cast<uint32_t>(cfg.n_layers), o.stages,
                                      static_cast<uint64_t>(std::max<int64_t>(1, cfg.layer_weight_count())),
                                      static_cast<uint64_t>(std::max<int64_t>(0, cfg.head_weight_count()))));
  for (const auto& [i, off] : o.offload) {
    if (i >= o.stages)
      return invalid_argument("offload for stage " + std::to_string(i) + ": the manifest has " +
                              std::to_string(o.stages) + " stages (indices 0 to " + std::to_string(o.stages - 1) + ")");
  }
  Manifest m;
  m.model.name = o.model_name.empty() ? std::filesystem::path(model_path).filename().string() : o.model_name;
  m.model.file = model_path;
  if (is_synthetic_source(model_path)) {
    // No file: the identity is the digest of every tensor's digest, in name order.
    std::vector<std::string> names;
    for (const auto& t : file->tensors()) names.push_back(t.name);
    CML_ASSIGN_OR_RETURN(auto all, tensor_digests(*file, names));
    std::string cat;
    for (const auto& [n, h] : all) cat += n + "=" + h + "\n";
    m.model.sha256 = to_hex(crypto::sha256(as_bytes(cat)));
  } else {
    CML_ASSIGN_OR_RETURN(m.model.sha256, file_sha256(model_path));
  }
  m.model.architecture = model::arch_name(cfg.arch);
  m.model.n_layers = static_cast<uint32_t>(cfg.n_layers);
  m.model.vocab_size = static_cast<uint32_t>(cfg.vocab);
  m.activation.dtype = "f32";
  m.activation.hidden_size = static_cast<uint32_t>(cfg.dim);
  m.activation.max_seq_len = o.max_seq_len ? std::min<uint32_t>(o.max_seq_len, uint32_t(cfg.max_context))
                                           : static_cast<uint32_t>(cfg.max_context);
  for (uint32_t i = 0; i < o.stages; ++i) {
    StageSpec s;
    s.index = i;
    s.layer_begin = ranges[i].first;
    s.layer_end = ranges[i].second;
    model::ExecutorOptions eo;
    eo.max_sequences = 1;
    eo.max_context = 8;
    CML_ASSIGN_OR_RETURN(auto ex, model::Executor::create(file, model::LayerRange{s.layer_begin, s.layer_end}, eo));
    CML_ASSIGN_OR_RETURN(s.weights, tensor_digests(*file, ex->used_tensors()));
    s.attestation.type = o.attestation;
    s.attestation.expected_measurements = o.expect;
    std::string c, d;
    if (i < o.endpoints.size()) {
      c = o.endpoints[i].first;
      d = o.endpoints[i].second;
    } else {
      c = "tcp://127.0.0.1:" + std::to_string(o.base_port + 2 * i);
      d = "tcp://127.0.0.1:" + std::to_string(o.base_port + 2 * i + 1);
    }
    CML_ASSIGN_OR_RETURN(s.control, parse_endpoint(c));
    CML_ASSIGN_OR_RETURN(s.data, parse_endpoint(d));
    if (auto it = o.offload.find(i); it != o.offload.end()) s.offload = it->second;
    m.stages.push_back(std::move(s));
  }
  CML_RETURN_IF_ERROR(validate_manifest(m));
  return m;
}

}  // namespace cml::pipeline
