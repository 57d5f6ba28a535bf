// StageRuntime: one pipeline stage (runs inside a TEE).
//
// Two phases. start() binds the control and data listeners and begins accepting. Phase 1 (control):
// the orchestrator connects to the control endpoint (attested channel), sends Init; the stage checks the
// manifest digest, its index, and the SHA-256 of every weight tensor its executor loaded against its
// manifest entry, and answers Ready — or an Error naming the first mismatching tensor. Phase 2 (data):
// Link tells the stage where to connect its data-out link (the next stage's data endpoint, or a relay);
// the stage verifies that peer against the *next stage's* manifest entry. Its data-in listener accepts
// the previous stage (verified against *that* stage's entry) or, for stage 0, the orchestrator. The last
// stage's results go back on a "return" connection the orchestrator opens on the control endpoint.
//
// Steps arrive on data-in; the stage runs its layer range (one KV cache per sequence, held by the
// executor), and sends the result downstream; the last stage samples a token per sequence so logits never
// leave the TEE. When a step fails, the stage sends ERR downstream and an Error on control, and keeps
// serving. A new control connection (an orchestrator that restarted) resets the stage's sequences.
// A new data-in connection replaces the old one (a neighbour that restarted).
//
// Threads: start()/stop() from one owner thread. Internally: a control acceptor, one control session, a
// data acceptor and a data worker; the executor is serialised by one mutex.
#pragma once

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "pipeline/data_io.h"
#include "pipeline/executor.h"
#include "pipeline/link.h"
#include "pipeline/manifest.h"

namespace cml::pipeline {

struct StageOptions {
  Duration io_timeout = std::chrono::seconds(10);  // each send, and reading a connection's first message
  Duration connect_timeout = std::chrono::seconds(10);
  size_t max_control_bytes = kDefaultMaxControlBytes;
  // The CPU (Linux number) the data thread runs on, or -1 for wherever the scheduler puts it. For stages
  // that share a host's CPUs: neighbours on different CPUs overlap a hop's chunks (base/thread.h).
  int data_cpu = -1;
};

// What can be checked of `o` before stage `index` starts (its data thread's CPU); StageRuntime::start
// checks it first, and `cml stage` before it loads any weights.
Status check_stage_options(const StageOptions& o, uint32_t index);

struct StageStats {
  uint64_t steps = 0, failed_steps = 0;
  uint64_t compute_us = 0;
  LinkCounters data_in, data_out;
};

class StageRuntime {
 public:
  StageRuntime(Manifest manifest, uint32_t index, std::unique_ptr<StageExecutor> executor, Network& network,
               StageOptions options = {});
  ~StageRuntime();
  StageRuntime(const StageRuntime&) = delete;
  StageRuntime& operator=(const StageRuntime&) = delete;

  // Binds the listeners (the manifest's endpoints unless overridden, e.g. tcp://127.0.0.1:0) and starts
  // the threads.
  Status start(const std::string& control_override = "", const std::string& data_override = "");
  std::string control_endpoint() const;
  std::string data_endpoint() const;
  // Stops accepting, aborts every link, joins the threads. Idempotent.
  void stop();
  // True once an orchestrator sent Shutdown (the owner then calls stop()).
  bool wait_shutdown(Deadline deadline);
  StageStats stats() const;

 private:
  void control_accept_loop();
  void control_session(std::shared_ptr<Link> link, Bytes first);
  Status handle_control(const ControlMessage& m, bool& quit);
  void data_accept_loop();
  void data_loop();
  void handle_step(StepMessage& msg, Link& in);
  void report_error(uint64_t step, const Status& st);
  Status send_control(const ControlMessage& m);
  Status check_weights(uint32_t& verified) const;
  PeerExpectation orchestrator_expectation() const;
  PeerExpectation stage_expectation(uint32_t i) const;

  Manifest manifest_;
  std::string digest_;
  uint32_t index_;
  std::unique_ptr<StageExecutor> exec_;
  Network& net_;
  StageOptions opt_;

  std::unique_ptr<LinkListener> control_listener_, data_listener_;
  std::thread control_acceptor_, control_thread_, data_acceptor_, data_worker_;
  std::atomic<bool> stopping_{false};

  mutable std::mutex mu_;  // guards the fields below
  std::condition_variable cv_;
  std::shared_ptr<Link> control_;     // current control session
  std::shared_ptr<Link> data_in_;     // being served
  std::shared_ptr<Link> pending_in_;  // accepted, not yet served
  std::shared_ptr<Link> data_out_;
  bool ready_ = false;
  bool shutdown_requested_ = false;
  std::map<uint64_t, model::Sampler> samplers_;  // seq → its sampler (used on the last stage)
  StageStats stats_;

  std::mutex send_mu_;  // serialises sends on control_ and data_out_
  std::mutex exec_mu_;  // serialises the executor
};

}  // namespace cml::pipeline
