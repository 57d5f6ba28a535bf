// Schedules as data.
//
// A Schedule is one instruction list per stage; a stage runs its list in order, blocking on receives.
// fill_drain() is GPipe-style forward-only micro-batching (inference); one_f_one_b() adds backward
// passes in the 1F1B order (warm-up forwards, then alternate one forward and one backward, then drain
// the backwards), which bounds the activations a stage holds to its depth from the end. simulate() runs
// a schedule on an idealised machine (one instruction per stage per tick, unbounded link buffers) and
// checks that it is complete (every micro-batch's forward — and backward when the schedule has them —
// runs exactly once on every stage), that every dependency is respected, and that it cannot deadlock.
//
// ContinuousBatcher is the in-flight schedule for autoregressive decoding: many independent sequences
// share the pipeline; the orchestrator launches groups of ready sequences (at most one group per stage in
// flight) so every stage has work and batches the sequences of a group into one pass.
//
// Thread safety: values; ContinuousBatcher belongs to one thread (the orchestrator's scheduler).
#pragma once

#include <cstdint>
#include <deque>
#include <set>
#include <string>
#include <vector>

#include "base/status.h"

namespace cml::pipeline {

enum class Op : uint8_t {
  kRecvActivation,  // from stage s-1 (absent on stage 0: the orchestrator feeds it)
  kForward,
  kSendActivation,  // to stage s+1 (absent on the last stage)
  kRecvGrad,        // from stage s+1 (absent on the last stage)
  kBackward,
  kSendGrad,  // to stage s-1 (absent on stage 0)
};
std::string_view op_name(Op op);

struct Instr {
  Op op;
  uint32_t micro_batch;
  bool operator==(const Instr&) const = default;
};

struct Schedule {
  uint32_t stages = 0;
  uint32_t micro_batches = 0;
  bool has_backward = false;
  std::vector<std::vector<Instr>> per_stage;
};

// INVALID_ARGUMENT for 0 stages or 0 micro-batches.
Result<Schedule> fill_drain(uint32_t stages, uint32_t micro_batches);
Result<Schedule> one_f_one_b(uint32_t stages, uint32_t micro_batches);

struct SimulationReport {
  uint32_t ticks = 0;  // ticks until every stage finished
  // Most activations a stage held at once (forwarded but not yet backpropagated; forward-only: 0).
  std::vector<uint32_t> peak_live_activations;
  // Compute instructions per stage / (ticks) — 1 − bubble.
  double utilisation = 0;
};
// PROTOCOL error naming the first violation (missing/duplicate op, order, deadlock).
Result<SimulationReport> simulate(const Schedule& s);

// In-flight scheduling of independent sequences through a pipeline of `stages` stages.
class ContinuousBatcher {
 public:
  // `min_rows`: fewest sequences worth a group of their own. Each group in flight costs every stage one
  // pass over its weights, so where stages share memory bandwidth (co-located) fewer, fuller groups give
  // more tokens per byte read; where each stage has its own machine, one group per stage keeps them busy.
  ContinuousBatcher(uint32_t stages, uint32_t max_batch, uint32_t min_rows = 1)
      : stages_(stages), max_batch_(max_batch), min_rows_(min_rows == 0 ? 1 : min_rows) {}
  void add(uint64_t seq);     // a new sequence, ready for its first step
  void remove(uint64_t seq);  // finished or failed (also if in flight: its result is then discarded)
  // The next group to launch, or empty if `stages` groups are already in flight or nothing is ready.
  // Groups are sized so the active sequences spread evenly over min(stages, active / min_rows) groups
  // (at least one), each at most max_batch.
  std::vector<uint64_t> next_group();
  // A launched group came back; its sequences that are still active become ready again.
  void complete(const std::vector<uint64_t>& group);
  size_t active() const { return active_.size(); }
  size_t in_flight_groups() const { return groups_in_flight_; }

 private:
  uint32_t stages_, max_batch_, min_rows_;
  std::set<uint64_t> active_;
  std::deque<uint64_t> ready_;
  uint32_t groups_in_flight_ = 0;
};

}  // namespace cml::pipeline
