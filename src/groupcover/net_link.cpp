#include "groupcover/net_link.h"

#include <cstring>

#include "attest/mock.h"
#include "groupcover/protocol.h"

namespace cml::groupcover {
namespace {

class ChannelLink final : public MessageLink {
 public:
  explicit ChannelLink(std::unique_ptr<net::SecureChannel> ch) : ch_(std::move(ch)) {}
  ~ChannelLink() override { ch_->abort(); }

  // A message without payload is one Data record (payload_count u64 BE = 0 ‖ header); one with a payload
  // is one Tensor record of bytes (payload_count u64 BE ‖ header_len u32 BE ‖ header ‖ payload, f32 LE),
  // so that each message costs one record, one seal and one write.
  Status send(ByteSpan header, std::span<const float> payload, Deadline deadline) override {
    if (payload.empty()) {
      buf_.resize(8 + header.size());
      store_u64_be(buf_.data(), 0);
      std::memcpy(buf_.data() + 8, header.data(), header.size());
      return ch_->send_data(buf_, deadline);
    }
    if (payload.size() > kMaxPayloadFloats || header.size() > kMaxHeaderBytes)
      return invalid_argument("groupcover link: message too large");
    buf_.resize(12 + header.size() + payload.size_bytes());
    store_u64_be(buf_.data(), payload.size());
    store_u32_be(buf_.data() + 8, uint32_t(header.size()));
    std::memcpy(buf_.data() + 12, header.data(), header.size());
    std::memcpy(buf_.data() + 12 + header.size(), payload.data(), payload.size_bytes());
    const uint32_t shape[1] = {uint32_t(buf_.size())};
    net::TensorView v;
    v.name = "";
    v.dtype = tensor::DType::kU8;
    v.shape = shape;
    v.data = {buf_.data(), buf_.size()};
    return ch_->send_tensor(v, deadline);
  }

  Status recv(LinkMessage& out, uint64_t max_payload_floats, Deadline deadline) override {
    Status st = ch_->recv(msg_, deadline);
    // A channel that ends early or breaks its record rules is a lost worker link: UNAVAILABLE, so that
    // callers reconnect (the worker is untrusted anyway; cutting the link only denies service).
    if (st.code() == StatusCode::kProtocol) return unavailable("worker link lost: " + st.message());
    CML_RETURN_IF_ERROR(st);
    if (msg_.kind == net::Message::Kind::kShutdown) return unavailable("worker link closed by the peer");
    if (msg_.kind == net::Message::Kind::kData) {
      if (msg_.data.size() < 11 || msg_.data.size() > 8 + kMaxHeaderBytes || load_u64_be(msg_.data.data()) != 0)
        return protocol_error("groupcover link: expected a message header");
      out.header.assign(msg_.data.begin() + 8, msg_.data.end());
      out.payload.clear();
      return ok_status();
    }
    const Bytes& d = msg_.tensor.data;
    if (msg_.kind != net::Message::Kind::kTensor || msg_.tensor.dtype != tensor::DType::kU8 ||
        msg_.tensor.shape.size() != 1 || msg_.tensor.shape[0] != d.size() || d.size() < 12 + 3)
      return protocol_error("groupcover link: expected a message");
    const uint64_t count = load_u64_be(d.data());
    const uint64_t header_len = load_u32_be(d.data() + 8);
    if (count > max_payload_floats || count > kMaxPayloadFloats)
      return resource_exhausted("groupcover link: payload larger than this side accepts");
    if (count == 0 || header_len < 3 || header_len > kMaxHeaderBytes || d.size() != 12 + header_len + 4 * count)
      return protocol_error("groupcover link: message sizes do not match");
    out.header.assign(d.begin() + 12, d.begin() + 12 + std::ptrdiff_t(header_len));
    out.payload.resize(size_t(count));
    std::memcpy(out.payload.data(), d.data() + 12 + header_len, size_t(count) * sizeof(float));
    return ok_status();
  }

  void abort() override { ch_->abort(); }

