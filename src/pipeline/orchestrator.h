// Orchestrator: verifies every stage against the manifest, links the chain, and schedules sequences
// through it (runs outside the TEEs, or inside one when the manifest says it must attest).
//
// connect(): for each stage, an attested control channel (the stage's evidence appraised against *its*
// manifest entry), Init → Ready (the stage has checked its weights); then Link messages chain the data
// links stage i → i+1; the orchestrator opens the data link to stage 0 and a return link on the last
// stage's control endpoint (results come back there, as token ids only).
//
// generate() runs many independent sequences at once (continuous in-flight batching, schedule.h): up to
// one group of sequences per stage in flight, each group one step (prefill or one decode token) through
// the whole chain. Every operation has a deadline; a stage that dies is reported as soon as its control
// link breaks (or at the latest when a step's deadline passes), the affected sequences fail with a
// message naming it, and readmit() brings a restarted stage back (fresh handshake and init, neighbours
// re-linked) without restarting the others. Step ids are unique, so a late result of an abandoned step
// is recognised and dropped, never returned.
//
// Thread safety: one thread calls the public methods; internal reader threads feed an event queue.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "base/spin.h"
#include "pipeline/data_io.h"
#include "pipeline/link.h"
#include "pipeline/manifest.h"
#include "pipeline/protocol.h"
#include "pipeline/schedule.h"

namespace cml::pipeline {

struct OrchestratorOptions {
  Duration connect_timeout = std::chrono::seconds(10);  // reaching a stage (retried until then) + handshake
  Duration init_timeout = std::chrono::seconds(60);     // Ready after Init (the stage hashes its weights)
  Duration op_timeout = std::chrono::seconds(5);        // any other control reply
  Duration step_timeout = std::chrono::seconds(30);     // a step's result through the whole chain
  uint32_t max_batch = 64;                              // sequences per step
  // Fewest sequences per group before the active ones are split into several groups in flight (see
  // ContinuousBatcher). 1: one group per stage (stages on their own machines). Stages sharing one host's
  // memory bandwidth decode faster with one full group (e.g. 8: the batched GEMV's widest path).
  uint32_t min_group_rows = 1;
  size_t max_control_bytes = kDefaultMaxControlBytes;
  // Where stage i connects its data-out link (VSock deployments: a relay); default: stage i+1's data
  // endpoint from the manifest. Index i, size ≤ stages − 1.
  std::vector<std::string> downstream_overrides;
  // Endpoints to reach stage i at, overriding the manifest (tests binding port 0).
  std::vector<std::pair<std::string, std::string>> stage_endpoint_overrides;
  // The CPU (Linux number) the thread reading the last stage's results runs on, or -1 for wherever the
  // scheduler puts it (see StageOptions::data_cpu).
  int return_cpu = -1;
};

struct GenerateRequest {
  std::vector<uint32_t> prompt;
  uint32_t max_new_tokens = 16;
  Sampling sampling;
  std::optional<uint32_t> stop_token;
};

struct Generation {
  Status status;                 // OK, or why the sequence failed (naming the stage)
  std::vector<uint32_t> tokens;  // generated tokens (those before a failure too)
  double first_token_ms = 0;     // from the start of generate()
  double total_ms = 0;
};

// (request index, token) as each token arrives.
using TokenCallback = std::function<void(size_t, uint32_t)>;

struct StageReport {
  bool up = false;
  LinkInfo control;  // cipher, verified measurements
  uint64_t steps = 0, compute_us = 0;
  uint64_t in_frames = 0, in_bytes = 0, out_frames = 0, out_bytes = 0;
};
struct PipelineReport {
  std::vector<StageReport> stages;
  LinkCounters to_first, from_last;  // the orchestrator's own data links
  uint64_t stale_results = 0;        // results of abandoned steps that arrived late (dropped)
};

class Orchestrator {
 public:
  Orchestrator(Manifest manifest, Network& network, OrchestratorOptions options = {});
  ~Orchestrator();
  Orchestrator(const Orchestrator&) = delete;
  Orchestrator& operator=(const Orchestrator&) = delete;

