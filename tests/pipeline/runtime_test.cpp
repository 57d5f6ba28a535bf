#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "base/thread.h"
#include "pipeline_fixture.h"
#include "support/test_support.h"

namespace cml::pipeline {
namespace {

using testing::InProcessPipeline;
using testing::reference_generation;

GenerateRequest req(std::vector<uint32_t> prompt, uint32_t n, Sampling s = {}) {
  GenerateRequest q;
  q.prompt = std::move(prompt);
  q.max_new_tokens = n;
  q.sampling = s;
  return q;
}

class StagesTest : public ::testing::TestWithParam<uint32_t> {};

TEST_P(StagesTest, GeneratesLikeTheUnshardedModel) {
  InProcessPipeline p(GetParam());
  CML_ASSERT_OK(p.start_all());
  CML_ASSERT_OK(p.connect());
  auto q = req({1, 2, 3, 4}, 12);
  std::vector<uint32_t> streamed;
  auto out = p.orch->generate({q}, [&](size_t, uint32_t t) { streamed.push_back(t); });
  ASSERT_EQ(out.size(), 1u);
  CML_ASSERT_OK(out[0].status);
  EXPECT_EQ(out[0].tokens, reference_generation(p.cfg, q));
  EXPECT_EQ(streamed, out[0].tokens);
  // Every link is encrypted and every stage's measurement was checked.
  CML_ASSERT_OK(p.orch->health_check());
  auto rep = p.orch->report();
  for (const auto& s : rep.stages) {
    EXPECT_TRUE(s.up);
    EXPECT_EQ(s.control.cipher, "aes-256-gcm");
    EXPECT_EQ(s.control.verified_measurements, std::vector<std::string>{"image"});
    EXPECT_GT(s.steps, 0u);
  }
  EXPECT_GT(rep.to_first.bytes_sent, 0u);
  EXPECT_GT(rep.from_last.bytes_received, 0u);
  CML_ASSERT_OK(p.orch->shutdown());
  EXPECT_TRUE(p.stages[0]->wait_shutdown(Deadline::after(std::chrono::seconds(5))));
}

INSTANTIATE_TEST_SUITE_P(InMemory, StagesTest, ::testing::Values(1u, 2u, 3u));

TEST(Pipeline, EightConcurrentSequencesEqualTheirSingleResults) {
  InProcessPipeline p(3);
  CML_ASSERT_OK(p.start_all());
  CML_ASSERT_OK(p.connect());
  std::vector<GenerateRequest> qs;
  for (uint32_t i = 0; i < 8; ++i) {
    Sampling s;
    if (i % 2) s = Sampling{0.8f, 10, 1.0f, 100 + i};  // seeded sampling on half of them
    qs.push_back(req({i + 1, 2 * i + 3, 5}, 6 + i, s));
  }
  auto together = p.orch->generate(qs);
  ASSERT_EQ(together.size(), 8u);
  for (size_t i = 0; i < qs.size(); ++i) {
    ASSERT_TRUE(together[i].status.is_ok()) << together[i].status.to_string();
    auto alone = p.orch->generate({qs[i]});
    ASSERT_TRUE(alone[0].status.is_ok());
    EXPECT_EQ(together[i].tokens, alone[0].tokens) << "sequence " << i;
    EXPECT_EQ(together[i].tokens, reference_generation(p.cfg, qs[i])) << "sequence " << i;
  }
}

TEST(Pipeline, HundredSequentialRequests) {
  InProcessPipeline p(2);
  CML_ASSERT_OK(p.start_all());
  CML_ASSERT_OK(p.connect());
  for (uint32_t i = 0; i < 100; ++i) {
    auto q = req({i % 60 + 1, 7}, 3);
    auto out = p.orch->generate({q});
    ASSERT_TRUE(out[0].status.is_ok()) << i << ": " << out[0].status.to_string();
    ASSERT_EQ(out[0].tokens, reference_generation(p.cfg, q)) << i;
  }
  EXPECT_EQ(p.orch->report().stale_results, 0u);
}

TEST(Pipeline, SixteenMicroBatchesInOneStepEachThroughThreeStages) {
  InProcessPipeline p(3);
  CML_ASSERT_OK(p.start_all());
  OrchestratorOptions o = p.orch_options();
  o.max_batch = 1;  // every sequence is its own micro-batch: 16 in the pipeline per round
  CML_ASSERT_OK(p.connect(o));
  std::vector<GenerateRequest> qs;
  for (uint32_t i = 0; i < 16; ++i) qs.push_back(req({i + 1}, 4));
  auto out = p.orch->generate(qs);
  for (size_t i = 0; i < qs.size(); ++i) {
    ASSERT_TRUE(out[i].status.is_ok()) << out[i].status.to_string();
    EXPECT_EQ(out[i].tokens, reference_generation(p.cfg, qs[i]));
  }
}

TEST(Pipeline, ExecutorFailureSendsErrAndTheNextRequestIsServed) {
  InProcessPipeline p(3);
  CML_ASSERT_OK(p.start_all());
  CML_ASSERT_OK(p.connect());
  std::atomic<int> fail{1};
  // Stage 1 fails its first decode step once.
  p.executors[1]->set_failure([&](const StepHeader& h) { return h.seqs[0].pos > 0 && fail.exchange(0) == 1; });
  auto out = p.orch->generate({req({3, 4}, 5)});
  ASSERT_FALSE(out[0].status.is_ok());
  EXPECT_EQ(out[0].status.code(), StatusCode::kAborted);
  EXPECT_NE(out[0].status.message().find("stage 1"), std::string::npos) << out[0].status.message();
  EXPECT_NE(out[0].status.message().find("injected failure"), std::string::npos);
  EXPECT_EQ(out[0].tokens.size(), 1u);  // the prefill token arrived before the failure
  auto next = p.orch->generate({req({3, 4}, 5)});
  ASSERT_TRUE(next[0].status.is_ok()) << next[0].status.to_string();
  EXPECT_EQ(next[0].tokens, reference_generation(p.cfg, req({3, 4}, 5)));
}

// Over TCP a step's records are corked into one write; the ERR sentinel a failing stage sends after
// earlier steps must still leave at once, not wait behind a cork for the next step.
TEST(Pipeline, ErrSentinelOverTcpReachesTheNextStageAtOnce) {
  InProcessPipeline p(3, {}, false, true);
  CML_ASSERT_OK(p.start_all());
  CML_ASSERT_OK(p.connect());
  std::atomic<int> fail{1};
  p.executors[1]->set_failure([&](const StepHeader& h) { return h.seqs[0].pos > 2 && fail.exchange(0) == 1; });
  auto out = p.orch->generate({req({3, 4}, 6)});
  ASSERT_FALSE(out[0].status.is_ok());
  EXPECT_NE(out[0].status.message().find("injected failure"), std::string::npos) << out[0].status.message();
  // Every frame stage 1 sent downstream (its steps, then the ERR) reaches stage 2 without another request.
  const auto sent = p.stages[1]->stats().data_out.frames_sent;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (p.stages[2]->stats().data_in.frames_received < sent && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(p.stages[2]->stats().data_in.frames_received, sent);
  EXPECT_EQ(p.stages[1]->stats().failed_steps, 1u);
  auto next = p.orch->generate({req({3, 4}, 5)});
  ASSERT_TRUE(next[0].status.is_ok()) << next[0].status.to_string();
  EXPECT_EQ(next[0].tokens, reference_generation(p.cfg, req({3, 4}, 5)));
}

TEST(Pipeline, WrongWeightsAreRefusedAtInitNamingTheTensor) {
  InProcessPipeline p(3);
  CML_ASSERT_OK(p.start_stage(0));
  CML_ASSERT_OK(p.start_stage(1, [](FakeModelExecutor& e) { e.corrupt_tensor("layers.3.gain"); }));
  CML_ASSERT_OK(p.start_stage(2));
  Status st = p.connect();
  ASSERT_FALSE(st.is_ok());
  EXPECT_EQ(st.code(), StatusCode::kPolicy);
  EXPECT_NE(st.message().find("stage 1"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("layers.3.gain"), std::string::npos) << st.message();
}

TEST(Pipeline, WrongMeasurementIsRefused) {
  InProcessPipeline p(2);
  // Stage 1 runs an image whose measurement differs from its manifest entry.
  p.providers[1] = std::make_unique<attest::MockProvider>(attest::mock_measurements("evil"));
  p.stage_nets[1] = p.make_net(p.providers[1].get());
  CML_ASSERT_OK(p.start_all());
  OrchestratorOptions o = p.orch_options();
  o.connect_timeout = std::chrono::milliseconds(500);
  Status st = p.connect(o);
  ASSERT_FALSE(st.is_ok());
  EXPECT_EQ(st.code(), StatusCode::kPolicy) << st.to_string();
  EXPECT_NE(st.message().find("stage 1"), std::string::npos) << st.message();
}

TEST(Pipeline, StageNeighboursAreCheckedAgainstTheirOwnEntries) {
  // Stage 1 is genuine for the orchestrator's check of stage 1 only if its evidence matches entry 1; the
  // data link 0 → 1 is verified by stage 0 against entry 1 and by stage 1 against entry 0. Swap stage 0's
  // image: the orchestrator refuses it before any link is made.
  InProcessPipeline p(2);
  p.providers[0] = std::make_unique<attest::MockProvider>(attest::mock_measurements(InProcessPipeline::label(1)));
  p.stage_nets[0] = p.make_net(p.providers[0].get());
  CML_ASSERT_OK(p.start_all());
  OrchestratorOptions o = p.orch_options();
  o.connect_timeout = std::chrono::milliseconds(500);
  Status st = p.connect(o);
  ASSERT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("stage 0"), std::string::npos) << st.message();
}

TEST(Pipeline, StageKilledMidRequestIsReportedAndReadmitted) {
  InProcessPipeline p(3);
  CML_ASSERT_OK(p.start_all());
  OrchestratorOptions o = p.orch_options();
  o.step_timeout = std::chrono::seconds(3);
  o.connect_timeout = std::chrono::milliseconds(500);  // how long a re-admission waits for a restart
  CML_ASSERT_OK(p.connect(o));
  // Stage 1 dies while handling the third step of the request.
  std::atomic<int> steps{0};
  std::atomic<bool> killed{false};
  std::atomic<bool> kill_started{false};
  std::thread killer;
  p.executors[1]->set_failure([&](const StepHeader&) {
    if (++steps == 3 && !killed.exchange(true)) {
      killer = std::thread([&] {
        kill_started = true;
        p.kill_stage(1);
      });
      // Hold this step until the stop is under way, so the request cannot finish before the kill.
      EXPECT_TRUE(cml::testing::wait_for([&] { return kill_started.load(); }, std::chrono::seconds(2)));
    }
    return false;
  });
  auto t0 = std::chrono::steady_clock::now();
  auto out = p.orch->generate({req({1, 2}, 200)});
  auto took = std::chrono::steady_clock::now() - t0;
  if (killer.joinable()) killer.join();
  ASSERT_TRUE(killed);
  ASSERT_FALSE(out[0].status.is_ok());
  EXPECT_NE(out[0].status.message().find("stage 1"), std::string::npos) << out[0].status.to_string();
  EXPECT_LT(took, o.step_timeout + std::chrono::seconds(1));  // within its timeout, never a hang
  EXPECT_EQ(p.orch->down_stages(), std::vector<uint32_t>{1});
  // While it is down, requests fail fast with a clear error.
  auto down = p.orch->generate({req({1, 2}, 2)});
  EXPECT_FALSE(down[0].status.is_ok());
  EXPECT_NE(down[0].status.message().find("stage 1"), std::string::npos) << down[0].status.to_string();
  // Restart it: the next request re-admits it (fresh handshake and init) and is served; stages 0 and 2
  // kept running.
  CML_ASSERT_OK(p.start_stage(1));
  auto after = p.orch->generate({req({1, 2}, 6)});
  ASSERT_TRUE(after[0].status.is_ok()) << after[0].status.to_string();
  EXPECT_EQ(after[0].tokens, reference_generation(p.cfg, req({1, 2}, 6)));
  EXPECT_TRUE(p.orch->down_stages().empty());
}

TEST(Pipeline, RestartedLastStageIsReadmitted) {
  InProcessPipeline p(2);
  CML_ASSERT_OK(p.start_all());
  CML_ASSERT_OK(p.connect());
  CML_ASSERT_OK(p.orch->generate({req({1}, 2)})[0].status);
  p.kill_stage(1);
  ASSERT_TRUE(cml::testing::wait_for(
      [&] {
        p.orch->health_check().ignore_error();
        return !p.orch->down_stages().empty();
      },
      std::chrono::seconds(5)));
  CML_ASSERT_OK(p.start_stage(1));
  auto out = p.orch->generate({req({1, 5}, 4)});
  ASSERT_TRUE(out[0].status.is_ok()) << out[0].status.to_string();
  EXPECT_EQ(out[0].tokens, reference_generation(p.cfg, req({1, 5}, 4)));
}

// The CPUs the kernel lets this process's thread named `name` run on, from /proc (its
// Cpus_allowed_list, e.g. "1" or "0-3"); empty if no such thread.
std::string cpus_of_thread(const std::string& name) {
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream comm(task.path() / "comm");
    std::string c;
    if (!std::getline(comm, c) || c != name) continue;
    std::ifstream status(task.path() / "status");
    for (std::string line; std::getline(status, line);) {
      const std::string key = "Cpus_allowed_list:";
      if (line.rfind(key, 0) == 0) return line.substr(line.find_first_not_of(" \t", key.size()));
    }
  }
  return "";
}

TEST(Pipeline, DataThreadsRunOnTheCpusTheyArePlacedOn) {
  const std::vector<int> cpus = this_thread_cpus().value();
  InProcessPipeline p(2);
  // Neighbours on different CPUs where there are two (stage 0 on the last, stage 1 and the return reader on
  // the first).
  p.data_cpus = {cpus.back(), cpus.front()};
  CML_ASSERT_OK(p.start_all());
  auto o = p.orch_options();
  o.return_cpu = cpus.front();
  CML_ASSERT_OK(p.connect(o));
  auto out = p.orch->generate({req({3, 1}, 5)});
  CML_ASSERT_OK(out[0].status);
  EXPECT_EQ(out[0].tokens, reference_generation(p.cfg, req({3, 1}, 5)));
  EXPECT_EQ(cpus_of_thread("stage0-data"), std::to_string(cpus.back()));
  EXPECT_EQ(cpus_of_thread("stage1-data"), std::to_string(cpus.front()));
  EXPECT_EQ(cpus_of_thread("orch-return"), std::to_string(cpus.front()));
}

TEST(Pipeline, AnUnusableCpuIsRefusedBeforeAnythingStarts) {
  const int bad = ::cml::testing::unusable_cpu();
  InProcessPipeline p(1);
  p.data_cpus = {bad};
  Status st = p.start_stage(0);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("stage 0 data thread: CPU " + std::to_string(bad)), std::string::npos) << st.to_string();
  // The same stage placed nowhere in particular starts, and an orchestrator asked to place its return
  // reader on that CPU is refused.
  p.data_cpus.clear();
  CML_ASSERT_OK(p.start_stage(0));
  auto o = p.orch_options();
  o.return_cpu = bad;
  st = p.connect(o);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("orchestrator return thread: CPU " + std::to_string(bad)), std::string::npos)
      << st.to_string();
}

