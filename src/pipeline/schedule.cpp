#include "pipeline/schedule.h"

#include <algorithm>
#include <map>

namespace cml::pipeline {

std::string_view op_name(Op op) {
  switch (op) {
    case Op::kRecvActivation:
      return "recv_act";
    case Op::kForward:
      return "forward";
    case Op::kSendActivation:
      return "send_act";
    case Op::kRecvGrad:
      return "recv_grad";
    case Op::kBackward:
      return "backward";
    case Op::kSendGrad:
      return "send_grad";
  }
  return "?";
}

namespace {

Status check_sizes(uint32_t stages, uint32_t mbs) {
  if (stages == 0) return invalid_argument("a schedule needs at least one stage");
  if (mbs == 0) return invalid_argument("a schedule needs at least one micro-batch");
  if (stages > 4096 || mbs > (1u << 20)) return invalid_argument("schedule too large");
  return ok_status();
}

void push_forward(std::vector<Instr>& v, uint32_t s, uint32_t p, uint32_t mb) {
  if (s > 0) v.push_back({Op::kRecvActivation, mb});
  v.push_back({Op::kForward, mb});
  if (s + 1 < p) v.push_back({Op::kSendActivation, mb});
}

void push_backward(std::vector<Instr>& v, uint32_t s, uint32_t p, uint32_t mb) {
  if (s + 1 < p) v.push_back({Op::kRecvGrad, mb});
  v.push_back({Op::kBackward, mb});
  if (s > 0) v.push_back({Op::kSendGrad, mb});
}

}  // namespace

Result<Schedule> fill_drain(uint32_t stages, uint32_t mbs) {
  CML_RETURN_IF_ERROR(check_sizes(stages, mbs));
  Schedule sch{stages, mbs, false, std::vector<std::vector<Instr>>(stages)};
  for (uint32_t s = 0; s < stages; ++s) {
    for (uint32_t mb = 0; mb < mbs; ++mb) push_forward(sch.per_stage[s], s, stages, mb);
  }
  return sch;
}

Result<Schedule> one_f_one_b(uint32_t stages, uint32_t mbs) {
  CML_RETURN_IF_ERROR(check_sizes(stages, mbs));
  Schedule sch{stages, mbs, true, std::vector<std::vector<Instr>>(stages)};
  for (uint32_t s = 0; s < stages; ++s) {
    auto& v = sch.per_stage[s];
    uint32_t warmup = std::min(stages - s - 1, mbs);
    for (uint32_t i = 0; i < warmup; ++i) push_forward(v, s, stages, i);
    for (uint32_t j = 0; j + warmup < mbs; ++j) {
      push_forward(v, s, stages, warmup + j);
      push_backward(v, s, stages, j);
    }
    for (uint32_t j = mbs - warmup; j < mbs; ++j) push_backward(v, s, stages, j);
  }
  return sch;
}

Result<SimulationReport> simulate(const Schedule& sch) {
  const uint32_t p = sch.stages, m = sch.micro_batches;
  if (p == 0 || sch.per_stage.size() != p) return protocol_error("schedule: stage count mismatch");
  // Completeness: exactly the expected multiset of instructions per stage.
  for (uint32_t s = 0; s < p; ++s) {
    std::map<std::pair<Op, uint32_t>, int> count;
    for (const Instr& in : sch.per_stage[s]) {
      if (in.micro_batch >= m)
        return protocol_error("stage " + std::to_string(s) + ": micro-batch " + std::to_string(in.micro_batch) +
                              " out of range");
      count[{in.op, in.micro_batch}]++;
    }
    for (uint32_t mb = 0; mb < m; ++mb) {
      auto expect = [&](Op op, bool present) -> Status {
        int n = count[{op, mb}];
        if (n != (present ? 1 : 0)) {
          return protocol_error("stage " + std::to_string(s) + ": " + std::string(op_name(op)) + "(" +
                                std::to_string(mb) + ") appears " + std::to_string(n) + " times, expected " +
                                (present ? "1" : "0"));
        }
        return ok_status();
      };
      CML_RETURN_IF_ERROR(expect(Op::kRecvActivation, s > 0));
      CML_RETURN_IF_ERROR(expect(Op::kForward, true));
      CML_RETURN_IF_ERROR(expect(Op::kSendActivation, s + 1 < p));
      CML_RETURN_IF_ERROR(expect(Op::kRecvGrad, sch.has_backward && s + 1 < p));
      CML_RETURN_IF_ERROR(expect(Op::kBackward, sch.has_backward));
      CML_RETURN_IF_ERROR(expect(Op::kSendGrad, sch.has_backward && s > 0));
    }
  }
  // Execution: per stage a program counter; done[s][op][mb] records what has executed.
  std::vector<size_t> pc(p, 0);
  std::vector<std::map<std::pair<Op, uint32_t>, bool>> done(p);
  auto has = [&](uint32_t s, Op op, uint32_t mb) { return done[s].count({op, mb}) > 0; };
  SimulationReport rep;
  rep.peak_live_activations.assign(p, 0);
  std::vector<uint32_t> live(p, 0);
  size_t compute = 0;
  for (;;) {
    bool all_done = true, progressed = false;
    std::vector<std::pair<uint32_t, Instr>> executed;
    for (uint32_t s = 0; s < p; ++s) {
      if (pc[s] >= sch.per_stage[s].size()) continue;
      all_done = false;
      const Instr in = sch.per_stage[s][pc[s]];
      bool ready = false;
      switch (in.op) {
        case Op::kRecvActivation:
          ready = has(s - 1, Op::kSendActivation, in.micro_batch);
          break;
        case Op::kForward:
          ready = s == 0 || has(s, Op::kRecvActivation, in.micro_batch);
          break;
        case Op::kSendActivation:
          ready = has(s, Op::kForward, in.micro_batch);
          break;
        case Op::kRecvGrad:
          ready = has(s + 1, Op::kSendGrad, in.micro_batch);
          break;
        case Op::kBackward:
          ready = has(s, Op::kForward, in.micro_batch) && (s + 1 == p || has(s, Op::kRecvGrad, in.micro_batch));
          break;
        case Op::kSendGrad:
          ready = has(s, Op::kBackward, in.micro_batch);
          break;
      }
      if (!ready) {
        // Only receives wait on another stage; any other blocked instruction comes before a prerequisite
        // on its own stage, which is an ordering bug.
        if (in.op != Op::kRecvActivation && in.op != Op::kRecvGrad) {
          return protocol_error("stage " + std::to_string(s) + ": " + std::string(op_name(in.op)) + "(" +
                                std::to_string(in.micro_batch) + ") comes before what it depends on");
        }
        continue;
      }
      executed.push_back({s, in});
    }
    if (all_done) break;
    // Apply after the scan: a tick's effects become visible at the next tick.
    for (auto& [s, in] : executed) {
      done[s][{in.op, in.micro_batch}] = true;
      ++pc[s];
      progressed = true;
      if (in.op == Op::kForward || in.op == Op::kBackward) ++compute;
      if (sch.has_backward && in.op == Op::kForward)
        rep.peak_live_activations[s] = std::max(rep.peak_live_activations[s], ++live[s]);
      if (in.op == Op::kBackward) --live[s];
    }
    if (!progressed) {
      std::string where;
      for (uint32_t s = 0; s < p; ++s) {
        if (pc[s] < sch.per_stage[s].size()) {
          const Instr& in = sch.per_stage[s][pc[s]];
          where += " stage " + std::to_string(s) + " at " + std::string(op_name(in.op)) + "(" +
                   std::to_string(in.micro_batch) + ")";
        }
      }
      return protocol_error("schedule deadlocks:" + where);
    }
    ++rep.ticks;
  }
  rep.utilisation = rep.ticks == 0 ? 0 : double(compute) / (double(rep.ticks) * p);
  return rep;
}

void ContinuousBatcher::add(uint64_t seq) {
  if (active_.insert(seq).second) ready_.push_back(seq);
}

void ContinuousBatcher::remove(uint64_t seq) {
  active_.erase(seq);
  ready_.erase(std::remove(ready_.begin(), ready_.end(), seq), ready_.end());
}

std::vector<uint64_t> ContinuousBatcher::next_group() {
  std::vector<uint64_t> g;
  if (groups_in_flight_ >= stages_ || ready_.empty()) return g;
  const size_t groups = std::clamp<size_t>(active_.size() / min_rows_, 1, stages_ == 0 ? 1 : stages_);
  size_t per_group = (active_.size() + groups - 1) / groups;
  per_group = std::clamp<size_t>(per_group, 1, max_batch_ == 0 ? SIZE_MAX : max_batch_);
  while (!ready_.empty() && g.size() < per_group) {
    g.push_back(ready_.front());
    ready_.pop_front();
  }
  ++groups_in_flight_;
  return g;
}

void ContinuousBatcher::complete(const std::vector<uint64_t>& group) {
  if (groups_in_flight_ > 0) --groups_in_flight_;
  for (uint64_t s : group) {
    if (active_.count(s)) ready_.push_back(s);
  }
}

}  // namespace cml::pipeline
