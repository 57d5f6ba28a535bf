// `cml orchestrate` as a process against `cml stage` processes, when the manifest requires the
// orchestrator itself to attest (orchestrator.attest).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "attest/mock.h"
#include "net/stream.h"
#include "pipeline/model_executor.h"
#include "process_fixture.h"
#include "support/test_support.h"

namespace cml::pipeline {
namespace {

namespace fs = std::filesystem;
using testing::free_endpoint;

// Runs a shell command line; returns (exit status, stdout+stderr).
std::pair<int, std::string> run(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (p == nullptr) return {-1, "popen failed"};
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  const int st = ::pclose(p);
  return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, out};
}

class AttestingOrchestrator : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("cml-oc-" + std::to_string(getpid()));
    fs::create_directories(dir_);
    ShardOptions so;
    so.stages = 2;
    so.max_seq_len = 64;
    so.expect = attest::mock_measurements("oc-stage");
    for (uint32_t i = 0; i < so.stages; ++i) so.endpoints.push_back({free_endpoint(), free_endpoint()});
    Manifest m = shard_model("synthetic:llama-tiny", so).value();
    m.orchestrator.attest = true;
    m.orchestrator.attestation.type = attest::EvidenceType::kMock;
    m.orchestrator.attestation.expected_measurements = attest::mock_measurements("oc-orchestrator");
    ASSERT_TRUE(validate_manifest(m).is_ok());
    manifest_ = (dir_ / "m.json").string();
    ASSERT_TRUE(write_file(manifest_, as_bytes(manifest_to_json(m))).is_ok());
    for (uint32_t i = 0; i < so.stages; ++i) {
      const pid_t pid = testing::spawn_cml(
          {"stage", "--manifest", manifest_, "--index", std::to_string(i), "--mock-image", "oc-stage"});
      ASSERT_GT(pid, 0);
      pids_.push_back(pid);
    }
  }
  void TearDown() override {
    for (pid_t pid : pids_) {
      kill(pid, SIGKILL);
      int st = 0;
      waitpid(pid, &st, 0);
    }
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string orchestrate(const std::string& image, const std::string& extra = "") {
    return std::string(CML_BINARY) + " orchestrate --manifest " + manifest_ + " --prompt hi -n 4 --no-table" +
           " --connect-timeout-ms 20000 --mock-image " + image + extra;
  }

  fs::path dir_;
  std::string manifest_;
  std::vector<pid_t> pids_;
};

TEST_F(AttestingOrchestrator, StagesRefuseAWrongMeasurementThenServeTheRightOne) {
  // An orchestrator whose evidence states another image is refused by the stages, with the reason...
  auto [bad_rc, bad_out] = run(orchestrate("intruder"));
  EXPECT_NE(bad_rc, 0) << bad_out;
  EXPECT_NE(bad_out.find("refused"), std::string::npos) << bad_out;
  // ...and the stages keep serving: the orchestrator the manifest describes generates.
  auto [rc, out] = run(orchestrate("oc-orchestrator", " --shutdown"));
  EXPECT_EQ(rc, 0) << out;
}

}  // namespace
}  // namespace cml::pipeline
