// LocalWorker: a WorkerService served in-process over in-memory links, one thread per connection.
// Used by tests, by `cml groupcover audit` (which records what the worker saw) and by single-process
// benchmarks. Its factory() plugs into GroupCoverBackend as the LinkFactory.
//
// Thread safety: factory() may be called from any thread; set_down()/kill_connections() too.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "groupcover/link.h"
#include "groupcover/worker.h"

namespace cml::groupcover {

class LocalWorker {
 public:
  explicit LocalWorker(WorkerOptions options = {});
  ~LocalWorker();

  WorkerService& service() { return service_; }
  LinkFactory factory();
  // While down, new connections fail with UNAVAILABLE (a crashed worker that has not restarted).
  void set_down(bool down) { down_ = down; }
  // Aborts every open connection (a crash); the TEE side sees UNAVAILABLE on its next message.
  void kill_connections();
  size_t connections() const;

 private:
  WorkerService service_;
  std::atomic<bool> down_{false};
  mutable std::mutex mu_;
  std::vector<std::shared_ptr<MessageLink>> server_ends_;
  std::vector<std::thread> threads_;
};

}  // namespace cml::groupcover
