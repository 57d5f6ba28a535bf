// Per-stage GroupCover offload driven by the manifest: `cml stage` processes over attested TCP loopback,
// where the stages whose manifest entry names a groupcover offload send their weight products to a real
// GroupCover worker (WorkerServer + WorkerService, what `cml worker` runs; hosted in this process so the
// test can stop and restart it). Greedy generation equals local generation token for token; a worker that
// is down at start fails the stage at start naming the worker; a worker lost mid-run fails that request
// with an error naming the stage and the worker, and the next request is served once it is back.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <map>

#include "attest/mock.h"
#include "groupcover/net_link.h"
#include "groupcover/worker.h"
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
using testing::read_text;

// Stage processes obfuscate their weights at start: more generous timeouts than the default.
OrchestratorOptions offload_options() {
  OrchestratorOptions o;
  o.connect_timeout = std::chrono::seconds(15);
  o.init_timeout = std::chrono::seconds(30);
  o.step_timeout = std::chrono::seconds(15);
  o.op_timeout = std::chrono::seconds(10);
  return o;
}

// A GroupCover worker on a loopback port; stop() and start() again on the same address (a restart).
struct Worker {
  std::unique_ptr<groupcover::WorkerService> service;
  std::unique_ptr<groupcover::WorkerServer> server;
  std::string endpoint;
  explicit Worker(std::string ep = free_endpoint()) : endpoint(std::move(ep)) {}
  Status start(const std::function<void(groupcover::WorkerService&, groupcover::WorkerServer&)>& hook = {}) {
    service = std::make_unique<groupcover::WorkerService>();
    CML_ASSIGN_OR_RETURN(server, groupcover::WorkerServer::start(endpoint, *service));
    if (hook) hook(*service, *server);
    return ok_status();
  }
  void stop() {
    if (server) server->stop();
    server.reset();
  }
  ~Worker() { stop(); }
  Offload offload(bool freivalds = true, const std::string& secrets = "") const {
    Offload o;
    o.kind = Offload::Kind::kGroupCover;
    o.worker = parse_endpoint(endpoint).value();
    o.secrets_dir = secrets;
    o.freivalds = freivalds;
    return o;
  }
};

// Runs `cml ARGS…` to completion (stderr and stdout to `log`); its exit code, or -1.
int run_cml(const std::vector<std::string>& args, const std::string& log) {
  const pid_t pid = testing::spawn_cml(args, log);
  return pid < 0 ? -1 : testing::wait_exit_code(pid);
}

// BOS + "Once upon a time" in the stories260K vocabulary.
const std::vector<uint32_t> kPrompt = {1, 403, 407, 261, 378};

GenerateRequest request(uint32_t n) {
  GenerateRequest q;
  q.prompt = kPrompt;
  q.max_new_tokens = n;
  return q;
}

// Stage 1 obfuscates at load (session mode) and stage 2 loads sealed bundles made by `cml groupcover
// obfuscate`, its operator key from CML_OFFLOAD_KEY_FILE; each offloads to its own worker, Freivalds on.
TEST(OffloadPipeline, Stories260KWithTwoOffloadedStagesEqualsLocalGreedyTokenForToken) {
  CML_TESTDATA_OR_SKIP(model, "llm/stories260K/stories260K.llama2c.bin");
  Worker w1, w2;
  CML_ASSERT_OK(w1.start());
  CML_ASSERT_OK(w2.start());
  const fs::path work = fs::temp_directory_path() / ("cml-op-bundle-" + std::to_string(getpid()));
  fs::create_directories(work);
  const std::string key = (work / "op.key").string(), bundles = (work / "bundles").string(),
                    log = (work / "obfuscate.log").string();
  ASSERT_EQ(run_cml({"groupcover", "keygen", "--out", key}, log), 0) << read_text(log);
  ASSERT_EQ(run_cml({"groupcover", "obfuscate", "--model", model, "--out", bundles, "--key-file", key}, log), 0)
      << read_text(log);

  ProcessPipeline p(model, 3, {{1, w1.offload()}, {2, w2.offload(true, bundles)}});
  p.start_stage(0);
  p.start_stage(1);
  p.start_stage(2, {}, {"CML_OFFLOAD_KEY_FILE=" + key});
  Status st = p.connect(offload_options());
  ASSERT_TRUE(st.is_ok()) << st.to_string() << "\nstage 1: " << p.log(1) << "\nstage 2: " << p.log(2);
  auto out = p.orch->generate({request(60)});
  ASSERT_TRUE(out[0].status.is_ok()) << out[0].status.to_string();
  EXPECT_EQ(out[0].tokens, local_greedy(model, kPrompt, 60));
  // Every generated token went through both workers (one request per linear op per step).
  EXPECT_GE(w1.service->stats().requests, 60u);
  EXPECT_GE(w2.service->stats().requests, 60u);
  EXPECT_EQ(w1.service->stats().uploads, 1u);
  EXPECT_EQ(w2.service->stats().uploads, 1u);
  Status sd = p.orch->shutdown();
  EXPECT_TRUE(sd.is_ok()) << sd.to_string();
  EXPECT_EQ(p.wait_exit(1), 0);
  EXPECT_EQ(p.wait_exit(2), 0);
  EXPECT_NE(p.log(1).find("offloading weight products to GroupCover worker " + w1.endpoint), std::string::npos)
      << p.log(1);
  EXPECT_NE(p.log(2).find("bundles from " + bundles), std::string::npos) << p.log(2);
  EXPECT_NE(p.log(2).find("(0 failed"), std::string::npos) << p.log(2);
  std::error_code ec;
  fs::remove_all(work, ec);
}

