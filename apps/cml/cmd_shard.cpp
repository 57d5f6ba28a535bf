// cml shard: writes a shard manifest for a model (balanced layer ranges, per-tensor SHA-256).
#include <CLI/CLI.hpp>
#include <cstdio>

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
};

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
  c->callback([f] { set_exit_code(run_shard(*f)); });
});

}  // namespace
}  // namespace cml::app
