// SecureNetwork: Links that are net::SecureChannels over TCP, VSock or in-process pipes.
#include <map>
#include <mutex>

#include "net/stream.h"
#include "pipeline/link.h"

namespace cml::pipeline {
namespace {

class SecureLink final : public Link {
 public:
  explicit SecureLink(std::unique_ptr<net::SecureChannel> ch, std::vector<std::string> measured)
      : ch_(std::move(ch)), measured_(std::move(measured)) {}
  ~SecureLink() override { ch_->abort(); }
  Status send_data(ByteSpan data, Deadline d) override {
    CML_RETURN_IF_ERROR(ch_->send_data(data, d));
    ++frames_sent_;
    return ok_status();
  }
  Status send_tensor(const net::TensorView& t, Deadline d) override {
    CML_RETURN_IF_ERROR(ch_->send_tensor(t, d));
    ++frames_sent_;
    return ok_status();
  }
  void cork() override { ch_->cork(); }
  Status uncork(Deadline d) override { return ch_->uncork(d); }
  Status recv(net::Message& out, Deadline d) override {
    CML_RETURN_IF_ERROR(ch_->recv(out, d));
    ++frames_received_;
    return ok_status();
  }
  void close(Deadline d) override { ch_->shutdown(d).ignore_error(); }
  void abort() override { ch_->abort(); }
  LinkInfo info() const override {
    LinkInfo i;
    i.cipher = std::string(crypto::aead_suite_name(ch_->suite()));
    i.peer = ch_->stream().peer();
    i.verified_measurements = measured_;
    i.attestation = ch_->peer_claims() ? std::string(attest::evidence_type_name(ch_->peer_claims()->type)) : "none";
    return i;
  }
  LinkCounters counters() const override {
    auto s = ch_->stats();
    // Messages (a tensor counts once, however many records it took), and plaintext bytes.
    return {frames_sent_.load(), frames_received_.load(), s.bytes_sent, s.bytes_received};
  }

 private:
  std::unique_ptr<net::SecureChannel> ch_;
  std::vector<std::string> measured_;
  std::atomic<uint64_t> frames_sent_{0}, frames_received_{0};
};

// Process-wide registry of in-memory listeners (mem://NAME).
struct PipeRegistry {
  std::mutex mu;
  std::map<std::string, std::weak_ptr<net::PipeListener>> map;
  static PipeRegistry& get() {
    static PipeRegistry r;
    return r;
  }
};

class SecureNetwork;

class SecureListener final : public LinkListener {
 public:
  SecureListener(const SecureNetwork& net, std::shared_ptr<net::Listener> l, std::string ep)
      : net_(net), l_(std::move(l)), ep_(std::move(ep)) {}
  ~SecureListener() override { l_->close(); }
  Result<std::unique_ptr<Link>> accept(const PeerExpectation& expect, Deadline deadline) override;
  std::string local_endpoint() const override { return ep_; }
  void close() override { l_->close(); }

 private:
  const SecureNetwork& net_;
  std::shared_ptr<net::Listener> l_;
  std::string ep_;
};

class SecureNetwork final : public Network {
 public:
  explicit SecureNetwork(SecureNetworkConfig c) : c_(std::move(c)) {}

  net::ChannelConfig channel_config(const PeerExpectation& e, bool initiator) const {
    net::ChannelConfig cc;
    cc.provider = c_.provider;
    cc.verifiers = c_.verifiers;
    cc.clock = c_.clock;
    cc.suites = c_.suites;
    cc.handshake_timeout = c_.handshake_timeout;
    cc.max_tensor_size = c_.max_tensor_bytes;
    if (e.policy) cc.peer_policy = *e.policy;
    // Initiator without own evidence: one-way (only the responder attests). Responder: accept an
    // unattested initiator only when the expectation allows it.
    if (initiator)
      cc.mode = c_.provider ? net::HandshakeMode::kMutual : net::HandshakeMode::kOneWay;
    else
      cc.mode = e.policy ? net::HandshakeMode::kMutual : net::HandshakeMode::kOneWay;
    return cc;
  }

  Result<std::unique_ptr<Link>> wrap(Result<std::unique_ptr<net::SecureChannel>> ch, const PeerExpectation& e) const {
    if (!ch) return ch.status().with_context(e.role);
    if (e.policy && !(*ch)->peer_claims()) return attestation_error(e.role + " did not attest");
    std::vector<std::string> measured;
    if (e.policy) {
      for (const auto& [k, v] : e.policy->expected_measurements) measured.push_back(k);
    }
    return std::unique_ptr<Link>(std::make_unique<SecureLink>(std::move(*ch), std::move(measured)));
  }

  Result<std::unique_ptr<LinkListener>> listen(const std::string& endpoint) override {
    if (endpoint.starts_with("mem://")) {
      auto pl = std::make_shared<net::PipeListener>(endpoint);
      auto& reg = PipeRegistry::get();
      std::lock_guard lk(reg.mu);
      if (reg.map[endpoint].lock()) return invalid_argument("memory endpoint " + endpoint + " in use");
      reg.map[endpoint] = pl;
      return std::unique_ptr<LinkListener>(std::make_unique<SecureListener>(*this, pl, endpoint));
    }
    CML_ASSIGN_OR_RETURN(net::Endpoint ep, net::parse_endpoint(endpoint));
    CML_ASSIGN_OR_RETURN(auto l, net::listen(ep));
    std::shared_ptr<net::Listener> sl = std::move(l);
    std::string local = sl->local_endpoint();
    return std::unique_ptr<LinkListener>(std::make_unique<SecureListener>(*this, sl, local));
  }

  Result<std::unique_ptr<Link>> connect(const std::string& endpoint, const PeerExpectation& e,
                                        Deadline deadline) override {
    std::unique_ptr<net::Stream> s;
    if (endpoint.starts_with("mem://")) {
      std::shared_ptr<net::PipeListener> pl;
      {
        auto& reg = PipeRegistry::get();
        std::lock_guard lk(reg.mu);
        auto it = reg.map.find(endpoint);
        if (it != reg.map.end()) pl = it->second.lock();
      }
      if (!pl) return unavailable("nothing listens on " + endpoint);
      CML_ASSIGN_OR_RETURN(s, pl->connect());
    } else {
      CML_ASSIGN_OR_RETURN(net::Endpoint ep, net::parse_endpoint(endpoint));
      CML_ASSIGN_OR_RETURN(s, net::connect(ep, deadline));
    }
    return wrap(net::SecureChannel::connect(std::move(s), channel_config(e, true)), e);
  }

 private:
  SecureNetworkConfig c_;
};

Result<std::unique_ptr<Link>> SecureListener::accept(const PeerExpectation& expect, Deadline deadline) {
  CML_ASSIGN_OR_RETURN(auto s, l_->accept(deadline));
  return net_.wrap(net::SecureChannel::accept(std::move(s), net_.channel_config(expect, false)), expect);
}

}  // namespace

std::unique_ptr<Network> make_secure_network(SecureNetworkConfig config) {
  return std::make_unique<SecureNetwork>(std::move(config));
}

}  // namespace cml::pipeline