// The stage finalizes its backend at start, which opens the worker link: with nothing listening there it
// exits 1 before it listens, naming the worker; the orchestrator's connect fails naming that stage.
TEST(OffloadPipeline, WorkerDownAtStartFailsTheStageAtStartNamingTheWorker) {
  Worker nobody;  // never started
  ProcessPipeline p("synthetic:llama-tiny", 2, {{1, nobody.offload(false)}});
  p.start_stage(0);
  p.start_stage(1);
  EXPECT_EQ(p.wait_exit(1), 1);
  const std::string err = p.log(1);
  EXPECT_NE(err.find("cml stage 1: offload:"), std::string::npos) << err;
  EXPECT_NE(err.find("groupcover worker " + nobody.endpoint), std::string::npos) << err;
  EXPECT_NE(err.find("UNAVAILABLE"), std::string::npos) << err;
  OrchestratorOptions o = offload_options();
  o.connect_timeout = std::chrono::seconds(3);
  Status st = p.connect(o);
  ASSERT_FALSE(st.is_ok());
  std::printf("stage log: %sorchestrator: %s\n", err.c_str(), st.to_string().c_str());
  EXPECT_NE(st.message().find("stage 1"), std::string::npos) << st.to_string();
}

// A sealed bundle without its operator key, or with the wrong one, is refused at start with a message
// saying how the key is given (never through the manifest).
TEST(OffloadPipeline, SealedBundleNeedsItsOperatorKey) {
  Worker w;
  CML_ASSERT_OK(w.start());
  ProcessPipeline p("synthetic:llama-tiny", 2, {{1, w.offload(false, "/nonexistent/bundles")}});
  p.start_stage(1);
  EXPECT_EQ(p.wait_exit(1), 1);
  std::string err = p.log(1);
  EXPECT_NE(err.find("stages[1].offload.secrets names the bundle directory '/nonexistent/bundles'"), std::string::npos)
      << err;
  EXPECT_NE(err.find("--offload-key-file"), std::string::npos) << err;
  EXPECT_NE(err.find("CML_OFFLOAD_KEY_FILE"), std::string::npos) << err;
  // With a key file (from the flag), the missing bundle directory is what it reports.
  const std::string key = p.dir() + "/op.key";
  ASSERT_EQ(run_cml({"groupcover", "keygen", "--out", key}, p.dir() + "/keygen.log"), 0);
  p.start_stage(1, {"--offload-key-file", key});
  EXPECT_EQ(p.wait_exit(1), 1);
  err = p.log(1);
  EXPECT_NE(err.find("stages[1].offload"), std::string::npos) << err;
  EXPECT_NE(err.find("/nonexistent/bundles"), std::string::npos) << err;
  EXPECT_EQ(w.service->stats().connections, 0u);
}

