#include "pipeline/orchestrator.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <thread>

#include "base/thread.h"
#include "crypto/random.h"

namespace cml::pipeline {

namespace {

using Clock_ = std::chrono::steady_clock;

double ms_since(Clock_::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock_::now() - t0).count();
}

std::string ms_text(Duration d) {
  return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(d).count()) + " ms";
}

StatusCode code_from_name(std::string_view name) {
  for (int c = 0; c <= static_cast<int>(StatusCode::kUnimplemented); ++c) {
    if (status_code_name(static_cast<StatusCode>(c)) == name) return static_cast<StatusCode>(c);
  }
  return StatusCode::kInternal;
}

}  // namespace

Orchestrator::Orchestrator(Manifest manifest, Network& network, OrchestratorOptions options)
    : manifest_(std::move(manifest)), net_(network), opt_(std::move(options)) {
  digest_ = manifest_digest(manifest_);
  session_ = crypto::random_u64() >> 12;
  // Ids start at a random point so that two orchestrator sessions never share step or sequence ids.
  next_seq_ = (crypto::random_u64() >> 24) + 1;
  next_step_ = (crypto::random_u64() >> 24) + 1;
  stages_.resize(manifest_.stages.size());
}

Orchestrator::~Orchestrator() {
  for (uint32_t i = 0; i < stages_.size(); ++i) close_stage(i);
  if (to_first_) to_first_->abort();
  if (from_last_) from_last_->abort();
  if (return_reader_.joinable()) return_reader_.join();
}

std::string Orchestrator::control_ep(uint32_t i) const {
  if (i < opt_.stage_endpoint_overrides.size()) return opt_.stage_endpoint_overrides[i].first;
  return manifest_.stages[i].control.to_string();
}

std::string Orchestrator::data_ep(uint32_t i) const {
  if (i < opt_.stage_endpoint_overrides.size()) return opt_.stage_endpoint_overrides[i].second;
  return manifest_.stages[i].data.to_string();
}

PeerExpectation Orchestrator::expect_stage(uint32_t i) const {
  return {"stage " + std::to_string(i), policy_for(manifest_.stages[i].attestation)};
}

void Orchestrator::push(Event e) {
  std::lock_guard lk(mu_);
  events_.push_back(std::move(e));
  pushed_.fetch_add(1, std::memory_order_release);
  cv_.notify_all();
}

Result<std::unique_ptr<Link>> Orchestrator::connect_retry(const std::string& ep, const PeerExpectation& e) {
  Deadline d = Deadline::after(opt_.connect_timeout);
  Duration wait = std::chrono::milliseconds(10);
  for (;;) {
    auto r = net_.connect(ep, e, d);
    if (r) return r;
    const StatusCode c = r.status().code();
    // Only an absent peer is worth retrying; attestation and policy failures are final.
    if ((c != StatusCode::kUnavailable && c != StatusCode::kTimeout) || d.expired()) {
      return r.status().with_context(e.role + " at " + ep);
    }
    std::this_thread::sleep_for(std::min<Duration>(wait, d.remaining()));
    wait = std::min<Duration>(wait * 2, std::chrono::milliseconds(200));
    if (d.expired())
      return r.status().with_context(e.role + " at " + ep + " (gave up after " + ms_text(opt_.connect_timeout) + ")");
  }
}

void Orchestrator::close_stage(uint32_t i) {
  StageConn& s = stages_[i];
  if (s.control) s.control->abort();
  if (s.reader.joinable()) s.reader.join();
  s.control.reset();
  s.up = false;
}

