#include "pipeline/stage.h"

#include <spdlog/spdlog.h>

#include <chrono>

#include "base/thread.h"
#include "pipeline/overloaded.h"

namespace cml::pipeline {

namespace {
uint64_t micros_since(std::chrono::steady_clock::time_point t0) {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0).count());
}
}  // namespace

StageRuntime::StageRuntime(Manifest manifest, uint32_t index, std::unique_ptr<StageExecutor> executor, Network& network,
                           StageOptions options)
    : manifest_(std::move(manifest)), index_(index), exec_(std::move(executor)), net_(network), opt_(options) {
  CML_CHECK(index_ < manifest_.stages.size());
  digest_ = manifest_digest(manifest_);
}

StageRuntime::~StageRuntime() {
  stop();
}

PeerExpectation StageRuntime::orchestrator_expectation() const {
  PeerExpectation e{"orchestrator", std::nullopt};
  if (manifest_.orchestrator.attest) e.policy = policy_for(manifest_.orchestrator.attestation);
  return e;
}

PeerExpectation StageRuntime::stage_expectation(uint32_t i) const {
  return {"stage " + std::to_string(i), policy_for(manifest_.stages[i].attestation)};
}

Status check_stage_options(const StageOptions& o, uint32_t index) {
  if (o.data_cpu >= 0) return check_cpu(o.data_cpu, "stage " + std::to_string(index) + " data thread");
  return ok_status();
}

Status StageRuntime::start(const std::string& control_override, const std::string& data_override) {
  const StageSpec& s = manifest_.stages[index_];
  CML_RETURN_IF_ERROR(check_stage_options(opt_, index_));
  auto cl = net_.listen(control_override.empty() ? s.control.to_string() : control_override);
  if (!cl) return cl.status().with_context("stage " + std::to_string(index_) + " control listener");
  auto dl = net_.listen(data_override.empty() ? s.data.to_string() : data_override);
  if (!dl) return dl.status().with_context("stage " + std::to_string(index_) + " data listener");
  control_listener_ = std::move(*cl);
  data_listener_ = std::move(*dl);
  const std::string tag = "stage" + std::to_string(index_);
  control_acceptor_ = std::thread([this, tag] {
    name_this_thread(tag + "-ctl-acc");
    control_accept_loop();
  });
  data_acceptor_ = std::thread([this, tag] {
    name_this_thread(tag + "-data-acc");
    data_accept_loop();
  });
  data_worker_ = std::thread([this, tag] {
    name_this_thread(tag + "-data");
    if (opt_.data_cpu >= 0) {
      if (Status st = set_this_thread_cpus({opt_.data_cpu}); !st.is_ok())
        spdlog::warn("stage {}: data thread left unplaced: {}", index_, st.to_string());
    }
    data_loop();
  });
  return ok_status();
}

std::string StageRuntime::control_endpoint() const {
  return control_listener_->local_endpoint();
}
std::string StageRuntime::data_endpoint() const {
  return data_listener_->local_endpoint();
}

void StageRuntime::stop() {
  if (stopping_.exchange(true)) return;
  if (control_listener_) control_listener_->close();
  if (data_listener_) data_listener_->close();
  {
    std::lock_guard lk(mu_);
    // A clean end of the data-out stream, so the next stage sees a shutdown rather than a truncation.
    if (data_out_) {
      std::lock_guard slk(send_mu_);
      data_out_->close(Deadline::after(std::chrono::milliseconds(200)));
    }
    for (auto* l : {&control_, &data_in_, &pending_in_, &data_out_}) {
      if (*l) (*l)->abort();
    }
    cv_.notify_all();
  }
  for (auto* t : {&control_acceptor_, &data_acceptor_, &data_worker_}) {
    if (t->joinable()) t->join();
  }
  // The control session thread is joined last: the acceptor may have replaced it.
  if (control_thread_.joinable()) control_thread_.join();
}

bool StageRuntime::wait_shutdown(Deadline deadline) {
  std::unique_lock lk(mu_);
  return cv_.wait_until(lk, deadline.at(), [&] { return shutdown_requested_; });
}

StageStats StageRuntime::stats() const {
  std::lock_guard lk(mu_);
  StageStats s = stats_;
  if (data_in_) s.data_in = data_in_->counters();
  if (data_out_) s.data_out = data_out_->counters();
  return s;
}

Status StageRuntime::send_control(const ControlMessage& m) {
  std::shared_ptr<Link> c;
  {
    std::lock_guard lk(mu_);
    c = control_;
  }
  if (!c) return unavailable("no control session");
  Bytes b = encode_control(m);
  std::lock_guard lk(send_mu_);
  return c->send_data(b, Deadline::after(opt_.io_timeout));
}

