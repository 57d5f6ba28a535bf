// cml stage: runs one pipeline stage (inside a TEE in production) until the orchestrator shuts it down.
//
// When its manifest entry names a GroupCover offload, the stage builds the GroupCover backend from it (the
// operator key for a sealed TEE bundle from --offload-key-file or CML_OFFLOAD_KEY_FILE) and loads its
// layers onto it. Loading finalizes the backend, which connects to the worker and registers W'': a worker
// that cannot be reached fails the stage at start (exit 1, naming the worker) before it listens. A worker
// lost later fails the steps that need it (the orchestrator gets the stage's error naming the worker) and
// the backend reconnects on the next step, re-registering W'' with a restarted worker.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "apps/cml/commands.h"
#include "apps/cml/offload_flags.h"
#include "apps/cml/pipeline_cli.h"
#include "pipeline/model_executor.h"
#include "pipeline/stage.h"

namespace cml::app {
namespace {

struct StageFlags {
  std::string manifest, model, control, data, mock_image = "cml-stage";
  std::string offload_key_file;  // operator key for a sealed GroupCover TEE bundle (else CML_OFFLOAD_KEY_FILE)
  uint32_t index = 0;
  int threads = 1;
  int data_cpu = -1;  // StageOptions::data_cpu
  int64_t max_sequences = 64;
  bool batch_head = false;
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
  pipeline::StageOptions so;
  so.data_cpu = f.data_cpu;
  if (Status st = pipeline::check_stage_options(so, f.index); !st.is_ok()) {  // before any weights load
    std::fprintf(stderr, "cml stage %u: %s\n", f.index, st.to_string().c_str());
    return 1;
  }
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
  const std::string key_file = stage_offload_key_file(f.offload_key_file);
  auto backend = make_stage_backend(spec, key_file);
  if (!backend) {
    std::fprintf(stderr, "cml stage %u: %s\n", f.index, backend.status().to_string().c_str());
    return 1;
  }
  groupcover::GroupCoverBackend* gc = backend->get();  // owned by the executor below
  if (gc) {
    std::fprintf(stderr, "stage %u: offloading weight products to GroupCover worker %s (%s%s%s)\n", f.index,
                 spec.offload.worker->to_string().c_str(),
                 spec.offload.secrets_dir.empty() ? "session mode: obfuscating at load" : "bundles from ",
                 spec.offload.secrets_dir.c_str(), spec.offload.freivalds ? ", Freivalds checks" : "");
  }
  if (!key_file.empty() && (!gc || spec.offload.secrets_dir.empty())) {
    std::fprintf(stderr, "stage %u: note: operator key file %s not used (this stage has no sealed bundle)\n", f.index,
                 key_file.c_str());
  }
  model::ExecutorOptions eo;
  eo.threads = f.threads;
  eo.max_sequences = f.max_sequences;
  eo.max_context = m->activation.max_seq_len;
  eo.transpose_head = f.batch_head;
  auto ex = pipeline::ModelStageExecutor::create(*file, spec.layer_begin, spec.layer_end, eo, std::move(*backend));
  if (!ex) {
    std::fprintf(stderr, "cml stage %u: %s%s\n", f.index, gc ? "offload: " : "", ex.status().to_string().c_str());
    return 1;
  }
  pipeline::SecureNetworkConfig nc;
  nc.provider = provider->get();
  nc.verifiers = pipeline_verifiers(*m);
  auto net = pipeline::make_secure_network(nc);
  pipeline::StageRuntime rt(*m, f.index, std::move(*ex), *net, so);
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
  if (gc) {
    auto g = gc->stats();
    std::fprintf(stderr,
                 "stage %u: groupcover: %llu worker calls, %llu Freivalds checks (%llu failed, %llu recomputed "
                 "locally), %llu reconnects\n",
                 f.index, static_cast<unsigned long long>(g.calls), static_cast<unsigned long long>(g.freivalds_checks),
                 static_cast<unsigned long long>(g.freivalds_failures),
                 static_cast<unsigned long long>(g.local_fallbacks), static_cast<unsigned long long>(g.reconnects));
  }
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
  c->add_option("--data-cpu", f->data_cpu,
                "Run the data thread (receive, compute, send) on this CPU; for stages sharing a host, neighbours "
                "on different CPUs (default: wherever the scheduler puts it)")
      ->check(CLI::NonNegativeNumber);
  c->add_flag("--batch-head", f->batch_head,
              "Last stage: keep a transposed copy of the output head (vocab x dim more memory) so that steps of "
              "several sequences run faster; a single sequence's step gets slower");
  c->add_option("--offload-key-file", f->offload_key_file,
                "Operator key that seals this stage's GroupCover TEE bundle (manifest offload.secrets); "
                "default: $CML_OFFLOAD_KEY_FILE");
  c->callback([f] { set_exit_code(run_stage(*f)); });
});

}  // namespace
}  // namespace cml::app
