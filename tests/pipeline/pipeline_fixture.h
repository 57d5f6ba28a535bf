// In-process pipelines for tests: StageRuntimes with fake executors on mem:// endpoints, each with its
// own SecureNetwork (mock attestation, a distinct measurement per stage), and an unattested orchestrator.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "attest/mock.h"
#include "net/stream.h"
#include "pipeline/fake_executor.h"
#include "pipeline/orchestrator.h"
#include "pipeline/stage.h"

namespace cml::pipeline::testing {

// A free TCP port on the loopback, as tcp://127.0.0.1:PORT, never the same twice in one process.
inline std::string free_endpoint() {
  return net::free_loopback_endpoint().value();
}

inline std::string unique_prefix() {
  static std::atomic<int> n{0};
  return "mem://t" + std::to_string(n++) + "-";
}

struct InProcessPipeline {
  FakeModelConfig cfg;
  Manifest manifest;
  std::vector<std::unique_ptr<attest::MockProvider>> providers;
  std::vector<std::unique_ptr<Network>> stage_nets;
  std::vector<std::unique_ptr<StageRuntime>> stages;
  std::unique_ptr<Network> orch_net;
  std::unique_ptr<Orchestrator> orch;
  // The executor each stage was built with (owned by the runtime); for failure injection.
  std::vector<FakeModelExecutor*> executors;
  // StageOptions::data_cpu for stage i, where given.
  std::vector<int> data_cpus;

  // Links are encrypted mem:// pipes, or plain ones (`plain`), or encrypted TCP on the loopback (`tcp`).
  explicit InProcessPipeline(uint32_t n_stages, FakeModelConfig c = {}, bool plain = false, bool tcp = false) : cfg(c) {
    std::string p = unique_prefix();
    std::vector<std::pair<std::string, std::string>> eps;
    for (uint32_t i = 0; i < n_stages; ++i) {
      if (tcp) {
        eps.push_back({free_endpoint(), free_endpoint()});
      } else {
        eps.push_back({p + "c" + std::to_string(i), p + "d" + std::to_string(i)});
      }
    }
    manifest = fake_model_manifest(cfg, n_stages, eps);
    for (uint32_t i = 0; i < n_stages; ++i) {
      manifest.stages[i].attestation.expected_measurements = attest::mock_measurements(label(i));
    }
    plain_ = plain;
    if (plain) {
      for (auto& s : manifest.stages) s.attestation.expected_measurements.clear();
    }
    for (uint32_t i = 0; i < n_stages; ++i) {
      providers.push_back(std::make_unique<attest::MockProvider>(attest::mock_measurements(label(i))));
      stage_nets.push_back(make_net(providers.back().get()));
      stages.emplace_back();
      executors.push_back(nullptr);
    }
    orch_net = make_net(nullptr);
  }

  static std::string label(uint32_t i) { return "stage-" + std::to_string(i); }

  std::unique_ptr<Network> make_net(attest::Provider* provider) const {
    if (plain_) return make_plain_memory_network();
    SecureNetworkConfig nc;
    nc.provider = provider;
    nc.verifiers = attest::mock_verifier_set();
    nc.handshake_timeout = std::chrono::seconds(5);
    return make_secure_network(nc);
  }

  static StageOptions stage_options() {
    StageOptions o;
    o.io_timeout = std::chrono::seconds(5);
    o.connect_timeout = std::chrono::seconds(5);
    return o;
  }

  // Starts stage i with a fresh executor (customised by `tweak`).
  Status start_stage(uint32_t i, const std::function<void(FakeModelExecutor&)>& tweak = {}) {
    auto ex = std::make_unique<FakeModelExecutor>(cfg, manifest.stages[i].layer_begin, manifest.stages[i].layer_end);
    if (tweak) tweak(*ex);
    executors[i] = ex.get();
    StageOptions o = stage_options();
    if (i < data_cpus.size()) o.data_cpu = data_cpus[i];
    stages[i] = std::make_unique<StageRuntime>(manifest, i, std::move(ex), *stage_nets[i], o);
    return stages[i]->start();
  }

  void kill_stage(uint32_t i) {
    stages[i]->stop();
    stages[i].reset();
  }

  Status start_all() {
    for (uint32_t i = 0; i < stages.size(); ++i) CML_RETURN_IF_ERROR(start_stage(i));
    return ok_status();
  }

  OrchestratorOptions orch_options() const {
    OrchestratorOptions o;
    o.connect_timeout = std::chrono::seconds(3);
    o.init_timeout = std::chrono::seconds(5);
    o.op_timeout = std::chrono::seconds(3);
    o.step_timeout = std::chrono::seconds(5);
    return o;
  }

  Status connect(OrchestratorOptions o) {
    orch = std::make_unique<Orchestrator>(manifest, *orch_net, o);
    return orch->connect();
  }
  Status connect() { return connect(orch_options()); }

  ~InProcessPipeline() {
    orch.reset();
    for (auto& s : stages) {
      if (s) s->stop();
    }
  }

 private:
  bool plain_ = false;
};

// The reference: the same fake model run in one executor, one sequence at a time, greedy/seeded.
inline std::vector<uint32_t> reference_generation(const FakeModelConfig& c, const GenerateRequest& q) {
  FakeModelExecutor ex(c, 0, c.layers);
  CML_CHECK(ex.start_sequence(1).is_ok());
  std::vector<uint32_t> out;
  auto sampler = make_sampler(q.sampling).value();
  StepHeader h{1, {{1, 0, static_cast<uint32_t>(q.prompt.size())}}};
  std::vector<uint32_t> toks = q.prompt;
  for (uint32_t k = 0; k < q.max_new_tokens; ++k) {
    StepOutput o;
    StepInput in;
    in.tokens = toks;
    CML_CHECK(ex.forward(h, in, o).is_ok());
    uint32_t t = static_cast<uint32_t>(sampler.sample(o.data));
    out.push_back(t);
    if (q.stop_token && t == *q.stop_token) break;
    h.seqs[0].pos += h.seqs[0].len;
    h.seqs[0].len = 1;
    toks = {t};
  }
  return out;
}

}  // namespace cml::pipeline::testing
