#include "groupcover/link.h"

#include <condition_variable>
#include <deque>
#include <mutex>

namespace cml::groupcover {
namespace {

struct Queue {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<LinkMessage> q;
  bool closed = false;
};

struct Shared {
  Queue dir[2];
};

class MemoryLink final : public MessageLink {
 public:
  MemoryLink(std::shared_ptr<Shared> s, int side) : s_(std::move(s)), side_(side) {}
  ~MemoryLink() override { abort(); }

  Status send(ByteSpan header, std::span<const float> payload, Deadline) override {
    Queue& q = s_->dir[side_];
    std::lock_guard lock(q.mu);
    if (q.closed) return unavailable("in-memory link closed");
    LinkMessage m;
    m.header.assign(header.begin(), header.end());
    m.payload.assign(payload.begin(), payload.end());
    q.q.push_back(std::move(m));
    q.cv.notify_all();
    return ok_status();
  }

  Status recv(LinkMessage& out, uint64_t max_payload_floats, Deadline deadline) override {
    Queue& q = s_->dir[1 - side_];
    std::unique_lock lock(q.mu);
    auto ready = [&] { return !q.q.empty() || q.closed; };
    if (deadline.is_never()) {
      q.cv.wait(lock, ready);
    } else if (!q.cv.wait_until(lock, deadline.at(), ready)) {
      return timeout_error("in-memory link: no message before the deadline");
    }
    if (q.q.empty()) return unavailable("in-memory link closed by the peer");
    if (q.q.front().payload.size() > max_payload_floats)
      return resource_exhausted("in-memory link: payload larger than the receiver's bound");
    out = std::move(q.q.front());
    q.q.pop_front();
    return ok_status();
  }

  void abort() override {
    for (Queue& q : s_->dir) {
      std::lock_guard lock(q.mu);
      q.closed = true;
      q.cv.notify_all();
    }
  }

 private:
  std::shared_ptr<Shared> s_;
  int side_;
};

}  // namespace

std::pair<std::unique_ptr<MessageLink>, std::unique_ptr<MessageLink>> make_memory_link_pair() {
  auto s = std::make_shared<Shared>();
  return {std::make_unique<MemoryLink>(s, 0), std::make_unique<MemoryLink>(s, 1)};
}

}  // namespace cml::groupcover