TEST(Pipeline, MalformedControlMessageGetsAnErrorReply) {
  InProcessPipeline p(1);
  CML_ASSERT_OK(p.start_all());
  auto link = p.orch_net->connect(p.manifest.stages[0].control.to_string(),
                                  {"stage 0", policy_for(p.manifest.stages[0].attestation)},
                                  Deadline::after(std::chrono::seconds(3)));
  CML_ASSERT_OK(link);
  Deadline d = Deadline::after(std::chrono::seconds(3));
  CML_ASSERT_OK((*link)->send_data(as_bytes("{\"v\":2,\"type\":\"init\"}"), d));
  net::Message m;
  ASSERT_TRUE((*link)->recv(m, d).is_ok());
  auto reply = decode_control(m.data);
  CML_ASSERT_OK(reply);
  auto* err = std::get_if<ctl::Error>(&*reply);
  ASSERT_NE(err, nullptr);
  EXPECT_NE(err->message.find("manifest_sha256: missing"), std::string::npos) << err->message;
  // Oversized: refused before parsing, and the stage keeps serving.
  std::string big(kDefaultMaxControlBytes + 1, ' ');
  ASSERT_TRUE((*link)->send_data(as_bytes(big), d).is_ok());
  ASSERT_TRUE((*link)->recv(m, d).is_ok());
  reply = decode_control(m.data);
  CML_ASSERT_OK(reply);
  err = std::get_if<ctl::Error>(&*reply);
  ASSERT_NE(err, nullptr);
  EXPECT_EQ(err->code, "RESOURCE_EXHAUSTED");
  ASSERT_TRUE((*link)->send_data(encode_control(ctl::Ping{5}), d).is_ok());
  ASSERT_TRUE((*link)->recv(m, d).is_ok());
  reply = decode_control(m.data);
  CML_ASSERT_OK(reply);
  EXPECT_EQ(std::get<ctl::Pong>(*reply).nonce, 5u);
}

}  // namespace
}  // namespace cml::pipeline
