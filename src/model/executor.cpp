#include "model/executor.h"

#include <cstring>
#include <set>

#include "model/linear_backend_blas.h"

namespace cml::model {

Executor::~Executor() = default;

Result<std::unique_ptr<Executor>> Executor::create(std::shared_ptr<const WeightFile> file, LayerRange range,
                                                   const ExecutorOptions& options) {
  if (!file) return invalid_argument("no weight file");
  CML_ASSIGN_OR_RETURN(ModelConfig config, read_model_config(*file, options.overrides));
  if (range.end < 0) range.end = config.n_layers;
  if (range.begin < 0 || range.begin >= range.end || range.end > config.n_layers) {
    return invalid_argument("layer range [" + std::to_string(range.begin) + ", " + std::to_string(range.end) +
                            ") is not within the model's " + std::to_string(config.n_layers) + " layers");
  }
  if (options.threads < 1 || options.threads > 256) return invalid_argument("thread count must be 1..256");
  if (options.max_sequences < 1) return invalid_argument("max_sequences must be >= 1");
  std::unique_ptr<Executor> ex(new Executor());
  ex->file_ = std::move(file);
  ex->pool_ = std::make_shared<tensor::ThreadPool>(options.threads);
  if (options.backend) {
    ex->backend_ = options.backend;
  } else {
    ex->owned_backend_ = std::make_unique<BlasLinearBackend>(ex->pool_);
    ex->backend_ = ex->owned_backend_.get();
  }
  const bool transpose_head = options.transpose_head && options.backend == nullptr;
  if (config.arch == Arch::kLlama) {
    CML_ASSIGN_OR_RETURN(ex->model_, make_llama(*ex->file_, config, range, *ex->backend_, ex->pool_, transpose_head));
  } else {
    CML_ASSIGN_OR_RETURN(ex->model_, make_gpt2(*ex->file_, config, range, *ex->backend_, ex->pool_, transpose_head));
  }
  CML_RETURN_IF_ERROR(ex->backend_->finalize());
  ex->max_context_ = options.max_context > 0 ? std::min(options.max_context, config.max_context) : config.max_context;
  ex->cache_ = std::make_unique<KvCache>(range.end - range.begin, config.kv_dim(), ex->max_context_,
                                         options.max_sequences, options.kv_reuse);
  return ex;
}

Result<std::unique_ptr<Executor>> Executor::open(const std::string& path, LayerRange range,
                                                 const ExecutorOptions& options) {
  CML_ASSIGN_OR_RETURN(std::unique_ptr<WeightFile> file, open_weight_file(path));
  ExecutorOptions o = options;
  if (file->format() == "safetensors") {
    const size_t slash = path.find_last_of('/');
    const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash);
    CML_ASSIGN_OR_RETURN(ConfigOverrides hf, read_hf_config_json(dir + "/config.json"));
    if (!o.overrides.n_heads) o.overrides.n_heads = hf.n_heads;
    if (!o.overrides.n_kv_heads) o.overrides.n_kv_heads = hf.n_kv_heads;
    if (!o.overrides.norm_eps) o.overrides.norm_eps = hf.norm_eps;
  }
  auto r = create(std::shared_ptr<const WeightFile>(std::move(file)), range, o);
  if (!r.is_ok()) return r.status().with_context(path);
  return r;
}

int64_t Executor::output_width() const {
  return returns_logits() ? config().vocab : config().dim;
}

Status Executor::start_sequence(SeqId seq) {
  std::lock_guard<std::mutex> lock(mu_);
  return cache_->add(seq);
}

Status Executor::drop_sequence(SeqId seq) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!cache_->drop(seq)) return not_found("sequence " + std::to_string(seq) + " is not active");
  return ok_status();
}

Result<int64_t> Executor::sequence_length(SeqId seq) {
  std::lock_guard<std::mutex> lock(mu_);
  KvSequence* s = cache_->find(seq);
  if (!s) return not_found("sequence " + std::to_string(seq) + " is not active");
  return s->length();
}