Status StageRuntime::check_weights(uint32_t& verified) const {
  const auto& expected = manifest_.stages[index_].weights;
  auto loaded = exec_->weight_digests();
  verified = 0;
  for (const auto& [name, hex] : expected) {
    auto it = loaded.find(name);
    if (it == loaded.end()) return not_found("weight tensor '" + name + "' listed in the manifest was not loaded");
    if (it->second != hex) {
      return policy_error("weight tensor '" + name + "' has SHA-256 " + it->second + ", the manifest expects " + hex);
    }
    ++verified;
  }
  for (const auto& [name, hex] : loaded) {
    if (!expected.count(name)) return policy_error("weight tensor '" + name + "' is not listed in the manifest");
  }
  return ok_status();
}

void StageRuntime::control_accept_loop() {
  while (!stopping_) {
    auto r = control_listener_->accept(orchestrator_expectation(), Deadline::never());
    if (!r) {
      if (stopping_ || r.status().code() == StatusCode::kAborted) return;
      spdlog::warn("stage {}: control connection refused: {}", index_, r.status().to_string());
      continue;
    }
    std::shared_ptr<Link> link = std::move(*r);
    // The first message says what the connection is: a control session (any control message) or the
    // orchestrator's return link (last stage).
    net::Message first;
    Status st = link->recv(first, Deadline::after(opt_.io_timeout));
    if (!st.is_ok() || first.kind != net::Message::Kind::kData) {
      link->abort();
      continue;
    }
    if (as_string_view(first.data) == kReturnHello) {
      {
        std::lock_guard lk(mu_);
        if (data_out_) data_out_->abort();
        data_out_ = link;
      }
      // Acknowledged on the link itself, so the orchestrator sends no step before results can return.
      std::lock_guard slk(send_mu_);
      link->send_data(encode_control(ctl::Linked{index_}), Deadline::after(opt_.io_timeout)).ignore_error();
      continue;
    }
    // A new control session replaces the old one and resets the stage.
    {
      std::lock_guard lk(mu_);
      if (control_) control_->abort();
    }
    if (control_thread_.joinable()) control_thread_.join();
    {
      std::lock_guard lk(exec_mu_);
      std::lock_guard lk2(mu_);
      for (auto& [seq, s] : samplers_) exec_->drop_sequence(seq);
      samplers_.clear();
      ready_ = false;
      control_ = link;
    }
    control_thread_ = std::thread([this, link, data = std::move(first.data)]() mutable {
      name_this_thread("stage" + std::to_string(index_) + "-ctl");
      control_session(link, std::move(data));
    });
  }
}

void StageRuntime::control_session(std::shared_ptr<Link> link, Bytes first) {
  Bytes raw = std::move(first);
  for (;;) {
    auto m = decode_control(raw, opt_.max_control_bytes);
    bool quit = false;
    if (!m) {
      // A malformed message is answered with an error and the session continues.
      send_control(ctl::Error{index_, 0, std::string(status_code_name(m.status().code())), m.status().message()})
          .ignore_error();
    } else {
      Status st = handle_control(*m, quit);
      if (!st.is_ok()) {
        send_control(ctl::Error{index_, 0, std::string(status_code_name(st.code())), st.message()}).ignore_error();
      }
    }
    if (quit || stopping_) return;
    net::Message msg;
    Status st = link->recv(msg, Deadline::never());
    if (!st.is_ok() || msg.kind == net::Message::Kind::kShutdown) return;
    if (msg.kind != net::Message::Kind::kData) {
      send_control(ctl::Error{index_, 0, "PROTOCOL", "control link carries only control messages"}).ignore_error();
      raw.clear();
      continue;
    }
    raw = std::move(msg.data);
  }
}

