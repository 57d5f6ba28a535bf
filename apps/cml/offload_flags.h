// `--offload groupcover` flags for any command that builds an Executor (cml generate, cml stage):
//
//   OffloadFlags flags;  add_offload_flags(*cmd, flags);
//   …
//   auto backend = make_backend_for_flags(flags);   // null when --offload is not given
//   if (!backend.is_ok()) …;  options.backend = backend->get();
//
// The backend must outlive the executor.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <string>

#include "groupcover/offload.h"

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

}  // namespace cml::app
