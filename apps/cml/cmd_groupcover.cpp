// `cml groupcover keygen | obfuscate | audit | generate`: offline obfuscation of a model into a worker
// bundle and a sealed TEE bundle, the attacker's-eye audit, and a greedy generation with offload.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>

#include "apps/cml/blas_env.h"
#include "apps/cml/commands.h"
#include "apps/cml/offload_flags.h"
#include "crypto/random.h"
#include "groupcover/audit.h"
#include "groupcover/model_bundle.h"
#include "model/executor.h"
#include "model/tokenizer.h"
#include "model/weights.h"

namespace cml::app {
namespace {

int fail(const char* what, const Status& st) {
  std::fprintf(stderr, "cml groupcover %s: %s\n", what, st.to_string().c_str());
  set_exit_code(1);
  return 1;
}

struct ObfFlags {
  std::string model, out, key_file, only;
  int group_size = 4;
  double max_condition = groupcover::ObfuscationConfig{}.max_condition;
  double max_dominance = groupcover::ObfuscationConfig{}.max_dominance;
  int64_t calls = 2000;
};

groupcover::ObfuscationConfig obf_config(const ObfFlags& f) {
  groupcover::ObfuscationConfig c;
  c.group_size = f.group_size;
  c.max_condition = f.max_condition;
  c.max_dominance = f.max_dominance;
  return c;
}

Result<std::vector<groupcover::NamedMatrix>> selected(const model::WeightFile& file, const std::string& only) {
  auto all = groupcover::select_linear_weights(file.tensors(), file.format());
  if (!only.empty()) {
    std::erase_if(all, [&](const groupcover::NamedMatrix& m) { return m.name.find(only) == std::string::npos; });
  }
  if (all.empty()) return not_found("no linear weight matrices selected in the model");
  return all;
}

void keygen(const std::string& out) {
  if (std::filesystem::exists(out)) {
    fail("keygen", invalid_argument(out + " exists; refusing to overwrite a key"));
    return;
  }
  auto key = crypto::random_secret(32);
  std::string hex = to_hex(key.span()) + "\n";
  Status st = write_file(out, as_bytes(hex));
  crypto::secure_wipe({reinterpret_cast<uint8_t*>(hex.data()), hex.size()});
  if (!st.is_ok()) {
    fail("keygen", st);
    return;
  }
  std::filesystem::permissions(out, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write,
                               std::filesystem::perm_options::replace);
  std::printf("wrote a new 32-byte operator key to %s (mode 600)\n", out.c_str());
}

void obfuscate(const ObfFlags& f) {
  auto key = groupcover::load_operator_key(f.key_file);
  if (!key.is_ok()) return (void)fail("obfuscate", key.status());
  auto file = model::open_weight_file(f.model);
  if (!file.is_ok()) return (void)fail("obfuscate", file.status());
  auto mats = selected(**file, f.only);
  if (!mats.is_ok()) return (void)fail("obfuscate", mats.status());
  auto om = groupcover::obfuscate_model(*mats, obf_config(f), [](size_t done, size_t total, const std::string& name) {
    std::fprintf(stderr, "\r[%zu/%zu] %-60s", done, total, name.c_str());
  });
  std::fprintf(stderr, "\n");
  if (!om.is_ok()) return (void)fail("obfuscate", om.status());
  Status st = groupcover::write_bundle_dir(f.out, *om, key->span());
  if (!st.is_ok()) return (void)fail("obfuscate", st);
  nlohmann::json j = {{"matrices", mats->size()},
                      {"worker_bundle", f.out + "/" + groupcover::kWorkerBundleFile},
                      {"tee_bundle", f.out + "/" + groupcover::kTeeBundleFile},
                      {"model_digest", to_hex(om->worker->digest)},
                      {"group_size", f.group_size},
                      {"max_condition", om->stats.max_condition},
                      {"max_self_cos", om->stats.max_self_cos},
                      {"redraws", om->stats.redraws},
                      {"groups_over_bound", om->stats.over_bound_groups}};
  std::printf("%s\n", j.dump(2).c_str());
}

void audit(const ObfFlags& f) {
  auto file = model::open_weight_file(f.model);
  if (!file.is_ok()) return (void)fail("audit", file.status());
  auto mats = selected(**file, f.only);
  if (!mats.is_ok()) return (void)fail("audit", mats.status());
  groupcover::AuditOptions opt;
  opt.calls = f.calls;
  auto rep = groupcover::run_audit(*mats, obf_config(f), opt);
  if (!rep.is_ok()) return (void)fail("audit", rep.status());
  nlohmann::json j;
  to_json(j, *rep);
  j["model"] = f.model;
  std::error_code ec;
  std::filesystem::create_directories(f.out, ec);
  Status st = write_file(f.out + "/audit.json", as_bytes(j.dump(2) + "\n"));
  if (!st.is_ok()) return (void)fail("audit", st);
  double known = 0, unknown = 0, perm = 0;
  for (const auto& m : rep->matrices) {
    known = std::max(known, m.best_cos_perm_known_max);
    unknown = std::max(unknown, m.best_cos_perm_unknown_max);
    perm = std::max(perm, m.perm_recovered_fraction);
  }
  nlohmann::json s = {{"matrices", rep->matrices.size()},       {"worst_best_cos_perm_known", known},
                      {"worst_best_cos_perm_unknown", unknown}, {"worst_perm_recovered_fraction", perm},
                      {"transcript", j["transcript"]},          {"masks", j["masks"]},
                      {"report", f.out + "/audit.json"}};
  std::printf("%s\n", s.dump(2).c_str());
}

struct GenFlags {
  std::string model, tokenizer, prompt;
  int steps = 64;
  OffloadFlags offload;
};

void generate(const GenFlags& f) {
  auto opened = model::open_weight_file(f.model);
  if (!opened.is_ok()) return (void)fail("generate", opened.status());
  std::shared_ptr<const model::WeightFile> file = std::move(opened).value();
  auto tok = f.tokenizer.empty() ? model::tokenizer_from_gguf(*file) : model::open_tokenizer(f.tokenizer);
  if (!tok.is_ok()) return (void)fail("generate", tok.status());
  auto backend = make_backend_for_flags(f.offload);
  if (!backend.is_ok()) return (void)fail("generate", backend.status());
  model::ExecutorOptions opt;
  opt.backend = backend->get();
  auto ex = model::Executor::create(file, {}, opt);
  if (!ex.is_ok()) return (void)fail("generate", ex.status());
  if (Status st = (*ex)->start_sequence(1); !st.is_ok()) return (void)fail("generate", st);
  std::vector<int32_t> ids = (*tok)->encode(f.prompt, true);
  std::vector<float> logits;
  int64_t pos = 0;
  int32_t prev = ids.back();
  for (int s = 0; s < f.steps; ++s) {
    Status st = (*ex)->forward(1, pos, ids, logits, true);
    if (!st.is_ok()) return (void)fail("generate", st);
    pos += int64_t(ids.size());
    const int32_t next = int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
    if (next == (*tok)->eos_id()) break;
    std::printf("%s", (*tok)->decode_token(prev, next).c_str());
    std::fflush(stdout);
    prev = next;
    ids = {next};
  }
  std::printf("\n");
  if (*backend) {
    auto st = (*backend)->stats();
    std::fprintf(stderr,
                 "groupcover: %llu requests, %llu masks (%llu pool misses, %llu refills), %llu Freivalds checks, "
                 "%llu failures\n",
                 (unsigned long long)st.calls, (unsigned long long)st.masks_taken, (unsigned long long)st.pool_misses,
                 (unsigned long long)st.pool_refills, (unsigned long long)st.freivalds_checks,
                 (unsigned long long)st.freivalds_failures);
  }
}

const CommandRegistrar kGroupCover("groupcover", [](CLI::App& root) {
  auto* gc =
      root.add_subcommand("groupcover", "GroupCover: obfuscated offload of weight products to an untrusted worker");
  gc->require_subcommand(1);

  auto* kg = gc->add_subcommand("keygen", "Write a fresh 32-byte operator key (hex) for sealing TEE bundles");
  auto kout = std::make_shared<std::string>();
  kg->add_option("--out", *kout, "Key file to create")->required();
  kg->callback([kout] { keygen(*kout); });

  auto f = std::make_shared<ObfFlags>();
  auto* ob = gc->add_subcommand("obfuscate", "Obfuscate every linear weight: worker bundle + sealed TEE bundle");
  ob->add_option("--model", f->model, "Model file (GGUF, safetensors, llama2.c)")->required();
  ob->add_option("--out", f->out, "Output directory")->required();
  ob->add_option("--key-file", f->key_file, "Operator key (32 raw bytes or 64 hex); see keygen")->required();
  ob->add_option("--group-size", f->group_size, "Rows mixed together (power of two)")->capture_default_str();
  ob->add_option("--max-condition", f->max_condition, "Redraw mixes above this condition number")
      ->capture_default_str();
  ob->add_option("--max-dominance", f->max_dominance, "Redraw mixes keeping a row this close in direction")
      ->capture_default_str();
  ob->add_option("--only", f->only, "Only tensors whose name contains this");
  ob->callback([f] {
    reexec_with_blas_core_if_needed();
    obfuscate(*f);
  });

  auto af = std::make_shared<ObfFlags>();
  auto* au = gc->add_subcommand("audit", "What an attacker with W'' and the worker's transcript can recover");
  au->add_option("--model", af->model, "Model file")->required();
  au->add_option("--out", af->out, "Directory for audit.json")->required();
  au->add_option("--calls", af->calls, "Masked requests recorded")->capture_default_str();
  au->add_option("--group-size", af->group_size, "Rows mixed together")->capture_default_str();
  au->add_option("--max-condition", af->max_condition, "Condition bound")->capture_default_str();
  au->add_option("--only", af->only, "Only tensors whose name contains this");
  au->callback([af] { audit(*af); });

  auto g = std::make_shared<GenFlags>();
  auto* ge = gc->add_subcommand("generate", "Greedy generation with the weight products offloaded");
  ge->add_option("--model", g->model, "Model file")->required();
  ge->add_option("--tokenizer", g->tokenizer, "Tokenizer file (default: the GGUF's own)");
  ge->add_option("--prompt", g->prompt, "Prompt text");
  ge->add_option("--steps", g->steps, "Tokens to generate")->capture_default_str();
  add_offload_flags(*ge, g->offload);
  ge->callback([g] {
    reexec_with_blas_core_if_needed();
    if (g->offload.offload.empty()) g->offload.offload = "groupcover";
    generate(*g);
  });
});

}  // namespace
}  // namespace cml::app