Status Orchestrator::admit(uint32_t i) {
  close_stage(i);
  StageConn& s = stages_[i];
  CML_ASSIGN_OR_RETURN(auto link, connect_retry(control_ep(i), expect_stage(i)));
  s.control = std::move(link);
  s.epoch++;
  s.last.control = s.control->info();
  {
    std::lock_guard lk(mu_);
    down_reason_.erase(i);
  }
  s.reader = std::thread([this, i, link = s.control, epoch = s.epoch, max = opt_.max_control_bytes] {
    name_this_thread("orch-ctl" + std::to_string(i));
    for (;;) {
      net::Message m;
      Status st = link->recv(m, Deadline::never());
      if (st.is_ok() && m.kind == net::Message::Kind::kShutdown) st = unavailable("stage closed its control link");
      if (st.is_ok() && m.kind != net::Message::Kind::kData) st = protocol_error("stage sent a tensor on control");
      if (st.is_ok()) {
        auto msg = decode_control(m.data, max);
        if (msg) {
          push(Event{Event::Kind::kControl, i, epoch, std::move(*msg), {}, {}});
          continue;
        }
        st = msg.status();
        link->abort();
      }
      push(Event{Event::Kind::kControlDown, i, epoch, ctl::Shutdown{}, st, {}});
      return;
    }
  });
  s.up = true;
  CML_RETURN_IF_ERROR(send_control(i, ctl::Init{digest_, i, session_}));
  auto r = await(i, "ready", Deadline::after(opt_.init_timeout));
  if (!r) {
    close_stage(i);
    return r.status().with_context("stage " + std::to_string(i) + " init");
  }
  const auto& ready = std::get<ctl::Ready>(*r);
  if (ready.stage != i || ready.session != session_) {
    close_stage(i);
    return protocol_error("stage " + std::to_string(i) + " answered init as stage " + std::to_string(ready.stage));
  }
  return ok_status();
}

Status Orchestrator::send_control(uint32_t i, const ControlMessage& m) {
  StageConn& s = stages_[i];
  if (!s.control || !s.up) return unavailable("stage " + std::to_string(i) + " is down");
  Status st = s.control->send_data(encode_control(m), Deadline::after(opt_.op_timeout));
  if (!st.is_ok()) {
    s.up = false;
    return st.with_context("stage " + std::to_string(i) + " control");
  }
  return ok_status();
}

std::optional<Orchestrator::Event> Orchestrator::next_event(Deadline d) {
  std::unique_lock lk(mu_);
  // A result usually follows within microseconds of the last stage's send: spin before sleeping.
  if (!event_spin_.wait(lk, cv_, pushed_, d, [&] { return !events_.empty(); })) return std::nullopt;
  Event e = std::move(events_.front());
  events_.pop_front();
  return e;
}

std::optional<Orchestrator::Event> Orchestrator::next_data_event(Deadline d) {
  // Results that arrived while a control reply was awaited come first.
  if (!results_.empty()) {
    Event e = std::move(results_.front());
    results_.pop_front();
    return e;
  }
  return next_event(d);
}

Status Orchestrator::attribute_step_failure(Status st) {
  const Deadline grace = Deadline::after(std::min<Duration>(opt_.op_timeout, std::chrono::milliseconds(300)));
  for (;;) {
    for (uint32_t i = 0; i < stages_.size(); ++i) {
      if (stages_[i].up) continue;
      Status why;
      {
        std::lock_guard lk(mu_);
        auto it = down_reason_.find(i);
        if (it != down_reason_.end()) why = it->second;
      }
      return unavailable("stage " + std::to_string(i) + " went down: " + (why.is_ok() ? st : why).to_string());
    }
    std::optional<Event> e = next_event(grace);
    if (!e) return st;
    note(*e);
    results_.push_back(std::move(*e));
  }
}

void Orchestrator::note(const Event& e) {
  if (e.kind == Event::Kind::kControlDown && e.epoch == stages_[e.stage].epoch) {
    stages_[e.stage].up = false;
    std::lock_guard lk(mu_);
    down_reason_[e.stage] = e.status;
  }
  if (e.kind == Event::Kind::kControl && e.epoch == stages_[e.stage].epoch) {
    if (auto* p = std::get_if<ctl::Pong>(&e.msg)) {
      StageReport& r = stages_[e.stage].last;
      r.steps = p->steps;
      r.compute_us = p->compute_us;
      r.in_frames = p->in_frames;
      r.in_bytes = p->in_bytes;
      r.out_frames = p->out_frames;
      r.out_bytes = p->out_bytes;
    }
  }
}

