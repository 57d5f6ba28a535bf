// The GroupCover worker link over the project transport (net::SecureChannel over TCP or VSock).
//
// Channel choice (docs/threat-model.md §4): the TEE is the initiator of a one-way session and
// sends no evidence (the worker has no policy it could enforce on it). The worker, as responder, must
// present evidence in that mode; it has no TEE, so it presents a *mock* document naming itself
// ("cml-groupcover-worker"), which authenticates nothing. The channel therefore gives confidentiality
// and integrity against the network but not worker authentication: an impostor is treated exactly like
// a malicious worker (it sees only W'' and masked inputs, and wrong results are caught by Freivalds).
//
// Message mapping: each protocol message is one Data record [payload count u64 BE ‖ header], followed,
// when the count is non-zero, by one F32 tensor record of shape [count]. The count is checked against
// the receiver's bound before anything is allocated.
//
// Thread safety: as MessageLink.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "groupcover/link.h"
#include "groupcover/worker.h"
#include "net/secure_channel.h"

namespace cml::groupcover {

// Label of the (unauthenticated) mock identity the worker presents.
inline constexpr const char* kWorkerIdentity = "cml-groupcover-worker";

// Wraps an established channel.
std::unique_ptr<MessageLink> make_channel_link(std::unique_ptr<net::SecureChannel> channel);

// A LinkFactory that connects to `endpoint` ("tcp://host:port" or "host:port") and runs the handshake.
Result<LinkFactory> worker_connector(const std::string& endpoint);

// Accepts connections on `endpoint` and serves each on its own thread until stop() or destruction.
class WorkerServer {
 public:
  static Result<std::unique_ptr<WorkerServer>> start(const std::string& endpoint, WorkerService& service);
  ~WorkerServer();
  std::string local_endpoint() const;
  // Stops accepting and aborts open connections; joins all threads.
  void stop();
  // Closes the listener and aborts every open connection at once, like a crash, without waiting for the
  // connection threads (callable from one of them); stop() or the destructor joins them later.
  void crash();
  // Blocks until stop() is called from another thread (or a signal handler thread).
  void wait();

 private:
  WorkerServer() = default;
  void accept_loop();
  WorkerService* service_ = nullptr;
  std::unique_ptr<net::Listener> listener_;
  std::thread accept_thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopped_ = false;
  std::vector<std::shared_ptr<MessageLink>> links_;
  struct Conn {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };
  std::vector<Conn> threads_;  // finished connections are joined and dropped on the next accept
};

}  // namespace cml::groupcover
