// cml stage: runs one pipeline stage (inside a TEE in production) until the orchestrator shuts it down.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "apps/cml/commands.h"
#include "apps/cml/pipeline_cli.h"
#include "pipeline/model_executor.h"
#include "pipeline/stage.h"

namespace cml::app {
namespace {

struct StageFlags {
  std::string manifest, model, control, data, mock_image = "cml-stage";
  uint32_t index = 0;
  int threads = 1;
  int64_t max_sequences = 64;
  attest::PlatformPaths platform;
};

int run_stage(const StageFlags& f) {
  auto m = pipeline::load_manifest(f.manifest);
  if (!m) {
    std::fprintf(stderr, "cml stage: %s\n", m.status().to_string().c_str());
    return 2;
  }
  if (f.index >= m->stages.size()) {
    std::fprintf(stderr, "cml stage: index %u out of range (the manifest has %zu stages)\n", f.index, m->stages.size());
    return 2;
  }
  const auto& spec = m->stages[f.index];
  // The attestation device first: a stage that cannot attest fails before loading any weights.
  auto provider = stage_provider(spec.attestation, f.mock_image, f.platform);
  if (!provider) {
    std::fprintf(stderr, "cml stage %u: %s\n", f.index, provider.status().to_string().c_str());
    return 1;
  }
  const std::string source = f.model.empty() ? m->model.file : f.model;
  auto file = pipeline::open_model_source(source);
  if (!file) {
    std::fprintf(stderr, "cml stage %u: %s\n", f.index, file.status().to_string().c_str());
    return 1;
  }
  model::ExecutorOptions eo;
  eo.threads = f.threads;
  eo.max_sequences = f.max_sequences;
  eo.max_context = m->activation.max_seq_len;
  auto ex = pipeline::ModelStageExecutor::create(*file, spec.layer_begin, spec.layer_end, eo);
  if (!ex) {
    std::fprintf(stderr, "cml stage %u: %s\n", f.index, ex.status().to_string().c_str());
    return 1;
  }
  pipeline::SecureNetworkConfig nc;
  nc.provider = provider->get();
  nc.verifiers = pipeline_verifiers(*m);
  auto net = pipeline::make_secure_network(nc);
  pipeline::StageRuntime rt(*m, f.index, std::move(*ex), *net);
  if (Status st = rt.start(f.control, f.data); !st.is_ok()) {
    std::fprintf(stderr, "cml stage %u: %s\n", f.index, st.to_string().c_str());
    return 1;
  }
  std::fprintf(stderr, "stage %u: layers [%u, %u), control %s, data %s\n", f.index, spec.layer_begin, spec.layer_end,
               rt.control_endpoint().c_str(), rt.data_endpoint().c_str());
  rt.wait_shutdown(Deadline::never());
  rt.stop();
  auto s = rt.stats();
  std::fprintf(stderr, "stage %u: shut down after %llu steps (%.1f ms compute)\n", f.index,
               static_cast<unsigned long long>(s.steps), double(s.compute_us) / 1000.0);
  return 0;
}

const CommandRegistrar kStage("stage", [](CLI::App& root) {
  auto f = std::make_shared<StageFlags>();
  auto* c = root.add_subcommand("stage", "Run one pipeline stage (its layer range) until shut down");
  c->add_option("--manifest", f->manifest, "Shard manifest (cml shard)")->required();
  c->add_option("--index", f->index, "Stage index")->required();
  c->add_option("--model", f->model, "Weight file (default: the manifest's model.file)");
  c->add_option("--control", f->control, "Override the control endpoint to listen on");
  c->add_option("--data", f->data, "Override the data endpoint to listen on");
  c->add_option("--mock-image", f->mock_image, "Mock attestation: measurement image = SHA-256(LABEL)")
      ->capture_default_str();
  c->add_option("--nsm-device", f->platform.nsm_device, "Nitro attestation: the NSM device")->capture_default_str();
  c->add_option("--tsm-root", f->platform.tsm_root, "SEV-SNP/TDX attestation: the configfs-tsm report directory")
      ->capture_default_str();
  c->add_option("--sev-guest", f->platform.sev_guest, "SEV-SNP attestation: fallback device without configfs-tsm")
      ->capture_default_str();
  c->add_option("--threads", f->threads, "Compute threads")->capture_default_str()->check(CLI::Range(1, 256));
  c->add_option("--max-sequences", f->max_sequences, "Sequences in flight")->capture_default_str();
  c->callback([f] { set_exit_code(run_stage(*f)); });
});

}  // namespace
}  // namespace cml::app