// The worker dies while serving a step: that request fails with the stage's error naming the worker, the
// pipeline stays up, and once the worker is back (a fresh process: no W'') the next request re-registers
// W'' and is served, equal to local generation.
TEST(OffloadPipeline, WorkerLostMidRunFailsThatRequestAndTheNextIsServedAfterRestart) {
  CML_TESTDATA_OR_SKIP(model, "llm/stories260K/stories260K.llama2c.bin");
  Worker w;
  std::atomic<bool> crash{false};
  auto hook = [&](groupcover::WorkerService& s, groupcover::WorkerServer& server) {
    groupcover::WorkerServer* raw = &server;
    s.set_on_request([&crash, raw](const groupcover::ComputeRequest&) {
      if (crash.exchange(false)) raw->crash();  // dies while this request is open
    });
  };
  CML_ASSERT_OK(w.start(hook));
  ProcessPipeline p(model, 2, {{1, w.offload()}});
  p.start_stage(0);
  p.start_stage(1);
  Status st = p.connect(offload_options());
  ASSERT_TRUE(st.is_ok()) << st.to_string() << "\nstage 1: " << p.log(1);
  int seen = 0;
  auto out = p.orch->generate({request(40)}, [&](size_t, uint32_t) {
    if (++seen == 5) crash = true;  // the next worker request kills the worker
  });
  ASSERT_FALSE(out[0].status.is_ok());
  std::printf("worker lost mid-request: %s\n", out[0].status.to_string().c_str());
  const std::string msg = out[0].status.message();
  EXPECT_NE(msg.find("stage 1"), std::string::npos) << out[0].status.to_string();
  EXPECT_NE(msg.find("groupcover worker " + w.endpoint), std::string::npos) << out[0].status.to_string();
  EXPECT_GE(out[0].tokens.size(), 5u);
  // While it is down, a request fails the same way (the stage keeps serving).
  w.stop();
  auto down = p.orch->generate({request(4)});
  ASSERT_FALSE(down[0].status.is_ok());
  std::printf("worker down: %s\n", down[0].status.to_string().c_str());
  EXPECT_NE(down[0].status.message().find("groupcover worker " + w.endpoint), std::string::npos)
      << down[0].status.to_string();
  // Back on the same address.
  CML_ASSERT_OK(w.start());
  auto after = p.orch->generate({request(30)});
  ASSERT_TRUE(after[0].status.is_ok()) << after[0].status.to_string();
  EXPECT_EQ(after[0].tokens, local_greedy(model, kPrompt, 30));
  EXPECT_EQ(w.service->stats().uploads, 1u);
  Status sd = p.orch->shutdown();
  EXPECT_TRUE(sd.is_ok()) << sd.to_string();
  EXPECT_EQ(p.wait_exit(1), 0);
  EXPECT_NE(p.log(1).find("reconnects"), std::string::npos) << p.log(1);
}

// `cml shard --offload-*` writes the offload entries (no hand editing), and refuses inconsistent flags.
TEST(OffloadPipeline, ShardWritesOffloadEntriesFromItsFlags) {
  const fs::path dir = fs::temp_directory_path() / ("cml-op-shard-" + std::to_string(getpid()));
  fs::create_directories(dir);
  const std::string out = (dir / "m.json").string(), log = (dir / "shard.log").string();
  ASSERT_EQ(run_cml({"shard",
                     "--model",
                     "synthetic:llama-tiny",
                     "--stages",
                     "3",
                     "-o",
                     out,
                     "--offload-stage",
                     "1",
                     "--offload-stage",
                     "2",
                     "--offload-worker",
                     "127.0.0.1:22223",
                     "--offload-worker",
                     "tcp://10.0.0.7:22224",
                     "--offload-secrets",
                     "/secrets/b",
                     "--offload-freivalds",
                     "--offload-on-mismatch",
                     "local",
                     "--offload-timeout",
                     "2.5"},
                    log),
            0)
      << read_text(log);
  auto m = load_manifest(out);
  ASSERT_TRUE(m.is_ok()) << m.status().to_string();
  EXPECT_EQ(m->stages[0].offload, Offload{});
  const Offload& a = m->stages[1].offload;
  const Offload& b = m->stages[2].offload;
  EXPECT_EQ(a.kind, Offload::Kind::kGroupCover);
  EXPECT_EQ(a.worker->to_string(), "tcp://127.0.0.1:22223");
  EXPECT_EQ(b.worker->to_string(), "tcp://10.0.0.7:22224");
  EXPECT_EQ(a.secrets_dir, "/secrets/b");
  EXPECT_EQ(b.secrets_dir, "/secrets/b");
  EXPECT_TRUE(a.freivalds && b.freivalds);
  EXPECT_EQ(b.on_mismatch, Offload::OnMismatch::kLocal);
  EXPECT_DOUBLE_EQ(b.timeout_s.value_or(0), 2.5);
  // Refused: a stage out of range, a fallback without checks, settings without a stage.
  const std::vector<std::vector<std::string>> bad = {
      {"--offload-stage", "3", "--offload-worker", "127.0.0.1:1"},
      {"--offload-stage", "1", "--offload-worker", "127.0.0.1:1", "--offload-on-mismatch", "local"},
      {"--offload-worker", "127.0.0.1:1"},
      {"--offload-stage", "1"},
  };
  for (const auto& extra : bad) {
    std::vector<std::string> args = {"shard", "--model", "synthetic:llama-tiny",     "--stages",
                                     "3",     "-o",      (dir / "bad.json").string()};
    args.insert(args.end(), extra.begin(), extra.end());
    EXPECT_NE(run_cml(args, log), 0) << extra[0];
  }
  const std::string text = read_text(log);
  EXPECT_NE(text.find("offload for stage 3: the manifest has 3 stages"), std::string::npos) << text;
  EXPECT_NE(text.find("\"local\" needs freivalds: true"), std::string::npos) << text;
  EXPECT_NE(text.find("need --offload-stage"), std::string::npos) << text;
  EXPECT_NE(text.find("--offload-worker: give one address"), std::string::npos) << text;
  std::error_code ec;
  fs::remove_all(dir, ec);
}

}  // namespace
}  // namespace cml::pipeline