Result<ControlMessage> Orchestrator::await(uint32_t i, std::string_view type, Deadline d) {
  // Replies of other stages that arrived first wait in the backlog for their own await().
  auto match = [&](Event& e) -> std::optional<Result<ControlMessage>> {
    if (e.stage != i || e.epoch != stages_[i].epoch) return std::nullopt;
    if (e.kind == Event::Kind::kControlDown) {
      return Result<ControlMessage>(unavailable("stage " + std::to_string(i) + " is down: " + e.status.to_string()));
    }
    if (auto* err = std::get_if<ctl::Error>(&e.msg)) {
      if (err->step != 0) return std::nullopt;  // a step failure, reported on the data path
      return Result<ControlMessage>(
          Status(code_from_name(err->code), "stage " + std::to_string(i) + ": " + err->message));
    }
    if (control_type(e.msg) == type) return Result<ControlMessage>(std::move(e.msg));
    return std::nullopt;
  };
  for (auto it = backlog_.begin(); it != backlog_.end(); ++it) {
    if (auto r = match(*it)) {
      backlog_.erase(it);
      return std::move(*r);
    }
  }
  for (;;) {
    auto e = next_event(d);
    if (!e) return timeout_error("stage " + std::to_string(i) + " sent no " + std::string(type) + " in time");
    note(*e);
    if (e->kind == Event::Kind::kResult || e->kind == Event::Kind::kReturnDown) {
      results_.push_back(std::move(*e));
      continue;
    }
    if (auto r = match(*e)) return std::move(*r);
    if (e->kind == Event::Kind::kControl && e->stage != i && e->epoch == stages_[e->stage].epoch) {
      backlog_.push_back(std::move(*e));
    }
  }
}

Status Orchestrator::broadcast_and_await(const ControlMessage& m, std::string_view reply, Deadline d) {
  backlog_.clear();  // replies nobody waits for any more
  Status first;
  std::vector<uint32_t> sent;
  for (uint32_t i = 0; i < stages_.size(); ++i) {
    Status st = send_control(i, m);
    if (st.is_ok())
      sent.push_back(i);
    else if (first.is_ok())
      first = st;
  }
  for (uint32_t i : sent) {
    auto r = await(i, reply, d);
    if (!r && first.is_ok()) first = r.status();
  }
  return first;
}

Status Orchestrator::link_from(uint32_t i) {
  std::string target = i < opt_.downstream_overrides.size() && !opt_.downstream_overrides[i].empty()
                           ? opt_.downstream_overrides[i]
                           : data_ep(i + 1);
  CML_RETURN_IF_ERROR(send_control(i, ctl::Link{target, false}));
  auto r = await(i, "linked", Deadline::after(opt_.op_timeout + opt_.connect_timeout));
  if (!r) return r.status().with_context("linking stage " + std::to_string(i) + " to stage " + std::to_string(i + 1));
  return ok_status();
}

Status Orchestrator::open_first() {
  if (to_first_) to_first_->abort();
  to_first_.reset();
  CML_ASSIGN_OR_RETURN(auto l, connect_retry(data_ep(0), expect_stage(0)));
  to_first_ = std::move(l);
  return ok_status();
}

