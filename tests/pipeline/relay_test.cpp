// The relay forwards stage-to-stage bytes without seeing plaintext.
#include "pipeline/relay.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>

#include "attest/mock.h"
#include "net/stream.h"
#include "pipeline/fake_executor.h"
#include "pipeline/orchestrator.h"
#include "pipeline/stage.h"
#include "pipeline_fixture.h"
#include "support/test_support.h"

namespace cml::pipeline {
namespace {

using testing::free_endpoint;

bool contains(const Bytes& hay, ByteSpan needle) {
  return std::search(hay.begin(), hay.end(), needle.begin(), needle.end()) != hay.end();
}

TEST(Relay, CarriesOnlyCiphertextBetweenStages) {
  FakeModelConfig cfg;
  cfg.hidden = 32;
  Manifest m = fake_model_manifest(cfg, 2, {{free_endpoint(), free_endpoint()}, {free_endpoint(), free_endpoint()}});
  for (uint32_t i = 0; i < 2; ++i) {
    m.stages[i].attestation.expected_measurements = attest::mock_measurements("relay-" + std::to_string(i));
  }
  std::vector<std::unique_ptr<attest::MockProvider>> providers;
  std::vector<std::unique_ptr<Network>> nets;
  std::vector<std::unique_ptr<StageRuntime>> stages;
  for (uint32_t i = 0; i < 2; ++i) {
    providers.push_back(
        std::make_unique<attest::MockProvider>(attest::mock_measurements("relay-" + std::to_string(i))));
    SecureNetworkConfig nc;
    nc.provider = providers.back().get();
    nc.verifiers = attest::mock_verifier_set();
    nets.push_back(make_secure_network(nc));
    auto ex = std::make_unique<FakeModelExecutor>(cfg, m.stages[i].layer_begin, m.stages[i].layer_end);
    stages.push_back(std::make_unique<StageRuntime>(m, i, std::move(ex), *nets.back()));
    ASSERT_TRUE(stages.back()->start().is_ok());
  }
  // The host relay between stage 0's data-out and stage 1's data-in; it records everything it forwards.
  Bytes capture;
  Relay relay("tcp://127.0.0.1:0", m.stages[1].data.to_string(),
              [&](bool, ByteSpan b) { capture.insert(capture.end(), b.begin(), b.end()); });
  ASSERT_TRUE(relay.start().is_ok());

  SecureNetworkConfig onc;
  onc.verifiers = attest::mock_verifier_set();
  auto onet = make_secure_network(onc);
  OrchestratorOptions oo;
  oo.connect_timeout = std::chrono::seconds(5);
  oo.downstream_overrides = {relay.local_endpoint()};
  Orchestrator orch(m, *onet, oo);
  Status st = orch.connect();
  ASSERT_TRUE(st.is_ok()) << st.to_string();
  GenerateRequest q;
  q.prompt = {11, 12, 13, 14, 15, 16, 17, 18};
  q.max_new_tokens = 8;
  auto out = orch.generate({q});
  ASSERT_TRUE(out[0].status.is_ok()) << out[0].status.to_string();
  ASSERT_TRUE(orch.shutdown().is_ok());
  relay.stop();
  for (auto& s : stages) s->stop();

  // The activations stage 0 sent: recompute them with stage 0's executor.
  FakeModelExecutor s0(cfg, m.stages[0].layer_begin, m.stages[0].layer_end);
  ASSERT_TRUE(s0.start_sequence(1).is_ok());
  StepOutput h;
  StepInput in;
  in.tokens = q.prompt;
  ASSERT_TRUE(s0.forward({1, {{1, 0, 8}}}, in, h).is_ok());
  const size_t act_bytes = h.data.size() * sizeof(float);
  ASSERT_GT(capture.size(), act_bytes);  // the relay did carry the activations…
  const auto* act = reinterpret_cast<const uint8_t*>(h.data.data());
  // …but no 16-byte window of them, no tensor name, no sentinel and no step header appears in clear.
  for (size_t off = 0; off + 16 <= act_bytes; off += 4) {
    ASSERT_FALSE(contains(capture, ByteSpan(act + off, 16))) << "plaintext activation bytes at offset " << off;
  }
  for (std::string_view s : {"hidden", "step", "END", "ERR"}) EXPECT_FALSE(contains(capture, as_bytes(s))) << s;
  std::vector<int64_t> hdr = encode_step_header({1, {{1, 0, 8}}});
  EXPECT_FALSE(contains(capture, ByteSpan(reinterpret_cast<const uint8_t*>(hdr.data() + 2), 16)));
  // Positive control: the same search finds the activations in an unencrypted copy of them.
  Bytes plain(act, act + act_bytes);
  EXPECT_TRUE(contains(plain, ByteSpan(act + 16, 16)));
}

}  // namespace
}  // namespace cml::pipeline
