#include "groupcover/model_bundle.h"

#include <algorithm>
#include <filesystem>

#include "model/weights.h"

namespace cml::groupcover {
namespace {

bool contains(const std::string& s, std::string_view needle) {
  return s.find(needle) != std::string::npos;
}

}  // namespace

Result<ObfuscatedModel> obfuscate_model(std::span<const NamedMatrix> matrices, const ObfuscationConfig& config,
                                        const std::function<void(size_t, size_t, const std::string&)>& progress) {
  if (matrices.empty()) return invalid_argument("no weight matrices to obfuscate");
  if (matrices.size() > kMaxBundleTensors) return invalid_argument("too many weight matrices");
  auto secrets = std::make_shared<TeeSecrets>();
  secrets->group_size = uint32_t(config.group_size);
  std::vector<std::vector<float>> w2s;
  ObfuscationStats worst;
  for (size_t i = 0; i < matrices.size(); ++i) {
    const NamedMatrix& nm = matrices[i];
    if (nm.w.out > kMaxBundleDim || nm.w.in > kMaxBundleDim)
      return invalid_argument("matrix " + nm.name + " is too large for a bundle");
    auto om = obfuscate_matrix(nm.w, nm.bias, config);
    if (!om.is_ok()) return om.status().with_context("obfuscating " + nm.name);
    worst.max_condition = std::max(worst.max_condition, om->stats.max_condition);
    worst.max_self_cos = std::max(worst.max_self_cos, om->stats.max_self_cos);
    worst.redraws += om->stats.redraws;
    worst.over_bound_groups += om->stats.over_bound_groups;
    secrets->entries.push_back({nm.name, uint32_t(i), std::move(om->secrets)});
    w2s.push_back(std::move(om->w2));
    if (progress) progress(i + 1, matrices.size(), nm.name);
  }
  std::vector<MatrixRef> refs;
  for (size_t i = 0; i < w2s.size(); ++i)
    refs.push_back({uint32_t(matrices[i].w.out), uint32_t(matrices[i].w.in), w2s[i].data()});
  auto worker = std::make_shared<WorkerBundle>(make_worker_bundle(refs));
  secrets->worker_digest = worker->digest;
  return ObfuscatedModel{worker, secrets, worst};
}

std::vector<NamedMatrix> select_linear_weights(const std::vector<model::TensorRef>& tensors,
                                               const std::string& format) {
  std::vector<NamedMatrix> out;
  for (const auto& t : tensors) {
    if (t.shape.size() != 2 || t.data == nullptr) continue;
    if (t.dtype != tensor::DType::kF32 && t.dtype != tensor::DType::kF16 && t.dtype != tensor::DType::kBF16) continue;
    const std::string& n = t.name;
    if (contains(n, "norm") || contains(n, "ln_") || contains(n, "wpe") || contains(n, "position")) continue;
    const bool conv1d = format == "safetensors" && (contains(n, "attn.c_attn") || contains(n, "attn.c_proj") ||
                                                    contains(n, "mlp.c_fc") || contains(n, "mlp.c_proj"));
    NamedMatrix m;
    m.name = n;
    m.w.data = t.data;
    m.w.dtype = t.dtype;
    m.w.transposed = conv1d;
    m.w.out = conv1d ? t.shape[1] : t.shape[0];
    m.w.in = conv1d ? t.shape[0] : t.shape[1];
    if (m.w.out < 2) continue;
    if (n.size() > 7 && n.compare(n.size() - 7, 7, ".weight") == 0) {
      const std::string bias_name = n.substr(0, n.size() - 7) + ".bias";
      for (const auto& b : tensors)
        if (b.name == bias_name && b.dtype == tensor::DType::kF32 && b.shape.size() == 1 && b.shape[0] == m.w.out)
          m.bias = static_cast<const float*>(b.data);
    }
    out.push_back(m);
  }
  return out;
}

Status write_bundle_dir(const std::string& dir, const ObfuscatedModel& m, ByteSpan operator_key) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return unavailable("cannot create " + dir + ": " + ec.message());
  CML_ASSIGN_OR_RETURN(Bytes sealed, seal_tee_bundle(*m.secrets, operator_key));
  CML_RETURN_IF_ERROR(write_file(dir + "/" + kWorkerBundleFile, m.worker->storage));
  CML_RETURN_IF_ERROR(write_file(dir + "/" + kTeeBundleFile, sealed));
  std::filesystem::permissions(dir + "/" + kTeeBundleFile,
                               std::filesystem::perms::owner_read | std::filesystem::perms::owner_write,
                               std::filesystem::perm_options::replace, ec);
  return ok_status();
}

Result<std::shared_ptr<const WorkerBundle>> read_worker_bundle(const std::string& path) {
  CML_ASSIGN_OR_RETURN(Bytes raw, read_file(path, size_t(1) << 40));
  auto parsed = parse_worker_bundle(std::move(raw));
  if (!parsed.is_ok()) return parsed.status().with_context(path);
  return std::shared_ptr<const WorkerBundle>(std::make_shared<WorkerBundle>(std::move(parsed).value()));
}

Result<ObfuscatedModel> read_bundle_dir(const std::string& dir, ByteSpan operator_key) {
  CML_ASSIGN_OR_RETURN(auto worker, read_worker_bundle(dir + "/" + kWorkerBundleFile));
  CML_ASSIGN_OR_RETURN(Bytes sealed, read_file(dir + "/" + kTeeBundleFile, size_t(1) << 34));
  auto secrets = open_tee_bundle(sealed, operator_key);
  if (!secrets.is_ok()) return secrets.status().with_context(dir + "/" + kTeeBundleFile);
  if (secrets->worker_digest != worker->digest)
    return invalid_argument("bundle directory " + dir + ": worker bundle does not match the TEE bundle");
  for (const auto& e : secrets->entries)
    if (e.index >= worker->matrices.size() || worker->matrices[e.index].out != uint32_t(e.secrets.out) ||
        worker->matrices[e.index].in != uint32_t(e.secrets.in))
      return invalid_argument("bundle directory " + dir + ": TEE entry " + e.name + " does not fit the worker bundle");
  ObfuscatedModel m;
  m.worker = worker;
  m.secrets = std::make_shared<TeeSecrets>(std::move(secrets).value());
  return m;
}

}  // namespace cml::groupcover