Status Orchestrator::open_return() {
  const uint32_t last = static_cast<uint32_t>(stages_.size() - 1);
  if (from_last_) from_last_->abort();
  if (return_reader_.joinable()) return_reader_.join();
  from_last_.reset();
  CML_ASSIGN_OR_RETURN(auto l, connect_retry(control_ep(last), expect_stage(last)));
  std::shared_ptr<Link> link = std::move(l);
  CML_RETURN_IF_ERROR(link->send_data(as_bytes(kReturnHello), Deadline::after(opt_.op_timeout)));
  // The last stage acknowledges once its results go to this link.
  net::Message ack;
  CML_RETURN_IF_ERROR(
      link->recv(ack, Deadline::after(opt_.op_timeout)).with_context("return link from the last stage"));
  auto linked = ack.kind == net::Message::Kind::kData ? decode_control(ack.data, opt_.max_control_bytes)
                                                      : Result<ControlMessage>(protocol_error("not a control message"));
  if (!linked || !std::holds_alternative<ctl::Linked>(*linked)) {
    return protocol_error("the last stage did not acknowledge the return link");
  }
  from_last_ = link;
  const uint64_t epoch = ++return_epoch_;
  const uint32_t max_seq = manifest_.activation.max_seq_len, hidden = manifest_.activation.hidden_size;
  return_reader_ = std::thread([this, link, epoch, max_seq, hidden, last] {
    name_this_thread("orch-return");
    if (opt_.return_cpu >= 0) {
      if (Status st = set_this_thread_cpus({opt_.return_cpu}); !st.is_ok())
        spdlog::warn("orchestrator: return thread left unplaced: {}", st.to_string());
    }
    for (;;) {
      Event e{Event::Kind::kResult, last, epoch, ctl::Shutdown{}, {}, {}};
      Status st = recv_step(*link, e.step, Deadline::never(), max_seq, hidden);
      if (st.is_ok() && e.step.kind == StepMessage::Kind::kClosed)
        st = unavailable("the last stage closed the return link");
      if (!st.is_ok()) {
        link->abort();
        push(Event{Event::Kind::kReturnDown, last, epoch, ctl::Shutdown{}, st, {}});
        return;
      }
      push(std::move(e));
    }
  });
  return ok_status();
}

Status Orchestrator::connect() {
  if (opt_.return_cpu >= 0) CML_RETURN_IF_ERROR(check_cpu(opt_.return_cpu, "orchestrator return thread"));
  for (uint32_t i = 0; i < stages_.size(); ++i) CML_RETURN_IF_ERROR(admit(i));
  for (uint32_t i = 0; i + 1 < stages_.size(); ++i) CML_RETURN_IF_ERROR(link_from(i));
  CML_RETURN_IF_ERROR(open_first());
  return open_return();
}

Status Orchestrator::readmit(uint32_t i) {
  if (i >= stages_.size()) return invalid_argument("no stage " + std::to_string(i));
  CML_RETURN_IF_ERROR(admit(i));
  if (i > 0) CML_RETURN_IF_ERROR(link_from(i - 1));
  if (i + 1 < stages_.size()) CML_RETURN_IF_ERROR(link_from(i));
  if (i == 0) CML_RETURN_IF_ERROR(open_first());
  if (i + 1 == stages_.size()) CML_RETURN_IF_ERROR(open_return());
  return ok_status();
}

std::vector<uint32_t> Orchestrator::down_stages() const {
  std::vector<uint32_t> d;
  for (uint32_t i = 0; i < stages_.size(); ++i) {
    if (!stages_[i].up) d.push_back(i);
  }
  return d;
}

Status Orchestrator::recover() {
  // Drain pending events so that failures already reported mark their stages down.
  while (auto e = next_event(Deadline::after(Duration::zero()))) {
    note(*e);
    if (e->kind == Event::Kind::kReturnDown && e->epoch == return_epoch_) stages_.back().up = false;
  }
  for (uint32_t i : down_stages()) CML_RETURN_IF_ERROR(readmit(i));
  return ok_status();
}

Status Orchestrator::health_check() {
  backlog_.clear();
  const uint64_t nonce = next_nonce_++;
  std::string bad;
  std::vector<uint32_t> sent;
  for (uint32_t i = 0; i < stages_.size(); ++i) {
    if (send_control(i, ctl::Ping{nonce}).is_ok())
      sent.push_back(i);
    else
      bad += " stage " + std::to_string(i) + " (down)";
  }
  Deadline d = Deadline::after(opt_.op_timeout);
  for (uint32_t i : sent) {
    for (;;) {
      auto r = await(i, "pong", d);
      if (!r) {
        stages_[i].up = false;
        bad += " stage " + std::to_string(i) + " (" + r.status().to_string() + ")";
        break;
      }
      if (std::get<ctl::Pong>(*r).nonce == nonce) break;  // an older pong otherwise
    }
  }
  if (!bad.empty()) return unavailable("unhealthy:" + bad);
  return ok_status();
}

