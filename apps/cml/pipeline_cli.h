// Shared pieces of the pipeline commands (shard, stage, orchestrate, demo, bench pipeline).
#pragma once

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "attest/attest.h"
#include "attest/platform.h"
#include "model/tokenizer.h"
#include "pipeline/link.h"
#include "pipeline/manifest.h"
#include "pipeline/orchestrator.h"

namespace cml::app {

// The evidence provider a stage uses for its manifest attestation type. Mock: a MockProvider stating
// measurement "image" = SHA-256(mock_image). nitro: the NSM on paths.nsm_device; sev-snp: configfs-tsm
// under paths.tsm_root, else paths.sev_guest; tdx: configfs-tsm. UNAVAILABLE naming the device or
// directory when it cannot be opened, so the stage fails at start.
Result<std::unique_ptr<attest::Provider>> stage_provider(const pipeline::StageAttestation& a,
                                                         const std::string& mock_image,
                                                         const attest::PlatformPaths& paths = {});
// Verifiers for the peers of a pipeline run by `m`: mock, plus the real verifier with the pinned vendor roots
// for every real type the manifest names (stages and orchestrator). No collateral: TDX claims carry no TCB
// status and SNP reports are not checked against a CRL.
std::shared_ptr<const attest::VerifierSet> pipeline_verifiers(const pipeline::Manifest& m);

// Tokenizer for a model source: --tokenizer, else embedded in GGUF, else tok*.bin beside a llama2.c
// checkpoint; nullptr (not an error) for synthetic models, which have none.
Result<std::unique_ptr<model::Tokenizer>> pipeline_tokenizer(const std::string& model_source,
                                                             const std::string& tokenizer, int32_t vocab);

struct RunFlags {
  std::string prompt = "Once upon a time";
  uint32_t max_new_tokens = 32;
  float temperature = 0;
  uint32_t top_k = 0;
  float top_p = 1;
  uint64_t seed = 0;
  std::string tokenizer;
  int64_t connect_timeout_ms = 10000, init_timeout_ms = 60000, op_timeout_ms = 5000, step_timeout_ms = 30000;
  std::vector<std::string> downstream_overrides;  // relays
  int return_cpu = -1;                            // OrchestratorOptions::return_cpu
  bool quiet = false;                             // no streamed text (benchmarks)
  // When the manifest says orchestrator.attest: how this process attests (as for stages).
  std::string mock_image = "cml-orchestrator";
  attest::PlatformPaths platform;
};

struct RunResult {
  std::vector<uint32_t> tokens;
  double connect_ms = 0, first_token_ms = 0, ms_per_token = 0, total_ms = 0;
  pipeline::PipelineReport report;
};

// Connects to the stages of `m`, generates from the prompt, streams text to `out`, shuts the stages down
// when `shutdown` is set. Prints errors to stderr.
Result<RunResult> run_generation(const pipeline::Manifest& m, const std::string& model_source, const RunFlags& f,
                                 FILE* out, bool shutdown);

// Child `cml` processes (this binary), reaped on destruction.
struct StageProcesses {
  std::vector<int> pids;
  ~StageProcesses() { reap(std::chrono::seconds(3)); }
  // Starts `cml ARGS…` with stderr to `log` (or inherited when empty).
  Status spawn(const std::vector<std::string>& args, const std::string& log = "");
  // Waits up to `grace` for every child to exit, then kills the rest.
  void reap(std::chrono::milliseconds grace);
};

// The table of figures after a run.
void print_run_table(const pipeline::Manifest& m, const RunResult& r, FILE* out);

}  // namespace cml::app
