// Multi-process pipelines: `cml stage` processes over attested, encrypted TCP loopback.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>

#include "attest/mock.h"
#include "model/executor.h"
#include "model/generate.h"
#include "net/stream.h"
#include "pipeline/model_executor.h"
#include "pipeline/orchestrator.h"
#include "pipeline_fixture.h"
#include "support/test_support.h"

extern char** environ;

namespace cml::pipeline {
namespace {

namespace fs = std::filesystem;
using testing::free_endpoint;

class ProcessPipeline {
 public:
  ProcessPipeline(const std::string& model, uint32_t stages) : model_(model) {
    dir_ = fs::temp_directory_path() / ("cml-pt-" + std::to_string(getpid()) + "-" + std::to_string(counter_++));
    fs::create_directories(dir_);
    ShardOptions so;
    so.stages = stages;
    so.max_seq_len = 256;
    so.expect = attest::mock_measurements("pt-stage");
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
  void start_stage(uint32_t i) {
    std::vector<std::string> args = {CML_BINARY,        "stage",        "--manifest", path_,     "--index",
                                     std::to_string(i), "--mock-image", "pt-stage",   "--model", model_};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ASSERT_EQ(posix_spawn(&pids_[i], CML_BINARY, nullptr, nullptr, argv.data(), environ), 0);
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

std::vector<uint32_t> local_greedy(const std::string& model, const std::vector<uint32_t>& prompt, int64_t n) {
  model::ExecutorOptions eo;
  eo.max_sequences = 1;
  auto ex = model::Executor::open(model, {}, eo).value();
  std::vector<int32_t> p(prompt.begin(), prompt.end());
  model::GenerateOptions go;
  go.max_new_tokens = n;
  auto out = model::generate(*ex, p, go).value();
  return std::vector<uint32_t>(out.begin(), out.end());
}

TEST(ProcessPipeline, ThreeStagesOnStories260KEqualLocalGenerationTokenForToken) {
  CML_TESTDATA_OR_SKIP(model, "llm/stories260K/stories260K.llama2c.bin");
  ProcessPipeline p(model, 3);
  for (uint32_t i = 0; i < 3; ++i) p.start_stage(i);
  Status st = p.connect();
  ASSERT_TRUE(st.is_ok()) << st.to_string();
  // BOS + "Once upon a time" in the stories260K vocabulary.
  std::vector<uint32_t> prompt = {1, 403, 407, 261, 378};
  GenerateRequest q;
  q.prompt = prompt;
  q.max_new_tokens = 60;
  auto out = p.orch->generate({q});
  ASSERT_TRUE(out[0].status.is_ok()) << out[0].status.to_string();
  EXPECT_EQ(out[0].tokens, local_greedy(model, prompt, 60));
  auto rep = p.orch->report();
  for (const auto& s : rep.stages) EXPECT_EQ(s.control.attestation, "mock");
  Status sd = p.orch->shutdown();
  EXPECT_TRUE(sd.is_ok()) << sd.to_string();
}

TEST(ProcessPipeline, KilledStageIsReportedWithinItsTimeoutAndServedAfterRestart) {
  ProcessPipeline p("synthetic:llama-tiny", 3);
  for (uint32_t i = 0; i < 3; ++i) p.start_stage(i);
  OrchestratorOptions o = ProcessPipeline::options();
  Status cs = p.connect(o);
  ASSERT_TRUE(cs.is_ok()) << cs.to_string();
  GenerateRequest q;
  q.prompt = {5, 6, 7};
  q.max_new_tokens = 200;
  std::atomic<int> seen{0};
  auto t0 = std::chrono::steady_clock::now();
  auto out = p.orch->generate({q}, [&](size_t, uint32_t) {
    if (++seen == 5) p.kill_stage(1);  // SIGKILL mid-request
  });
  auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_FALSE(out[0].status.is_ok());
  EXPECT_NE(out[0].status.message().find("stage 1"), std::string::npos) << out[0].status.to_string();
  EXPECT_LT(took, o.step_timeout + std::chrono::seconds(2));
  p.start_stage(1);
  q.max_new_tokens = 10;
  auto after = p.orch->generate({q});
  ASSERT_TRUE(after[0].status.is_ok()) << after[0].status.to_string();
  EXPECT_EQ(after[0].tokens.size(), 10u);
  Status sd = p.orch->shutdown();
  EXPECT_TRUE(sd.is_ok()) << sd.to_string();
}

// A stage whose manifest names a real TEE type opens that platform's provider first; without the device it
// exits at start with an error naming the missing path (here a configfs-tsm root that does not exist).
TEST(ProcessPipeline, StageWithoutItsAttestationDeviceFailsAtStartNamingIt) {
  const fs::path dir = fs::temp_directory_path() / ("cml-pt-dev-" + std::to_string(getpid()));
  fs::create_directories(dir);
  ShardOptions so;
  so.stages = 1;
  so.max_seq_len = 64;
  so.expect = attest::mock_measurements("pt-stage");
  so.endpoints.push_back({free_endpoint(), free_endpoint()});
  Manifest m = shard_model("synthetic:llama-tiny", so).value();
  m.stages[0].attestation.type = attest::EvidenceType::kTdx;
  m.stages[0].attestation.expected_measurements = {{"mrtd", Bytes(48, 0)}};
  const std::string path = (dir / "m.json").string(), log = (dir / "stage.log").string();
  ASSERT_TRUE(write_file(path, as_bytes(manifest_to_json(m))).is_ok());
  const std::string missing = (dir / "no-such-tsm" / "report").string();
  std::vector<std::string> args = {CML_BINARY, "stage",      "--manifest", path,      "--index",
                                   "0",        "--tsm-root", missing,      "--model", "synthetic:llama-tiny"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 2, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid = -1;
  ASSERT_EQ(posix_spawn(&pid, CML_BINARY, &fa, nullptr, argv.data(), environ), 0);
  posix_spawn_file_actions_destroy(&fa);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 1);
  auto text = read_file(log, 1 << 20);
  ASSERT_TRUE(text.is_ok());
  const std::string err(text->begin(), text->end());
  EXPECT_NE(err.find(missing), std::string::npos) << err;
  EXPECT_NE(err.find("tdx"), std::string::npos) << err;
  std::error_code ec;
  fs::remove_all(dir, ec);
}

}  // namespace
}  // namespace cml::pipeline
