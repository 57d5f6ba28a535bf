#include "groupcover/local_worker.h"

namespace cml::groupcover {

LocalWorker::LocalWorker(WorkerOptions options) : service_(options) {}

LocalWorker::~LocalWorker() {
  kill_connections();
  std::vector<std::thread> threads;
  {
    std::lock_guard lock(mu_);
    threads.swap(threads_);
  }
  for (auto& t : threads) t.join();
}

LinkFactory LocalWorker::factory() {
  return [this](Deadline) -> Result<std::unique_ptr<MessageLink>> {
    if (down_) return unavailable("local worker is down");
    auto [client, server] = make_memory_link_pair();
    std::shared_ptr<MessageLink> srv(std::move(server));
    std::lock_guard lock(mu_);
    server_ends_.push_back(srv);
    threads_.emplace_back([this, srv] {
      service_.serve(*srv).ignore_error();
      srv->abort();
    });
    return std::move(client);
  };
}

void LocalWorker::kill_connections() {
  std::lock_guard lock(mu_);
  for (auto& s : server_ends_) s->abort();
  server_ends_.clear();
}

size_t LocalWorker::connections() const {
  std::lock_guard lock(mu_);
  return server_ends_.size();
}

}  // namespace cml::groupcover