Status Orchestrator::start_sequences(const std::vector<uint64_t>& seqs) {
  ctl::Start m;
  for (uint64_t q : seqs) m.seqs.push_back({q, Sampling{}});
  return broadcast_and_await(m, "started", Deadline::after(opt_.op_timeout));
}

Status Orchestrator::drop_sequences(const std::vector<uint64_t>& seqs) {
  return broadcast_and_await(ctl::Abort{seqs, "done"}, "started", Deadline::after(opt_.op_timeout));
}

Result<net::Tensor> Orchestrator::raw_step(const StepHeader& header, const net::TensorView& payload) {
  if (!to_first_) return unavailable("no data link to stage 0");
  StepHeader h = header;
  h.step = next_step_++;
  Deadline d = Deadline::after(opt_.step_timeout);
  CML_RETURN_IF_ERROR(send_step(*to_first_, h, payload, d));
  for (;;) {
    std::optional<Event> e = next_data_event(d);
    if (!e)
      return timeout_error("no result for step " + std::to_string(h.step) + " within " + ms_text(opt_.step_timeout));
    note(*e);
    if (e->kind == Event::Kind::kReturnDown && e->epoch == return_epoch_) {
      return unavailable("return link lost: " + e->status.to_string());
    }
    if (e->kind == Event::Kind::kControlDown && e->epoch == stages_[e->stage].epoch) {
      return unavailable("stage " + std::to_string(e->stage) + " is down: " + e->status.to_string());
    }
    if (e->kind != Event::Kind::kResult) continue;
    if (e->step.kind == StepMessage::Kind::kErr && e->step.err_step == h.step) {
      return aborted(e->step.err_reason);
    }
    if (e->step.kind == StepMessage::Kind::kStep && e->step.header.step == h.step) return std::move(e->step.payload);
    std::lock_guard lk(mu_);
    ++stale_results_;
  }
}

