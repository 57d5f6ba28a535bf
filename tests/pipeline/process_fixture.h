// Multi-process pipelines for tests: `cml stage` children (CML_BINARY) on free loopback ports, sharded from
// a model source, with optional per-stage GroupCover offload entries; logs per stage; an unattested
// orchestrator with mock verifiers.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "attest/mock.h"
#include "model/executor.h"
#include "model/generate.h"
#include "pipeline/model_executor.h"
#include "pipeline/orchestrator.h"
#include "pipeline_fixture.h"
#include "support/test_support.h"

extern char** environ;

namespace cml::pipeline::testing {

namespace fs = std::filesystem;

// Starts CML_BINARY with `args`, its stdout and stderr appended to `log` when one is given, with the
// environment `env` (NAME=VALUE entries; by default this process's). The child's pid, or -1.
inline pid_t spawn_cml(const std::vector<std::string>& args, const std::string& log = "",
                       std::optional<std::vector<std::string>> env = std::nullopt) {
  std::vector<std::string> all = {CML_BINARY};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<char*> envp;
  if (env) {
    for (auto& e : *env) envp.push_back(e.data());
    envp.push_back(nullptr);
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  if (!log.empty()) {
    posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_addopen(&fa, 2, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  }
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, CML_BINARY, &fa, nullptr, argv.data(), env ? envp.data() : environ);
  posix_spawn_file_actions_destroy(&fa);
  return rc == 0 ? pid : -1;
}

// Waits for a child; its exit code, or -1 when it did not exit normally (killed by a signal).
inline int wait_exit_code(pid_t pid) {
  int st = 0;
  if (waitpid(pid, &st, 0) != pid) return -1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

inline std::string read_text(const std::string& path) {
  auto b = read_file(path, 1 << 20);
  return b.is_ok() ? std::string(b->begin(), b->end()) : std::string();
}

class ProcessPipeline {
 public:
  ProcessPipeline(const std::string& model, uint32_t stages, const std::map<uint32_t, Offload>& offload = {})
      : model_(model) {
    dir_ = fs::temp_directory_path() / ("cml-pt-" + std::to_string(getpid()) + "-" + std::to_string(counter_++));
    fs::create_directories(dir_);
    ShardOptions so;
    so.stages = stages;
    so.max_seq_len = 256;
    so.expect = attest::mock_measurements("pt-stage");
    so.offload = offload;
    for (uint32_t i = 0; i < stages; ++i) so.endpoints.push_back({free_endpoint(), free_endpoint()});
    manifest = shard_model(model, so).value();
    path_ = (dir_ / "m.json").string();
    CML_CHECK(write_file(path_, as_bytes(manifest_to_json(manifest))).is_ok());
    pids_.assign(stages, -1);
  }
  ~ProcessPipeline() {
    orch.reset();
    for (uint32_t i = 0; i < pids_.size(); ++i) kill_stage(i);
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string dir() const { return dir_.string(); }
  std::string log_path(uint32_t i) const { return (dir_ / ("stage" + std::to_string(i) + ".log")).string(); }
  std::string log(uint32_t i) const { return read_text(log_path(i)); }

  // Starts `cml stage` for stage i with extra arguments and environment entries (NAME=VALUE).
  void start_stage(uint32_t i, const std::vector<std::string>& extra = {}, const std::vector<std::string>& env = {}) {
    std::vector<std::string> args = {"stage",        "--manifest", path_,     "--index", std::to_string(i),
                                     "--mock-image", "pt-stage",   "--model", model_};
    args.insert(args.end(), extra.begin(), extra.end());
    std::vector<std::string> envs = env;
    for (char** e = environ; *e; ++e) {
      if (std::string(*e).rfind("CML_OFFLOAD_KEY_FILE=", 0) != 0) envs.push_back(*e);
    }
    pids_[i] = spawn_cml(args, log_path(i), envs);
    ASSERT_GT(pids_[i], 0) << "cannot start " << CML_BINARY;
  }
  // Waits for stage i to exit; its exit code (-1 when killed by a signal).
  int wait_exit(uint32_t i) {
    const int code = wait_exit_code(pids_[i]);
    pids_[i] = -1;
    return code;
  }
  void kill_stage(uint32_t i) {
    if (pids_[i] <= 0) return;
    kill(pids_[i], SIGKILL);
    int st = 0;
    waitpid(pids_[i], &st, 0);
    pids_[i] = -1;
  }
  Status connect(OrchestratorOptions o = options()) {
    SecureNetworkConfig nc;
    nc.verifiers = attest::mock_verifier_set();
    net_ = make_secure_network(nc);
    orch = std::make_unique<Orchestrator>(manifest, *net_, o);
    return orch->connect();
  }
  static OrchestratorOptions options() {
    OrchestratorOptions o;
    o.connect_timeout = std::chrono::seconds(10);  // the processes are still starting
    o.step_timeout = std::chrono::seconds(5);
    o.op_timeout = std::chrono::seconds(5);
    return o;
  }
  Manifest manifest;
  std::unique_ptr<Orchestrator> orch;

 private:
  static inline int counter_ = 0;
  std::string model_, path_;
  fs::path dir_;
  std::vector<pid_t> pids_;
  std::unique_ptr<Network> net_;
};

// Greedy generation by the whole model in this process.
inline std::vector<uint32_t> local_greedy(const std::string& model, const std::vector<uint32_t>& prompt, int64_t n) {
  model::ExecutorOptions eo;
  eo.max_sequences = 1;
  auto ex = model::Executor::open(model, {}, eo).value();
  std::vector<int32_t> p(prompt.begin(), prompt.end());
  model::GenerateOptions go;
  go.max_new_tokens = n;
  auto out = model::generate(*ex, p, go).value();
  return std::vector<uint32_t>(out.begin(), out.end());
}

}  // namespace cml::pipeline::testing