Status Executor::forward(std::span<const StepInput> steps, std::vector<float>& out) {
  std::lock_guard<std::mutex> lock(mu_);
  const ModelConfig& c = config();
  if (steps.empty()) return invalid_argument("forward() with no sequences");
  slices_.clear();
  tokens_.clear();
  std::set<SeqId> seen;
  int64_t rows = 0, out_rows = 0;
  for (const StepInput& s : steps) {
    KvSequence* kv = cache_->find(s.seq);
    if (!kv) return not_found("sequence " + std::to_string(s.seq) + " is not active");
    if (!seen.insert(s.seq).second) return invalid_argument("sequence appears twice in one step");
    const int64_t n = takes_tokens() ? static_cast<int64_t>(s.tokens.size()) : s.n_tokens;
    if (n <= 0) return invalid_argument("a step needs at least one token");
    if (takes_tokens()) {
      if (!s.hidden.empty()) return invalid_argument("the first layer range takes token ids, not hidden states");
    } else if (!s.tokens.empty() || static_cast<int64_t>(s.hidden.size()) != n * c.dim) {
      return invalid_argument("this layer range takes hidden states of " + std::to_string(n) + " x " +
                              std::to_string(c.dim) + " floats");
    }
    if (s.start_pos < 0 || s.start_pos > kv->length()) {
      return invalid_argument("start position " + std::to_string(s.start_pos) + " is past the sequence length " +
                              std::to_string(kv->length()));
    }
    if (s.start_pos + n > max_context_) {
      return resource_exhausted("sequence would exceed the context length " + std::to_string(max_context_));
    }
    slices_.push_back({kv, s.start_pos, n});
    rows += n;
    out_rows += returns_logits() && s.last_only ? 1 : n;
  }
  // Rewinding drops the later positions now, so that a failed step cannot leave stale ones counted.
  for (const SeqSlice& s : slices_) {
    if (s.start_pos < s.kv->length()) s.kv->set_length(s.start_pos);
  }
  h_.resize(static_cast<size_t>(rows * c.dim));
  if (takes_tokens()) {
    for (const StepInput& s : steps) tokens_.insert(tokens_.end(), s.tokens.begin(), s.tokens.end());
    CML_RETURN_IF_ERROR(model_->embed(tokens_, slices_, h_.data()));
  } else {
    float* dst = h_.data();
    for (const StepInput& s : steps) {
      std::memcpy(dst, s.hidden.data(), s.hidden.size() * sizeof(float));
      dst += s.hidden.size();
    }
  }
  CML_RETURN_IF_ERROR(model_->blocks(slices_, h_.data(), rows));
  if (returns_logits()) {
    // Gather the rows that need logits so the head runs once for the batch.
    const float* head_in = h_.data();
    if (out_rows != rows) {
      rows_buf_.resize(static_cast<size_t>(out_rows * c.dim));
      int64_t src = 0, dst = 0;
      for (size_t i = 0; i < steps.size(); ++i) {
        const int64_t n = slices_[i].n;
        const int64_t take = steps[i].last_only ? 1 : n;
        std::memcpy(rows_buf_.data() + dst * c.dim, h_.data() + (src + n - take) * c.dim,
                    static_cast<size_t>(take * c.dim) * sizeof(float));
        src += n;
        dst += take;
      }
      head_in = rows_buf_.data();
    }
    rows_buf_.resize(static_cast<size_t>(out_rows * c.dim));
    if (head_in == h_.data()) std::memcpy(rows_buf_.data(), h_.data(), h_.size() * sizeof(float));
    out.resize(static_cast<size_t>(out_rows * c.vocab));
    CML_RETURN_IF_ERROR(model_->head(rows_buf_.data(), out_rows, out.data()));
  } else {
    out.assign(h_.begin(), h_.end());
  }
  for (const SeqSlice& s : slices_) s.kv->set_length(s.start_pos + s.n);
  return ok_status();
}

Status Executor::forward(SeqId seq, int64_t start_pos, std::span<const int32_t> tokens, std::vector<float>& out,
                         bool last_only) {
  StepInput s{seq, start_pos, tokens, {}, static_cast<int64_t>(tokens.size()), last_only};
  return forward(std::span<const StepInput>(&s, 1), out);
}

Status Executor::forward_hidden(SeqId seq, int64_t start_pos, std::span<const float> hidden, std::vector<float>& out,
                                bool last_only) {
  const int64_t n = config().dim > 0 ? static_cast<int64_t>(hidden.size()) / config().dim : 0;
  StepInput s{seq, start_pos, {}, hidden, n, last_only};
  return forward(std::span<const StepInput>(&s, 1), out);
}

}  // namespace cml::model
