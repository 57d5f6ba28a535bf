// Wiring GroupCover into commands: building a TEE-side backend from flags, and the prototype's
// RANK / WORLD_SIZE / WORKER environment-variable launch convention.
//
// Environment convention (an alternative to --listen / --worker; docs/notes/gcover.md):
//   worker:  RANK=k WORLD_SIZE=n [MASTER_ADDR=a] [MASTER_PORT=p] cml worker
//            listens on a:(p + k)           (a defaults to 127.0.0.1, p to 22222; 1 ≤ k < n)
//   TEE:     RANK=i WORLD_SIZE=n WORKER=k [MASTER_ADDR=a] [MASTER_PORT=p] cml generate --offload groupcover …
//            connects to a:(p + k)          (k ≠ i: the prototype's bug of targeting its own rank is refused)
//
// Thread safety: pure functions.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "groupcover/backend.h"
#include "model/linear_backend.h"

namespace cml::groupcover {

using EnvLookup = std::function<std::optional<std::string>(const char*)>;
EnvLookup process_env();

// The worker's listen endpoint from RANK/WORLD_SIZE/MASTER_*; NOT_FOUND when RANK is unset.
Result<std::string> worker_listen_from_env(const EnvLookup& env);
// The TEE's worker endpoint from RANK/WORLD_SIZE/WORKER/MASTER_*; NOT_FOUND when WORKER is unset.
Result<std::string> worker_address_from_env(const EnvLookup& env);

struct OffloadOptions {
  std::string worker;       // endpoint; empty: from the environment convention
  std::string secrets_dir;  // bundle directory from `cml groupcover obfuscate`; empty: session mode
  std::string key_file;     // operator key for the TEE bundle (required with secrets_dir)
  bool freivalds = false;
  std::string on_mismatch = "error";  // "error" | "local"
  double timeout_s = 10.0;
  double mask_scale = 4.0;
};

// The backend for `--offload groupcover` (not finalized; the executor finalizes it).
Result<std::unique_ptr<GroupCoverBackend>> make_offload_backend(const OffloadOptions& o);

}  // namespace cml::groupcover