std::vector<Generation> Orchestrator::generate(const std::vector<GenerateRequest>& requests,
                                               const TokenCallback& on_token) {
  const auto t0 = Clock_::now();
  std::vector<Generation> out(requests.size());
  if (requests.empty()) return out;
  // Stages that went down since the last call are re-admitted first (fresh handshake and init).
  if (Status st = recover(); !st.is_ok()) {
    for (auto& g : out) g.status = st;
    return out;
  }
  struct Seq {
    size_t req;
    uint32_t pos = 0;  // tokens the stages hold for it
    bool done = false;
  };
  std::map<uint64_t, Seq> seqs;
  ctl::Start start;
  for (size_t r = 0; r < requests.size(); ++r) {
    const auto& q = requests[r];
    if (q.prompt.empty()) {
      out[r].status = invalid_argument("request " + std::to_string(r) + ": empty prompt");
      continue;
    }
    if (q.prompt.size() + q.max_new_tokens > manifest_.activation.max_seq_len) {
      out[r].status =
          invalid_argument("request " + std::to_string(r) + ": prompt + max_new_tokens exceeds max_seq_len " +
                           std::to_string(manifest_.activation.max_seq_len));
      continue;
    }
    if (q.max_new_tokens == 0) continue;
    uint64_t id = next_seq_++;
    seqs[id] = Seq{r};
    start.seqs.push_back({id, q.sampling});
  }
  if (seqs.empty()) return out;
  std::vector<uint64_t> ids;
  for (const auto& [id, s] : seqs) ids.push_back(id);
  auto fail_all = [&](const Status& st) {
    for (auto& [id, s] : seqs) {
      if (!s.done) {
        s.done = true;
        out[s.req].status = st;
        out[s.req].total_ms = ms_since(t0);
      }
    }
  };
  if (Status st = broadcast_and_await(start, "started", Deadline::after(opt_.op_timeout)); !st.is_ok()) {
    fail_all(st.with_context("starting sequences"));
    return out;
  }

  ContinuousBatcher batcher(static_cast<uint32_t>(stages_.size()), opt_.max_batch, opt_.min_group_rows);
  for (uint64_t id : ids) batcher.add(id);
  struct InFlight {
    std::vector<uint64_t> group;
    Deadline deadline = Deadline::never();
  };
  std::map<uint64_t, InFlight> inflight;
  std::vector<uint32_t> tokens;
  auto finish = [&](uint64_t id, const Status& st) {
    Seq& s = seqs.at(id);
    if (s.done) return;
    s.done = true;
    out[s.req].status = st;
    out[s.req].total_ms = ms_since(t0);
    batcher.remove(id);
  };
  auto fail_inflight = [&](const Status& st) {
    for (auto& [step, f] : inflight) {
      for (uint64_t id : f.group) finish(id, st);
      batcher.complete(f.group);
    }
    inflight.clear();
  };

  while (batcher.active() > 0) {
    // Launch as many groups as the pipeline has stages.
    for (auto group = batcher.next_group(); !group.empty(); group = batcher.next_group()) {
      StepHeader h;
      h.step = next_step_++;
      tokens.clear();
      for (uint64_t id : group) {
        const Seq& s = seqs.at(id);
        const auto& q = requests[s.req];
        if (s.pos == 0) {
          h.seqs.push_back({id, 0, static_cast<uint32_t>(q.prompt.size())});
          tokens.insert(tokens.end(), q.prompt.begin(), q.prompt.end());
        } else {
          h.seqs.push_back({id, s.pos, 1});
          tokens.push_back(out[s.req].tokens.back());
        }
      }
      uint32_t n = static_cast<uint32_t>(tokens.size());
      net::TensorView v{"tokens", tensor::DType::kU32, std::span<const uint32_t>(&n, 1),
                        ByteSpan(reinterpret_cast<const uint8_t*>(tokens.data()), tokens.size() * 4)};
      Status st = to_first_ ? send_step(*to_first_, h, v, Deadline::after(opt_.op_timeout))
                            : unavailable("no data link to stage 0");
      if (!st.is_ok()) {
        stages_[0].up = false;
        for (uint64_t id : group) finish(id, st.with_context("sending to stage 0"));
        batcher.complete(group);
        continue;
      }
      inflight.emplace(h.step, InFlight{std::move(group), Deadline::after(opt_.step_timeout)});
    }
    if (inflight.empty()) break;
    // Wait for the next event, at most until the earliest step deadline.
    Deadline earliest = Deadline::never();
    for (const auto& [step, f] : inflight) {
      if (f.deadline.at() < earliest.at()) earliest = f.deadline;
    }
    std::optional<Event> e = next_data_event(earliest);
    if (!e) {
      // The oldest step timed out: fail its sequences; the rest continue.
      for (auto it = inflight.begin(); it != inflight.end();) {
        if (it->second.deadline.expired()) {
          for (uint64_t id : it->second.group) {
            finish(id, timeout_error("no result for step " + std::to_string(it->first) + " within " +
                                     ms_text(opt_.step_timeout)));
          }
          batcher.complete(it->second.group);
          it = inflight.erase(it);
        } else {
          ++it;
        }
      }
      continue;
    }
    note(*e);
    switch (e->kind) {
      case Event::Kind::kControlDown:
        if (e->epoch == stages_[e->stage].epoch) {
          // Its KV caches are gone: every sequence of this call fails.
          Status st = unavailable("stage " + std::to_string(e->stage) + " went down: " + e->status.to_string());
          fail_inflight(st);
          fail_all(st);
          for (uint64_t id : ids) batcher.remove(id);
        }
        break;
      case Event::Kind::kReturnDown:
        if (e->epoch == return_epoch_) {
          stages_.back().up = false;
          Status st = unavailable("stage " + std::to_string(stages_.size() - 1) +
                                  " return link lost: " + e->status.to_string());
          fail_inflight(st);
          fail_all(st);
          for (uint64_t id : ids) batcher.remove(id);
        }
        break;
      case Event::Kind::kControl: {
        // A step that failed where no ERR can travel on (e.g. a stage without its downstream link) is
        // reported only on control: fail its group now rather than at its deadline.
        auto* err = std::get_if<ctl::Error>(&e->msg);
        if (!err || err->step == 0 || e->epoch != stages_[e->stage].epoch) break;
        auto it = inflight.find(err->step);
        if (it == inflight.end()) break;
        Status failed = attribute_step_failure(
            aborted("stage " + std::to_string(e->stage) + ": " + err->code + ": " + err->message));
        for (uint64_t id : it->second.group) finish(id, failed);
        batcher.complete(it->second.group);
        inflight.erase(it);
        break;
      }
      case Event::Kind::kResult: {
        StepMessage& m = e->step;
        uint64_t step = m.kind == StepMessage::Kind::kErr ? m.err_step : m.header.step;
        auto it = inflight.find(step);
        if (it == inflight.end()) {
          std::lock_guard lk(mu_);
          ++stale_results_;
          break;
        }
        InFlight f = std::move(it->second);
        inflight.erase(it);
        if (m.kind == StepMessage::Kind::kErr) {
          Status failed = attribute_step_failure(aborted(m.err_reason));
          for (uint64_t id : f.group) finish(id, failed);
          batcher.complete(f.group);
          break;
        }
        bool match = m.header.seqs.size() == f.group.size() && m.payload.name == "sampled";
        for (size_t k = 0; match && k < f.group.size(); ++k) match = m.header.seqs[k].seq == f.group[k];
        if (!match) {
          for (uint64_t id : f.group) finish(id, protocol_error("the last stage answered a different step"));
          batcher.complete(f.group);
          break;
        }
        const uint32_t* sampled = reinterpret_cast<const uint32_t*>(m.payload.data.data());
        for (size_t k = 0; k < f.group.size(); ++k) {
          uint64_t id = f.group[k];
          Seq& s = seqs.at(id);
          if (s.done) continue;
          const auto& q = requests[s.req];
          s.pos += m.header.seqs[k].len;
          Generation& g = out[s.req];
          if (g.tokens.empty()) g.first_token_ms = ms_since(t0);
          g.tokens.push_back(sampled[k]);
          if (on_token) on_token(s.req, sampled[k]);
          if (g.tokens.size() >= q.max_new_tokens || (q.stop_token && sampled[k] == *q.stop_token)) {
            finish(id, ok_status());
          }
        }
        batcher.complete(f.group);
        break;
      }
    }
  }
  // Release the KV caches on every stage that is still up (best effort).
  ctl::Abort drop{ids, "finished"};
  Deadline d = Deadline::after(opt_.op_timeout);
  for (uint32_t i = 0; i < stages_.size(); ++i) {
    if (send_control(i, drop).is_ok()) await(i, "started", d).status().ignore_error();
  }
  return out;
}

Status Orchestrator::shutdown() {
  Status first;
  Deadline d = Deadline::after(opt_.op_timeout);
  for (uint32_t i = 0; i < stages_.size(); ++i) {
    if (!send_control(i, ctl::Shutdown{}).is_ok()) continue;
    auto r = await(i, "bye", d);
    if (!r && first.is_ok()) first = r.status();
  }
  if (to_first_) to_first_->close(d);
  for (uint32_t i = 0; i < stages_.size(); ++i) close_stage(i);
  if (from_last_) from_last_->abort();
  if (return_reader_.joinable()) return_reader_.join();
  return first;
}

PipelineReport Orchestrator::report() const {
  PipelineReport r;
  for (const auto& s : stages_) {
    StageReport sr = s.last;
    sr.up = s.up;
    r.stages.push_back(sr);
  }
  if (to_first_) r.to_first = to_first_->counters();
  if (from_last_) r.from_last = from_last_->counters();
  std::lock_guard lk(mu_);
  r.stale_results = stale_results_;
  return r;
}

}  // namespace cml::pipeline