 private:
  std::unique_ptr<net::SecureChannel> ch_;
  Bytes buf_;
  net::Message msg_;
};

Result<net::Endpoint> parse_worker_endpoint(const std::string& text) {
  if (text.find("://") == std::string::npos) return net::parse_endpoint("tcp://" + text);
  return net::parse_endpoint(text);
}

net::ChannelConfig base_config() {
  net::ChannelConfig c;
  c.mode = net::HandshakeMode::kOneWay;
  c.max_tensor_size = 12 + kMaxHeaderBytes + kMaxPayloadFloats * 4;
  // Each side waits for the other's computation (the worker's GEMM, the TEE's layers), mostly longer
  // than this: the process-wide 300 µs would spin away TEE CPU and take cores from a worker that shares
  // the host (docs/notes/gcover.md, eighth session).
  c.read_spin = std::chrono::microseconds(50);
  return c;
}

}  // namespace

std::unique_ptr<MessageLink> make_channel_link(std::unique_ptr<net::SecureChannel> channel) {
  return std::make_unique<ChannelLink>(std::move(channel));
}

Result<LinkFactory> worker_connector(const std::string& endpoint) {
  CML_ASSIGN_OR_RETURN(net::Endpoint ep, parse_worker_endpoint(endpoint));
  return LinkFactory([ep](Deadline deadline) -> Result<std::unique_ptr<MessageLink>> {
    CML_ASSIGN_OR_RETURN(auto stream, net::connect(ep, deadline));
    net::ChannelConfig c = base_config();
    c.verifiers = attest::mock_verifier_set();
    c.peer_policy = attest::mock_policy(kWorkerIdentity);
    c.peer_policy.allow_debug = true;
    if (!deadline.is_never())
      c.handshake_timeout = std::max<Duration>(deadline.remaining(), std::chrono::milliseconds(1));
    CML_ASSIGN_OR_RETURN(auto ch, net::SecureChannel::connect(std::move(stream), c));
    return make_channel_link(std::move(ch));
  });
}

Result<std::unique_ptr<WorkerServer>> WorkerServer::start(const std::string& endpoint, WorkerService& service) {
  CML_ASSIGN_OR_RETURN(net::Endpoint ep, parse_worker_endpoint(endpoint));
  std::unique_ptr<WorkerServer> s(new WorkerServer());
  s->service_ = &service;
  CML_ASSIGN_OR_RETURN(s->listener_, net::listen(ep));
  s->accept_thread_ = std::thread([p = s.get()] { p->accept_loop(); });
  return s;
}

void WorkerServer::accept_loop() {
  static attest::MockProvider provider(attest::mock_measurements(kWorkerIdentity));
  for (;;) {
    auto stream = listener_->accept(Deadline::never());
    if (!stream.is_ok()) {
      std::lock_guard lock(mu_);
      if (stopped_ || stream.status().code() == StatusCode::kAborted) return;
      continue;
    }
    std::lock_guard lock(mu_);
    if (stopped_) return;
    // Reap connections that have ended (a long-running worker sees many).
    std::erase_if(threads_, [](Conn& c) {
      if (!c.done->load()) return false;
      c.thread.join();
      return true;
    });
    auto done = std::make_shared<std::atomic<bool>>(false);
    Conn conn;
    conn.done = done;
    conn.thread = std::thread([this, done, st = std::move(stream).value()]() mutable {
      struct MarkDone {
        std::atomic<bool>& d;
        ~MarkDone() { d = true; }
      } mark{*done};
      net::ChannelConfig c = base_config();
      c.provider = &provider;
      auto ch = net::SecureChannel::accept(std::move(st), c);
      if (!ch.is_ok()) return;
      std::shared_ptr<MessageLink> link = make_channel_link(std::move(ch).value());
      {
        std::lock_guard l2(mu_);
        if (stopped_) return;
        links_.push_back(link);
      }
      service_->serve(*link).ignore_error();
      link->abort();
      std::lock_guard l3(mu_);
      std::erase(links_, link);
    });
    threads_.push_back(std::move(conn));
  }
}

void WorkerServer::crash() {
  {
    std::lock_guard lock(mu_);
    stopped_ = true;
    for (auto& l : links_) l->abort();
    links_.clear();
  }
  cv_.notify_all();
  if (listener_) listener_->close();
}

std::string WorkerServer::local_endpoint() const {
  return listener_->local_endpoint();
}

void WorkerServer::stop() {
  std::vector<Conn> threads;
  {
    std::lock_guard lock(mu_);
    stopped_ = true;
    for (auto& l : links_) l->abort();
    links_.clear();
    threads.swap(threads_);
  }
  cv_.notify_all();
  if (listener_) listener_->close();  // null when start() failed to listen
  if (accept_thread_.joinable() && accept_thread_.get_id() != std::this_thread::get_id()) accept_thread_.join();
  for (auto& t : threads) t.thread.join();
}

void WorkerServer::wait() {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return stopped_; });
}

WorkerServer::~WorkerServer() {
  stop();
}

}  // namespace cml::groupcover
