// PlainMemoryNetwork: in-process, unencrypted links for unit tests of the pipeline logic.
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>

#include "pipeline/link.h"

namespace cml::pipeline {
namespace {

// One direction of a connection.
struct Queue {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<net::Message> q;
  bool closed = false;   // sender closed cleanly
  bool aborted = false;  // either side aborted
};

class MemoryLink final : public Link {
 public:
  MemoryLink(std::shared_ptr<Queue> in, std::shared_ptr<Queue> out, std::string peer)
      : in_(std::move(in)), out_(std::move(out)), peer_(std::move(peer)) {}
  ~MemoryLink() override { abort(); }

  Status send_data(ByteSpan data, Deadline) override {
    net::Message m;
    m.kind = net::Message::Kind::kData;
    m.data.assign(data.begin(), data.end());
    return push(std::move(m), data.size());
  }
  Status send_tensor(const net::TensorView& t, Deadline) override {
    net::Message m;
    m.kind = net::Message::Kind::kTensor;
    m.tensor.name = std::string(t.name);
    m.tensor.dtype = t.dtype;
    m.tensor.shape.assign(t.shape.begin(), t.shape.end());
    m.tensor.data.assign(t.data.begin(), t.data.end());
    return push(std::move(m), t.data.size());
  }
  Status recv(net::Message& out, Deadline deadline) override {
    std::unique_lock lk(in_->mu);
    while (in_->q.empty() && !in_->closed && !in_->aborted) {
      if (in_->cv.wait_until(lk, deadline.at()) == std::cv_status::timeout && in_->q.empty() && !in_->closed &&
          !in_->aborted) {
        return timeout_error("memory link: no message before the deadline");
      }
    }
    if (!in_->q.empty()) {
      out = std::move(in_->q.front());
      in_->q.pop_front();
      ++counters_.frames_received;
      counters_.bytes_received += out.kind == net::Message::Kind::kTensor ? out.tensor.data.size() : out.data.size();
      return ok_status();
    }
    if (in_->aborted) return unavailable("memory link: connection aborted");
    out.kind = net::Message::Kind::kShutdown;
    return ok_status();
  }
  void close(Deadline) override {
    std::lock_guard lk(out_->mu);
    out_->closed = true;
    out_->cv.notify_all();
  }
  void abort() override {
    for (auto* q : {in_.get(), out_.get()}) {
      std::lock_guard lk(q->mu);
      q->aborted = true;
      q->cv.notify_all();
    }
  }
  LinkInfo info() const override { return {"none (plain memory)", peer_, {}, "none"}; }
  LinkCounters counters() const override { return counters_; }

 private:
  Status push(net::Message m, size_t bytes) {
    std::lock_guard lk(out_->mu);
    if (out_->aborted || out_->closed) return unavailable("memory link: peer is gone");
    out_->q.push_back(std::move(m));
    out_->cv.notify_all();
    ++counters_.frames_sent;
    counters_.bytes_sent += bytes;
    return ok_status();
  }
  std::shared_ptr<Queue> in_, out_;
  std::string peer_;
  LinkCounters counters_;
};

struct ListenerState {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::unique_ptr<Link>> pending;
  bool closed = false;
};

class Registry {
 public:
  static Registry& get() {
    static Registry r;
    return r;
  }
  Status add(const std::string& name, std::shared_ptr<ListenerState> st) {
    std::lock_guard lk(mu_);
    auto& slot = map_[name];
    if (auto old = slot.lock(); old && !old->closed) return invalid_argument("memory endpoint " + name + " in use");
    slot = st;
    return ok_status();
  }
  std::shared_ptr<ListenerState> find(const std::string& name) {
    std::lock_guard lk(mu_);
    auto it = map_.find(name);
    return it == map_.end() ? nullptr : it->second.lock();
  }

 private:
  std::mutex mu_;
  std::map<std::string, std::weak_ptr<ListenerState>> map_;
};

class MemoryListener final : public LinkListener {
 public:
  MemoryListener(std::string name, std::shared_ptr<ListenerState> st) : name_(std::move(name)), st_(std::move(st)) {}
  ~MemoryListener() override { close(); }
  Result<std::unique_ptr<Link>> accept(const PeerExpectation& expect, Deadline deadline) override {
    if (expect.policy) return unimplemented("plain memory links cannot attest " + expect.role);
    std::unique_lock lk(st_->mu);
    if (!st_->cv.wait_until(lk, deadline.at(), [&] { return !st_->pending.empty() || st_->closed; })) {
      return timeout_error("no connection on " + name_ + " before the deadline");
    }
    if (st_->closed) return aborted("listener " + name_ + " closed");
    auto l = std::move(st_->pending.front());
    st_->pending.pop_front();
    return l;
  }
  std::string local_endpoint() const override { return name_; }
  void close() override {
    std::lock_guard lk(st_->mu);
    st_->closed = true;
    st_->cv.notify_all();
  }

 private:
  std::string name_;
  std::shared_ptr<ListenerState> st_;
};

class PlainMemoryNetwork final : public Network {
 public:
  Result<std::unique_ptr<LinkListener>> listen(const std::string& endpoint) override {
    if (!endpoint.starts_with("mem://")) return invalid_argument("plain memory network: only mem:// endpoints");
    auto st = std::make_shared<ListenerState>();
    CML_RETURN_IF_ERROR(Registry::get().add(endpoint, st));
    return std::unique_ptr<LinkListener>(std::make_unique<MemoryListener>(endpoint, st));
  }
  Result<std::unique_ptr<Link>> connect(const std::string& endpoint, const PeerExpectation& expect, Deadline) override {
    if (expect.policy) return unimplemented("plain memory links cannot attest " + expect.role);
    auto st = Registry::get().find(endpoint);
    if (!st) return unavailable("nothing listens on " + endpoint);
    auto a = std::make_shared<Queue>(), b = std::make_shared<Queue>();
    std::lock_guard lk(st->mu);
    if (st->closed) return unavailable("nothing listens on " + endpoint);
    st->pending.push_back(std::make_unique<MemoryLink>(a, b, "mem-client"));
    st->cv.notify_all();
    return std::unique_ptr<Link>(std::make_unique<MemoryLink>(b, a, endpoint));
  }
};

}  // namespace

std::unique_ptr<Network> make_plain_memory_network() {
  return std::make_unique<PlainMemoryNetwork>();
}

}  // namespace cml::pipeline