Status StageRuntime::handle_control(const ControlMessage& m, bool& quit) {
  return std::visit(
      Overloaded{
          [&](const ctl::Init& x) -> Status {
            if (x.stage != index_) {
              return invalid_argument("init for stage " + std::to_string(x.stage) + " reached stage " +
                                      std::to_string(index_));
            }
            if (x.manifest_sha256 != digest_) {
              return policy_error("the orchestrator's manifest (sha256 " + x.manifest_sha256 +
                                  ") differs from this stage's (" + digest_ + ")");
            }
            uint32_t verified = 0;
            {
              std::lock_guard lk(exec_mu_);
              CML_RETURN_IF_ERROR(check_weights(verified));
            }
            {
              std::lock_guard lk(mu_);
              ready_ = true;
            }
            return send_control(ctl::Ready{index_, x.session, verified});
          },
          [&](const ctl::Link& x) -> Status {
            {
              std::lock_guard lk(mu_);
              if (!ready_) return protocol_error("link before a successful init");
            }
            if (x.downstream_is_orchestrator || index_ + 1 >= manifest_.stages.size()) {
              return invalid_argument("the last stage's results return on the orchestrator's return link");
            }
            auto l = net_.connect(x.downstream, stage_expectation(index_ + 1), Deadline::after(opt_.connect_timeout));
            if (!l) return l.status().with_context("data link to stage " + std::to_string(index_ + 1));
            {
              std::lock_guard lk(mu_);
              if (data_out_) data_out_->abort();
              data_out_ = std::move(*l);
            }
            return send_control(ctl::Linked{index_});
          },
          [&](const ctl::Start& x) -> Status {
            {
              std::lock_guard lk(exec_mu_);
              for (const auto& s : x.seqs) {
                CML_ASSIGN_OR_RETURN(auto sampler, make_sampler(s.sampling));
                CML_RETURN_IF_ERROR(exec_->start_sequence(s.seq));
                std::lock_guard lk2(mu_);
                samplers_.insert_or_assign(s.seq, std::move(sampler));
              }
            }
            return send_control(ctl::Started{index_});
          },
          [&](const ctl::Abort& x) -> Status {
            {
              std::lock_guard lk(exec_mu_);
              for (uint64_t s : x.seqs) {
                exec_->drop_sequence(s);
                std::lock_guard lk2(mu_);
                samplers_.erase(s);
              }
            }
            return send_control(ctl::Started{index_});
          },
          [&](const ctl::Ping& x) -> Status {
            ctl::Pong p;
            p.nonce = x.nonce;
            p.stage = index_;
            {
              std::lock_guard lk(mu_);
              p.steps = stats_.steps;
              p.compute_us = stats_.compute_us;
              p.live_sequences = static_cast<uint32_t>(samplers_.size());
              if (data_in_) {
                auto c = data_in_->counters();
                p.in_frames = c.frames_received;
                p.in_bytes = c.bytes_received;
              }
              if (data_out_) {
                auto c = data_out_->counters();
                p.out_frames = c.frames_sent;
                p.out_bytes = c.bytes_sent;
              }
            }
            return send_control(p);
          },
          [&](const ctl::Shutdown&) -> Status {
            quit = true;
            send_control(ctl::Bye{index_}).ignore_error();
            std::lock_guard lk(mu_);
            shutdown_requested_ = true;
            cv_.notify_all();
            return ok_status();
          },
          [&](const auto&) -> Status {
            return protocol_error("stage received a " + std::string(control_type(m)) + " message");
          },
      },
      m);
}

void StageRuntime::data_accept_loop() {
  const PeerExpectation expect = index_ == 0 ? orchestrator_expectation() : stage_expectation(index_ - 1);
  while (!stopping_) {
    auto r = data_listener_->accept(expect, Deadline::never());
    if (!r) {
      if (stopping_ || r.status().code() == StatusCode::kAborted) return;
      spdlog::warn("stage {}: data connection refused: {}", index_, r.status().to_string());
      continue;
    }
    std::lock_guard lk(mu_);
    if (pending_in_) pending_in_->abort();
    pending_in_ = std::move(*r);
    if (data_in_) data_in_->abort();  // the worker moves on to the new connection
    cv_.notify_all();
  }
}

void StageRuntime::data_loop() {
  const uint32_t max_seq = manifest_.activation.max_seq_len;
  const uint32_t hidden = manifest_.activation.hidden_size;
  while (!stopping_) {
    std::shared_ptr<Link> in;
    {
      std::unique_lock lk(mu_);
      cv_.wait(lk, [&] { return stopping_ || pending_in_ != nullptr; });
      if (stopping_) return;
      data_in_ = std::move(pending_in_);
      in = data_in_;
    }
    StepMessage msg;
    for (;;) {
      Status st = recv_step(*in, msg, Deadline::never(), max_seq, hidden);
      if (!st.is_ok()) {
        if (st.code() == StatusCode::kInvalidArgument) {
          report_error(0, st);  // the upstream peer sent something malformed
        } else if (!stopping_) {
          spdlog::info("stage {}: data-in link ended: {}", index_, st.to_string());
        }
        in->abort();
        break;
      }
      if (msg.kind == StepMessage::Kind::kClosed) break;
      if (msg.kind == StepMessage::Kind::kErr) {
        // Upstream failure: pass the sentinel on so the orchestrator learns about it.
        std::shared_ptr<Link> out;
        {
          std::lock_guard lk(mu_);
          out = data_out_;
        }
        if (out) {
          std::lock_guard lk(send_mu_);
          send_step_error(*out, msg.err_step, msg.err_reason.substr(msg.err_reason.find(':') + 1),
                          Deadline::after(opt_.io_timeout))
              .ignore_error();
        }
        continue;
      }
      handle_step(msg, *in);
    }
  }
}

