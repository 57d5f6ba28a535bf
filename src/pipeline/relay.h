// Relay: the host-side byte forwarder of VSock deployments (an enclave cannot reach another enclave
// directly; the host relays). It accepts connections on `listen` and connects each to `target`,
// copying bytes both ways without looking at them: the SecureChannel handshake and records pass
// through, so encryption and attestation stay end to end between the stages.
//
// Threads: start()/stop() from the owner; an acceptor thread and two pump threads per connection.
// The tap (if any) is called from pump threads, serialised by the relay.
#pragma once

#include <atomic>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "base/bytes.h"
#include "base/status.h"
#include "net/stream.h"

namespace cml::pipeline {

struct RelayStats {
  uint64_t connections = 0;
  uint64_t bytes_forward = 0;   // listen side → target
  uint64_t bytes_backward = 0;  // target → listen side
};

class Relay {
 public:
  // Sees every forwarded chunk: (forward direction?, bytes). For audits and tests.
  using Tap = std::function<void(bool forward, ByteSpan bytes)>;
  Relay(std::string listen, std::string target, Tap tap = {});
  ~Relay();
  Status start();
  std::string local_endpoint() const;
  void stop();
  RelayStats stats() const;

 private:
  struct Conn;
  void accept_loop();
  void pump(const std::shared_ptr<Conn>& c, bool forward);

  std::string listen_, target_;
  Tap tap_;
  std::unique_ptr<net::Listener> listener_;
  std::thread acceptor_;
  std::atomic<bool> stopping_{false};
  mutable std::mutex mu_;
  std::list<std::shared_ptr<Conn>> conns_;
  std::list<std::thread> pumps_;
  RelayStats stats_;
  std::mutex tap_mu_;
};

}  // namespace cml::pipeline
