// Multi-process pipelines: `cml stage` processes over attested, encrypted TCP loopback.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <functional>

#include "attest/mock.h"
#include "model/executor.h"
#include "model/generate.h"
#include "net/stream.h"
#include "pipeline/model_executor.h"
#include "pipeline/orchestrator.h"
#include "process_fixture.h"
#include "support/test_support.h"

namespace cml::pipeline {
namespace {

namespace fs = std::filesystem;
using testing::free_endpoint;
using testing::local_greedy;
using testing::ProcessPipeline;

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

// Starts `cml stage` for a one-stage synthetic manifest (changed by `tweak`) with `args` added, expects it to
// exit 1 at start, and returns what it wrote.
std::string failed_stage_start(const std::function<void(Manifest&)>& tweak, const std::vector<std::string>& args) {
  static int n = 0;
  const fs::path dir =
      fs::temp_directory_path() / ("cml-pt-start-" + std::to_string(getpid()) + "-" + std::to_string(n++));
  fs::create_directories(dir);
  ShardOptions so;
  so.stages = 1;
  so.max_seq_len = 64;
  so.expect = attest::mock_measurements("pt-stage");
  so.endpoints.push_back({free_endpoint(), free_endpoint()});
  Manifest m = shard_model("synthetic:llama-tiny", so).value();
  tweak(m);
  const std::string path = (dir / "m.json").string(), log = (dir / "stage.log").string();
  EXPECT_TRUE(write_file(path, as_bytes(manifest_to_json(m))).is_ok());
  std::vector<std::string> argv = {"stage", "--manifest", path, "--index", "0", "--model", "synthetic:llama-tiny"};
  argv.insert(argv.end(), args.begin(), args.end());
  const pid_t pid = testing::spawn_cml(argv, log);
  EXPECT_GT(pid, 0);
  if (pid > 0) EXPECT_EQ(testing::wait_exit_code(pid), 1);
  auto text = read_file(log, 1 << 20);
  std::error_code ec;
  fs::remove_all(dir, ec);
  return text.is_ok() ? std::string(text->begin(), text->end()) : "(no log)";
}

// A stage whose manifest names a real TEE type opens that platform's provider first; without the device it
// exits at start with an error naming the missing path (here a configfs-tsm root that does not exist).
TEST(ProcessPipeline, StageWithoutItsAttestationDeviceFailsAtStartNamingIt) {
  const std::string missing =
      (fs::temp_directory_path() / ("cml-pt-no-such-tsm-" + std::to_string(getpid())) / "report").string();
  const std::string err = failed_stage_start(
      [](Manifest& m) {
        m.stages[0].attestation.type = attest::EvidenceType::kTdx;
        m.stages[0].attestation.expected_measurements = {{"mrtd", Bytes(48, 0)}};
      },
      {"--tsm-root", missing});
  EXPECT_NE(err.find(missing), std::string::npos) << err;
  EXPECT_NE(err.find("tdx"), std::string::npos) << err;
}

// A stage told to run its data thread on a CPU this process may not use exits at start naming the setting
// and the CPU, before it loads any weights.
TEST(ProcessPipeline, StageOnAnUnusableCpuFailsAtStartNamingIt) {
  const int bad = ::cml::testing::unusable_cpu();
  const std::string err =
      failed_stage_start([](Manifest&) {}, {"--mock-image", "pt-stage", "--data-cpu", std::to_string(bad)});
  EXPECT_NE(err.find("stage 0 data thread: CPU " + std::to_string(bad)), std::string::npos) << err;
}

}  // namespace
}  // namespace cml::pipeline
