// `--offload groupcover` flags for any command that builds an Executor (cml generate, cml stage):
//
//   OffloadFlags flags;  add_offload_flags(*cmd, flags);
//   …
//   auto backend = make_backend_for_flags(flags);   // null when --offload is not given
//   if (!backend.is_ok()) …;  options.backend = backend->get();
//
// The backend must outlive the executor.
//
// `cml stage` takes its offload from its manifest entry instead (stage_offload_options below); only the
// operator key that unseals the TEE bundle comes from outside the manifest: --offload-key-file FILE or
// the environment variable CML_OFFLOAD_KEY_FILE.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <string>

#include "groupcover/offload.h"
#include "pipeline/manifest.h"

namespace cml::app {

struct OffloadFlags {
  std::string offload;  // "" or "groupcover"
  groupcover::OffloadOptions gc;
};

inline void add_offload_flags(CLI::App& cmd, OffloadFlags& f) {
  cmd.add_option("--offload", f.offload, "Offload weight products: 'groupcover'")->check(CLI::IsMember({"groupcover"}));
  cmd.add_option("--worker", f.gc.worker, "GroupCover worker address (host:port); or RANK/WORLD_SIZE/WORKER env");
  cmd.add_option("--secrets", f.gc.secrets_dir,
                 "Bundle directory from `cml groupcover obfuscate` (default: obfuscate in this process at load)");
  cmd.add_option("--key-file", f.gc.key_file, "Operator key the TEE bundle is sealed with");
  cmd.add_flag("--freivalds", f.gc.freivalds, "Check every worker result (Freivalds)");
  cmd.add_option("--on-mismatch", f.gc.on_mismatch, "When a check fails: 'error' or 'local'")->capture_default_str();
  cmd.add_option("--worker-timeout", f.gc.timeout_s, "Seconds per worker request")->capture_default_str();
}

inline Result<std::unique_ptr<groupcover::GroupCoverBackend>> make_backend_for_flags(const OffloadFlags& f) {
  if (f.offload.empty()) return std::unique_ptr<groupcover::GroupCoverBackend>();
  return groupcover::make_offload_backend(f.gc);
}

// The environment variable `cml stage` reads the operator key file from when --offload-key-file is absent.
inline constexpr const char* kOffloadKeyFileEnv = "CML_OFFLOAD_KEY_FILE";

inline std::string stage_offload_key_file(const std::string& flag,
                                          const groupcover::EnvLookup& env = groupcover::process_env()) {
  if (!flag.empty()) return flag;
  return env(kOffloadKeyFileEnv).value_or("");
}

// The backend options for a stage's manifest offload entry (kind groupcover). A bundle directory needs the
// operator key file; session mode (no secrets) needs none (a key given anyway is not used).
inline Result<groupcover::OffloadOptions> stage_offload_options(const pipeline::Offload& o, uint32_t index,
                                                                const std::string& key_file) {
  const std::string where = "stages[" + std::to_string(index) + "].offload";
  if (o.kind != pipeline::Offload::Kind::kGroupCover || !o.worker)
    return invalid_argument(where + ": not a groupcover offload");
  groupcover::OffloadOptions g;
  g.worker = o.worker->to_string();
  g.secrets_dir = o.secrets_dir;
  g.freivalds = o.freivalds;
  g.on_mismatch = o.on_mismatch == pipeline::Offload::OnMismatch::kLocal ? "local" : "error";
  if (o.timeout_s) g.timeout_s = *o.timeout_s;
  if (!o.secrets_dir.empty() && key_file.empty()) {
    return invalid_argument(where + ".secrets names the bundle directory '" + o.secrets_dir +
                            "': give the operator key that seals it with --offload-key-file FILE or " +
                            kOffloadKeyFileEnv + " (the key is never part of the manifest)");
  }
  if (!o.secrets_dir.empty()) g.key_file = key_file;  // session mode unseals nothing
  return g;
}

// The backend for stage `index` of a manifest: null for kind none, else a GroupCover backend (not yet
// finalized: the stage executor finalizes it, which opens the link to the worker and registers W'').
inline Result<std::unique_ptr<groupcover::GroupCoverBackend>> make_stage_backend(const pipeline::StageSpec& s,
                                                                                 const std::string& key_file) {
  if (s.offload.kind == pipeline::Offload::Kind::kNone) return std::unique_ptr<groupcover::GroupCoverBackend>();
  CML_ASSIGN_OR_RETURN(groupcover::OffloadOptions g, stage_offload_options(s.offload, s.index, key_file));
  auto b = groupcover::make_offload_backend(g);
  if (!b.is_ok()) return b.status().with_context("stages[" + std::to_string(s.index) + "].offload");
  return b;
}

}  // namespace cml::app