  // Verifies, initialises and links every stage.
  Status connect();
  // Runs the requests to completion (or failure) and returns one Generation per request, in order.
  std::vector<Generation> generate(const std::vector<GenerateRequest>& requests, const TokenCallback& on_token = {});
  // OrchestratorOptions::min_group_rows for later generate() calls (not during one).
  void set_min_group_rows(uint32_t n) { opt_.min_group_rows = n; }
  // One step with a caller-made payload through the chain (benchmarks); returns the last stage's
  // payload. The sequences must have been started with start_sequences().
  Result<net::Tensor> raw_step(const StepHeader& header, const net::TensorView& payload);
  Status start_sequences(const std::vector<uint64_t>& seqs);
  Status drop_sequences(const std::vector<uint64_t>& seqs);
  // Pings every stage; UNAVAILABLE naming each stage that is down or silent. Refreshes report().
  Status health_check();
  // Re-admits a stage that restarted: fresh handshake and init, neighbours re-linked.
  Status readmit(uint32_t stage);
  // Brings back every stage marked down (readmit each); OK if all are up.
  Status recover();
  std::vector<uint32_t> down_stages() const;
  Status shutdown();
  PipelineReport report() const;
  const Manifest& manifest() const { return manifest_; }

 private:
  struct Event {
    enum class Kind { kControl, kControlDown, kResult, kReturnDown } kind;
    uint32_t stage = 0;
    uint64_t epoch = 0;
    ControlMessage msg;
    Status status;
    StepMessage step;
  };
  struct StageConn {
    std::shared_ptr<Link> control;
    std::thread reader;
    uint64_t epoch = 0;
    bool up = false;
    StageReport last;
  };

  std::string control_ep(uint32_t i) const;
  std::string data_ep(uint32_t i) const;
  PeerExpectation expect_stage(uint32_t i) const;
  Result<std::unique_ptr<Link>> connect_retry(const std::string& ep, const PeerExpectation& e);
  Status admit(uint32_t i);      // control + init
  Status link_from(uint32_t i);  // Link stage i → i+1
  Status open_first();           // data link to stage 0
  Status open_return();          // return link from the last stage
  void close_stage(uint32_t i);
  Status send_control(uint32_t i, const ControlMessage& m);
  // Waits for a control message of `type` from stage i; other events are handled on the way.
  Result<ControlMessage> await(uint32_t i, std::string_view type, Deadline d);
  Status broadcast_and_await(const ControlMessage& m, std::string_view reply, Deadline d);
  std::optional<Event> next_event(Deadline d);
  std::optional<Event> next_data_event(Deadline d);
  // A step error reported by one stage is often the symptom of a neighbour that died (a broken pipe
  // towards it). Gives control links a short grace to report a death and names the dead stage if one
  // went down; otherwise returns `st`. Events seen meanwhile are re-delivered in order.
  Status attribute_step_failure(Status st);
  void note(const Event& e);  // bookkeeping every event gets
  void push(Event e);

  Manifest manifest_;
  std::string digest_;
  Network& net_;
  OrchestratorOptions opt_;
  uint64_t session_;
  uint64_t next_seq_, next_step_, next_nonce_ = 1;

  std::vector<StageConn> stages_;
  std::shared_ptr<Link> to_first_, from_last_;
  std::thread return_reader_;
  uint64_t return_epoch_ = 0;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Event> events_;
  std::atomic<uint64_t> pushed_{0};  // events ever pushed: what a spinning next_event watches
  AdaptiveSpin event_spin_;          // next_event's (one caller at a time)
  std::deque<Event> results_;
  std::deque<Event> backlog_;  // control replies of other stages seen during an await  // results and return-link
                               // failures seen while awaiting control replies
  uint64_t stale_results_ = 0;
  std::map<uint32_t, Status> down_reason_;
};

}  // namespace cml::pipeline
