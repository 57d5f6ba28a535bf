// cml orchestrate: verifies the stages of a manifest, links them, and streams a generation.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "apps/cml/commands.h"
#include "apps/cml/pipeline_cli.h"

namespace cml::app {
namespace {

struct OrchFlags {
  std::string manifest, model;
  RunFlags run;
  bool shutdown = false, table = true;
};

int run_orchestrate(const OrchFlags& f) {
  auto m = pipeline::load_manifest(f.manifest);
  if (!m) {
    std::fprintf(stderr, "cml orchestrate: %s\n", m.status().to_string().c_str());
    return 2;
  }
  auto r = run_generation(*m, f.model.empty() ? m->model.file : f.model, f.run, stdout, f.shutdown);
  if (!r) {
    std::fprintf(stderr, "cml orchestrate: %s\n", r.status().to_string().c_str());
    return 1;
  }
  if (f.table) print_run_table(*m, *r, stdout);
  return 0;
}

const CommandRegistrar kOrchestrate("orchestrate", [](CLI::App& root) {
  auto f = std::make_shared<OrchFlags>();
  auto* c = root.add_subcommand("orchestrate", "Verify and link the stages of a manifest, then generate");
  c->add_option("--manifest", f->manifest, "Shard manifest")->required();
  c->add_option("--prompt", f->run.prompt, "Prompt text")->capture_default_str();
  c->add_option("--model", f->model, "Model file for the tokenizer (default: the manifest's model.file)");
  c->add_option("--tokenizer", f->run.tokenizer, "Tokenizer file or directory");
  c->add_option("-n,--max-tokens", f->run.max_new_tokens, "Tokens to generate")->capture_default_str();
  c->add_option("--temperature", f->run.temperature, "0 = greedy")->capture_default_str();
  c->add_option("--top-k", f->run.top_k, "0 = all")->capture_default_str();
  c->add_option("--top-p", f->run.top_p, "1 = off")->capture_default_str();
  c->add_option("--seed", f->run.seed, "Sampling seed")->capture_default_str();
  c->add_option("--relay", f->run.downstream_overrides,
                "Where stage i connects its data-out link (repeatable, in stage order; VSock relays)");
  c->add_option("--return-cpu", f->run.return_cpu,
                "Run the thread that reads the last stage's results on this CPU (default: wherever the scheduler "
                "puts it)")
      ->check(CLI::NonNegativeNumber);
  c->add_option("--connect-timeout-ms", f->run.connect_timeout_ms)->capture_default_str();
  c->add_option("--step-timeout-ms", f->run.step_timeout_ms)->capture_default_str();
  c->add_option("--mock-image", f->run.mock_image,
                "When the manifest has orchestrator.attest with mock evidence: measurement image = SHA-256(LABEL)")
      ->capture_default_str();
  c->add_option("--nsm-device", f->run.platform.nsm_device, "Nitro attestation: the NSM device")->capture_default_str();
  c->add_option("--tsm-root", f->run.platform.tsm_root, "SEV-SNP/TDX attestation: the configfs-tsm report directory")
      ->capture_default_str();
  c->add_option("--sev-guest", f->run.platform.sev_guest, "SEV-SNP attestation: fallback device without configfs-tsm")
      ->capture_default_str();
  c->add_flag("--shutdown", f->shutdown, "Shut the stages down afterwards");
  c->add_flag("!--no-table", f->table, "Do not print the figures table");
  c->callback([f] { set_exit_code(run_orchestrate(*f)); });
});

}  // namespace
}  // namespace cml::app
