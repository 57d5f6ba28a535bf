// cml shard: writes a shard manifest for a model (balanced layer ranges, per-tensor SHA-256).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <map>

#include "apps/cml/commands.h"
#include "attest/mock.h"
#include "pipeline/model_executor.h"

namespace cml::app {
namespace {

struct ShardFlags {
  std::string model, output = "manifest.json", name, attestation = "mock", mock_image;
  uint32_t stages = 2;
  uint16_t base_port = 7100;
  uint32_t max_seq_len = 0;
  std::vector<std::string> expect, endpoints;
  // GroupCover offload: --offload-stage I (repeatable); --offload-worker and --offload-secrets given once
  // (for every offloaded stage) or once per --offload-stage, in the same order.
  std::vector<uint32_t> offload_stages;
  std::vector<std::string> offload_workers, offload_secrets;
  bool offload_freivalds = false;
  std::string offload_on_mismatch = "error";
  double offload_timeout_s = 0;  // 0: not written (the backend's default)
};

// The offload entries the --offload-* flags describe, by stage index.
Result<std::map<uint32_t, pipeline::Offload>> offload_entries(const ShardFlags& f) {
  std::map<uint32_t, pipeline::Offload> out;
  const size_t n = f.offload_stages.size();
  if (n == 0) {
    if (!f.offload_workers.empty() || !f.offload_secrets.empty() || f.offload_freivalds ||
        f.offload_on_mismatch != "error" || f.offload_timeout_s != 0)
      return invalid_argument("--offload-* settings need --offload-stage I (the stage that offloads)");
    return out;
  }
  if (f.offload_workers.size() != 1 && f.offload_workers.size() != n)
    return invalid_argument("--offload-worker: give one address for all offloaded stages or one per --offload-stage (" +
                            std::to_string(n) + ")");
  if (f.offload_secrets.size() > 1 && f.offload_secrets.size() != n)
    return invalid_argument(
        "--offload-secrets: give one directory for all offloaded stages or one per "
        "--offload-stage (" +
        std::to_string(n) + ")");
  for (size_t k = 0; k < n; ++k) {
    const uint32_t i = f.offload_stages[k];
    if (out.count(i)) return invalid_argument("--offload-stage " + std::to_string(i) + " is given twice");
    pipeline::Offload o;
    o.kind = pipeline::Offload::Kind::kGroupCover;
    const std::string& w = f.offload_workers.size() == 1 ? f.offload_workers[0] : f.offload_workers[k];
    auto ep = pipeline::parse_endpoint(w.find("://") == std::string::npos ? "tcp://" + w : w);
    if (!ep) return ep.status().with_context("--offload-worker");
    o.worker = *ep;
    if (!f.offload_secrets.empty())
      o.secrets_dir = f.offload_secrets.size() == 1 ? f.offload_secrets[0] : f.offload_secrets[k];
    o.freivalds = f.offload_freivalds;
    if (f.offload_on_mismatch == "local") {
      o.on_mismatch = pipeline::Offload::OnMismatch::kLocal;
    } else if (f.offload_on_mismatch != "error") {
      return invalid_argument("--offload-on-mismatch: '" + f.offload_on_mismatch + "' is not error or local");
    }
    if (f.offload_timeout_s != 0) o.timeout_s = f.offload_timeout_s;
    out[i] = o;
  }
  return out;
}

int run_shard(const ShardFlags& f) {
  pipeline::ShardOptions o;
  o.stages = f.stages;
  o.model_name = f.name;
  o.base_port = f.base_port;
  o.max_seq_len = f.max_seq_len;
  auto t = attest::parse_evidence_type(f.attestation);
  if (!t) {
    std::fprintf(stderr, "cml shard: --attestation: %s\n", t.status().to_string().c_str());
    return 2;
  }
  o.attestation = *t;
  for (const auto& e : f.expect) {
    auto eq = e.find('=');
    auto v = eq == std::string::npos ? Result<Bytes>(invalid_argument("x")) : from_hex(e.substr(eq + 1));
    if (eq == std::string::npos || eq == 0 || !v || v->empty()) {
      std::fprintf(stderr, "cml shard: --expect '%s' is not NAME=HEX\n", e.c_str());
      return 2;
    }
    o.expect[e.substr(0, eq)] = *v;
  }
  if (!f.mock_image.empty()) {
    for (auto& [k, v] : attest::mock_measurements(f.mock_image)) o.expect[k] = v;
  }
  for (const auto& e : f.endpoints) {
    auto comma = e.find(',');
    if (comma == std::string::npos) {
      std::fprintf(stderr, "cml shard: --endpoints '%s' is not CONTROL,DATA\n", e.c_str());
      return 2;
    }
    o.endpoints.push_back({e.substr(0, comma), e.substr(comma + 1)});
  }
  auto offload = offload_entries(f);
  if (!offload) {
    std::fprintf(stderr, "cml shard: %s\n", offload.status().to_string().c_str());
    return 2;
  }
  o.offload = std::move(*offload);
  auto m = pipeline::shard_model(f.model, o);
  if (!m) {
    std::fprintf(stderr, "cml shard: %s\n", m.status().to_string().c_str());
    return 1;
  }
  std::string text = pipeline::manifest_to_json(*m);
  if (Status st = write_file(f.output, as_bytes(text)); !st.is_ok()) {
    std::fprintf(stderr, "cml shard: %s\n", st.to_string().c_str());
    return 1;
  }
  std::fprintf(stderr, "wrote %s: %u stages of %s (", f.output.c_str(), f.stages, m->model.name.c_str());
  for (const auto& s : m->stages) {
    std::fprintf(stderr, "%s[%u,%u) %zu tensors", s.index ? ", " : "", s.layer_begin, s.layer_end, s.weights.size());
    if (s.offload.kind == pipeline::Offload::Kind::kGroupCover)
      std::fprintf(stderr, " offloaded to %s", s.offload.worker->to_string().c_str());
  }
  std::fprintf(stderr, ")\n");
  return 0;
}

const CommandRegistrar kShard("shard", [](CLI::App& root) {
  auto f = std::make_shared<ShardFlags>();
  auto* c = root.add_subcommand("shard", "Write a shard manifest: balanced layer ranges and per-tensor SHA-256");
  c->add_option("--model", f->model, "Weight file, or synthetic:gpt2-124m / synthetic:llama-tiny")->required();
  c->add_option("--stages", f->stages, "Number of stages")->capture_default_str()->check(CLI::Range(1, 256));
  c->add_option("-o,--output", f->output, "Manifest file to write")->capture_default_str();
  c->add_option("--name", f->name, "Model name (default: the file name)");
  c->add_option("--attestation", f->attestation, "Stage attestation type: mock, nitro, sev-snp, tdx")
      ->capture_default_str();
  c->add_option("--expect", f->expect, "Expected measurement of every stage, NAME=HEX (repeatable)");
  c->add_option("--mock-image", f->mock_image, "Mock attestation: expect image = SHA-256(LABEL)");
  c->add_option("--endpoints", f->endpoints,
                "CONTROL,DATA endpoints of the next stage (repeatable, in stage order; default 127.0.0.1 ports)");
  c->add_option("--base-port", f->base_port, "Default endpoints: stage i uses PORT+2i (control), PORT+2i+1 (data)")
      ->capture_default_str();
  c->add_option("--max-seq-len", f->max_seq_len, "Longest sequence (default: the model's context)");
  c->add_option("--offload-stage", f->offload_stages,
                "Stage whose weight products go to a GroupCover worker (repeatable)");
  c->add_option("--offload-worker", f->offload_workers,
                "Worker address tcp://HOST:PORT: once for all offloaded stages, or once per --offload-stage");
  c->add_option("--offload-secrets", f->offload_secrets,
                "Bundle directory from `cml groupcover obfuscate` as the stage will see it (default: session "
                "mode, the stage obfuscates at load); once, or once per --offload-stage");
  c->add_flag("--offload-freivalds", f->offload_freivalds, "Offloaded stages check every worker result");
  c->add_option("--offload-on-mismatch", f->offload_on_mismatch,
                "Failed check: 'error' (fail the step) or 'local' (recompute in the TEE; needs --offload-freivalds)")
      ->capture_default_str();
  c->add_option("--offload-timeout", f->offload_timeout_s, "Seconds per worker request (default: 10)");
  c->callback([f] { set_exit_code(run_shard(*f)); });
});

}  // namespace
}  // namespace cml::app