void StageRuntime::handle_step(StepMessage& msg, Link&) {
  const StepHeader& h = msg.header;
  StepOutput out;
  std::vector<uint32_t> sampled;
  Status st;
  auto t0 = std::chrono::steady_clock::now();
  {
    std::lock_guard lk(exec_mu_);
    StepInput in;
    const auto& p = msg.payload;
    if (exec_->is_first() && p.name == "tokens") {
      in.tokens = {reinterpret_cast<const uint32_t*>(p.data.data()), p.data.size() / 4};
    } else if (!exec_->is_first() && p.name == "hidden") {
      in.hidden = {reinterpret_cast<const float*>(p.data.data()), p.data.size() / 4};
    } else if (p.name == "hidden" && exec_->is_first()) {
      in.hidden = {reinterpret_cast<const float*>(p.data.data()), p.data.size() / 4};
    } else {
      st = protocol_error("stage " + std::to_string(index_) + " cannot take a \"" + p.name + "\" payload");
    }
    if (st.is_ok()) st = exec_->forward(h, in, out);
    if (st.is_ok() && exec_->is_last()) {
      std::lock_guard lk2(mu_);
      const size_t n = h.seqs.size();
      if (out.width == 0 || out.data.size() != n * size_t(out.width)) {
        st = internal_error("executor returned " + std::to_string(out.data.size()) + " logits for " +
                            std::to_string(n) + " sequences");
      } else {
        for (size_t i = 0; i < n && st.is_ok(); ++i) {
          auto it = samplers_.find(h.seqs[i].seq);
          if (it == samplers_.end()) {
            st = invalid_argument("sequence " + std::to_string(h.seqs[i].seq) + " was not started");
            break;
          }
          sampled.push_back(
              static_cast<uint32_t>(it->second.sample(std::span<const float>(&out.data[i * out.width], out.width))));
        }
      }
    }
  }
  uint64_t us = micros_since(t0);
  std::shared_ptr<Link> dout;
  {
    std::lock_guard lk(mu_);
    dout = data_out_;
    stats_.compute_us += us;
    if (st.is_ok())
      ++stats_.steps;
    else
      ++stats_.failed_steps;
  }
  if (st.is_ok() && !dout) st = unavailable("stage " + std::to_string(index_) + " has no downstream link");
  if (st.is_ok()) {
    std::lock_guard lk(send_mu_);
    if (exec_->is_last()) {
      uint32_t n = static_cast<uint32_t>(sampled.size());
      net::TensorView v{"sampled", tensor::DType::kU32, std::span<const uint32_t>(&n, 1),
                        ByteSpan(reinterpret_cast<const uint8_t*>(sampled.data()), sampled.size() * 4)};
      st = send_step(*dout, h, v, Deadline::after(opt_.io_timeout));
    } else {
      uint32_t shape[2] = {static_cast<uint32_t>(h.total_tokens()), out.width};
      net::TensorView v{"hidden", tensor::DType::kF32, std::span<const uint32_t>(shape, 2),
                        ByteSpan(reinterpret_cast<const uint8_t*>(out.data.data()), out.data.size() * 4)};
      st = send_step(*dout, h, v, Deadline::after(opt_.io_timeout));
    }
    if (!st.is_ok()) st = st.with_context("sending step downstream");
  }
  if (!st.is_ok()) report_error(h.step, st);
}

void StageRuntime::report_error(uint64_t step, const Status& st) {
  std::string reason = "stage " + std::to_string(index_) + ": " + st.to_string();
  std::shared_ptr<Link> dout;
  {
    std::lock_guard lk(mu_);
    dout = data_out_;
  }
  if (dout) {
    std::lock_guard lk(send_mu_);
    send_step_error(*dout, step, reason, Deadline::after(opt_.io_timeout)).ignore_error();
  }
  send_control(ctl::Error{index_, step, std::string(status_code_name(st.code())), st.message()}).ignore_error();
}

}  // namespace cml::pipeline
