#include "pipeline/relay.h"

#include <spdlog/spdlog.h>

namespace cml::pipeline {

struct Relay::Conn {
  std::unique_ptr<net::Stream> a, b;  // a: accepted (listen side), b: target
};

Relay::Relay(std::string listen, std::string target, Tap tap)
    : listen_(std::move(listen)), target_(std::move(target)), tap_(std::move(tap)) {}

Relay::~Relay() {
  stop();
}

Status Relay::start() {
  CML_ASSIGN_OR_RETURN(net::Endpoint le, net::parse_endpoint(listen_));
  CML_ASSIGN_OR_RETURN(net::Endpoint te, net::parse_endpoint(target_));
  (void)te;
  CML_ASSIGN_OR_RETURN(listener_, net::listen(le));
  acceptor_ = std::thread([this] { accept_loop(); });
  return ok_status();
}

std::string Relay::local_endpoint() const {
  return listener_ ? listener_->local_endpoint() : listen_;
}

void Relay::accept_loop() {
  const net::Endpoint target = net::parse_endpoint(target_).value();
  while (!stopping_) {
    auto s = listener_->accept(Deadline::never());
    if (!s) {
      if (stopping_ || s.status().code() == StatusCode::kAborted) return;
      continue;
    }
    auto t = net::connect(target, Deadline::after(std::chrono::seconds(10)));
    if (!t) {
      spdlog::warn("relay: cannot reach {}: {}", target_, t.status().to_string());
      (*s)->abort();
      continue;
    }
    auto c = std::make_shared<Conn>(Conn{std::move(*s), std::move(*t)});
    std::lock_guard lk(mu_);
    ++stats_.connections;
    conns_.push_back(c);
    pumps_.emplace_back([this, c] { pump(c, true); });
    pumps_.emplace_back([this, c] { pump(c, false); });
  }
}

void Relay::pump(const std::shared_ptr<Conn>& c, bool forward) {
  net::Stream& from = forward ? *c->a : *c->b;
  net::Stream& to = forward ? *c->b : *c->a;
  Bytes buf(64 * 1024);
  for (;;) {
    auto n = from.read_some(buf, Deadline::never());
    if (!n || *n == 0) {
      if (n) {
        to.shutdown_write().ignore_error();  // a clean end travels on
      } else {
        from.abort();
        to.abort();
      }
      return;
    }
    ByteSpan chunk(buf.data(), *n);
    if (tap_) {
      std::lock_guard lk(tap_mu_);
      tap_(forward, chunk);
    }
    if (!to.write_all(chunk, Deadline::never()).is_ok()) {
      from.abort();
      to.abort();
      return;
    }
    std::lock_guard lk(mu_);
    (forward ? stats_.bytes_forward : stats_.bytes_backward) += *n;
  }
}

void Relay::stop() {
  if (stopping_.exchange(true)) return;
  if (listener_) listener_->close();
  if (acceptor_.joinable()) acceptor_.join();
  std::list<std::thread> pumps;
  {
    std::lock_guard lk(mu_);
    for (auto& c : conns_) {
      c->a->abort();
      c->b->abort();
    }
    pumps.swap(pumps_);
  }
  for (auto& t : pumps) t.join();
}

RelayStats Relay::stats() const {
  std::lock_guard lk(mu_);
  return stats_;
}

}  // namespace cml::pipeline
