#include "groupcover/offload.h"

#include <charconv>
#include <cstdlib>

#include "groupcover/model_bundle.h"
#include "groupcover/net_link.h"

namespace cml::groupcover {
namespace {

Result<int64_t> env_int(const EnvLookup& env, const char* name, std::optional<int64_t> fallback) {
  auto v = env(name);
  if (!v) {
    if (fallback) return *fallback;
    return not_found(std::string(name) + " is not set");
  }
  int64_t out = 0;
  auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), out);
  if (ec != std::errc() || p != v->data() + v->size() || out < 0)
    return invalid_argument(std::string(name) + " must be a non-negative integer, got '" + *v + "'");
  return out;
}

Result<std::string> endpoint_for_rank(const EnvLookup& env, int64_t rank) {
  CML_ASSIGN_OR_RETURN(int64_t port, env_int(env, "MASTER_PORT", 22222));
  if (port + rank > 65535) return invalid_argument("MASTER_PORT + rank exceeds 65535");
  const std::string addr = env("MASTER_ADDR").value_or("127.0.0.1");
  const bool v6 = addr.find(':') != std::string::npos && addr.front() != '[';
  return "tcp://" + (v6 ? "[" + addr + "]" : addr) + ":" + std::to_string(port + rank);
}

}  // namespace

EnvLookup process_env() {
  return [](const char* name) -> std::optional<std::string> {
    const char* v = std::getenv(name);
    if (!v) return std::nullopt;
    return std::string(v);
  };
}

Result<std::string> worker_listen_from_env(const EnvLookup& env) {
  CML_ASSIGN_OR_RETURN(int64_t rank, env_int(env, "RANK", std::nullopt));
  CML_ASSIGN_OR_RETURN(int64_t world, env_int(env, "WORLD_SIZE", std::nullopt));
  if (rank < 1 || rank >= world) return invalid_argument("worker RANK must be in [1, WORLD_SIZE) (rank 0 is the TEE)");
  return endpoint_for_rank(env, rank);
}

Result<std::string> worker_address_from_env(const EnvLookup& env) {
  CML_ASSIGN_OR_RETURN(int64_t worker, env_int(env, "WORKER", std::nullopt));
  CML_ASSIGN_OR_RETURN(int64_t rank, env_int(env, "RANK", 0));
  CML_ASSIGN_OR_RETURN(int64_t world, env_int(env, "WORLD_SIZE", std::nullopt));
  if (worker >= world || rank >= world) return invalid_argument("RANK and WORKER must be below WORLD_SIZE");
  if (worker == rank) return invalid_argument("WORKER names this process's own RANK; it must name the worker's rank");
  return endpoint_for_rank(env, worker);
}

Result<std::unique_ptr<GroupCoverBackend>> make_offload_backend(const OffloadOptions& o) {
  std::string endpoint = o.worker;
  if (endpoint.empty()) {
    auto from_env = worker_address_from_env(process_env());
    if (!from_env.is_ok())
      return invalid_argument("--offload groupcover needs --worker ADDR (or WORKER/WORLD_SIZE in the environment): " +
                              from_env.status().message());
    endpoint = *from_env;
  }
  BackendConfig c;
  c.freivalds = o.freivalds;
  if (o.on_mismatch == "local") {
    c.on_mismatch = OnMismatch::kLocal;
  } else if (o.on_mismatch != "error") {
    return invalid_argument("--on-mismatch must be 'error' or 'local'");
  }
  if (!(o.timeout_s > 0 && o.timeout_s < 86400)) return invalid_argument("--worker-timeout must be in (0, 86400) s");
  c.timeout = std::chrono::duration_cast<Duration>(std::chrono::duration<double>(o.timeout_s));
  c.mask_scale = o.mask_scale;
  c.worker_label = endpoint;
  CML_ASSIGN_OR_RETURN(LinkFactory connect, worker_connector(endpoint));
  if (o.secrets_dir.empty()) return std::make_unique<GroupCoverBackend>(c, ObfuscationConfig{}, std::move(connect));
  if (o.key_file.empty())
    return invalid_argument("--secrets needs --key-file (the operator key the bundle is sealed with)");
  CML_ASSIGN_OR_RETURN(crypto::SecretBytes key, load_operator_key(o.key_file));
  CML_ASSIGN_OR_RETURN(ObfuscatedModel om, read_bundle_dir(o.secrets_dir, key.span()));
  return std::make_unique<GroupCoverBackend>(c, om.secrets, om.worker, std::move(connect));
}

}  // namespace cml::groupcover
