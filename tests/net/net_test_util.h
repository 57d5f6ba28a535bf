// Helpers for the net tests: status matchers, a mock-attested channel pair, and a stream that lets a
// test tamper with whole frames on the wire.
#pragma once

#include <gtest/gtest.h>

#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <thread>

#include "attest/mock.h"
#include "net/secure_channel.h"
#include "net/stream.h"

namespace cml::net::testing {

inline const Status& status_of(const Status& s) {
  return s;
}
template <typename T>
const Status& status_of(const Result<T>& r) {
  return r.status();
}

#define NET_ASSERT_OK(expr)                                                            \
  do {                                                                                 \
    const auto& net_s_ = (expr);                                                       \
    ASSERT_TRUE(net_s_.is_ok()) << ::cml::net::testing::status_of(net_s_).to_string(); \
  } while (0)
#define NET_EXPECT_OK(expr)                                                            \
  do {                                                                                 \
    const auto& net_s_ = (expr);                                                       \
    EXPECT_TRUE(net_s_.is_ok()) << ::cml::net::testing::status_of(net_s_).to_string(); \
  } while (0)
// Expects a failure with `code` whose message contains `text`.
#define NET_EXPECT_ERROR(expr, code_, text)                                          \
  do {                                                                               \
    const ::cml::Status net_s_ = ::cml::net::testing::status_of(expr);               \
    EXPECT_EQ(net_s_.code(), (code_)) << net_s_.to_string();                         \
    EXPECT_NE(net_s_.message().find(text), std::string::npos) << net_s_.to_string(); \
  } while (0)

inline Deadline soon() {
  return Deadline::after(std::chrono::seconds(20));
}

// Mock-attested configuration: this side proves `self`, expects the peer to prove `peer`.
struct MockSide {
  std::shared_ptr<attest::Provider> provider;
  ChannelConfig config;
};
inline MockSide mock_side(std::string_view self, std::string_view peer) {
  MockSide s;
  s.provider = std::make_shared<attest::MockProvider>(attest::mock_measurements(self));
  s.config.provider = s.provider.get();
  s.config.verifiers = attest::mock_verifier_set();
  s.config.peer_policy = attest::mock_policy(peer);
  s.config.handshake_timeout = std::chrono::seconds(20);
  return s;
}

struct PairResult {
  Result<std::unique_ptr<SecureChannel>> initiator = internal_error("not run");
  Result<std::unique_ptr<SecureChannel>> responder = internal_error("not run");
};

// Runs the responder on a thread and the initiator on this one.
inline PairResult handshake(std::unique_ptr<Stream> client, std::unique_ptr<Stream> server, const ChannelConfig& ci,
                            const ChannelConfig& cr) {
  PairResult out;
  std::thread t([&] { out.responder = SecureChannel::accept(std::move(server), cr); });
  out.initiator = SecureChannel::connect(std::move(client), ci);
  t.join();
  return out;
}

// The same over a fresh in-memory pipe.
inline PairResult handshake_pipe(const ChannelConfig& ci, const ChannelConfig& cr) {
  auto [a, b] = make_pipe();
  return handshake(std::move(a), std::move(b), ci, cr);
}

// Established mutual session over a pipe between "client" and "server" measurements.
struct Session {
  MockSide client = mock_side("client", "server");
  MockSide server = mock_side("server", "client");
  std::unique_ptr<SecureChannel> initiator, responder;
};

// Passes every call to the wrapped stream, except direct buffer access (a wrapper that changes
// writes must see them all, so it offers none and SecureChannel uses write_all / read_exact).
// Test wrappers override what they watch or change.
class ForwardingStream : public Stream {
 public:
  explicit ForwardingStream(std::unique_ptr<Stream> inner) : inner_(std::move(inner)) {}
  Result<size_t> read_some(MutableByteSpan buf, Deadline d) override { return inner_->read_some(buf, d); }
  Status write_all(std::span<const ByteSpan> parts, Deadline d) override { return inner_->write_all(parts, d); }
  Status shutdown_write() override { return inner_->shutdown_write(); }
  void abort() override { inner_->abort(); }
  std::string peer() const override { return inner_->peer(); }
  void set_read_spin(std::chrono::nanoseconds max) override { inner_->set_read_spin(max); }

 protected:
  Stream& inner() { return *inner_; }

 private:
  std::unique_ptr<Stream> inner_;
};

// A Stream wrapper that hands every write to a hook, which decides what actually goes to the wire
// (SecureChannel writes one frame per write unless corked). Thread-safe hook replacement.
class TamperStream final : public ForwardingStream {
 public:
  using Hook = std::function<std::vector<Bytes>(Bytes frame)>;
  struct Control {
    std::mutex mu;
    Hook hook;  // empty: pass through
    void set(Hook h) {
      std::lock_guard lk(mu);
      hook = std::move(h);
    }
  };
  TamperStream(std::unique_ptr<Stream> inner, std::shared_ptr<Control> c)
      : ForwardingStream(std::move(inner)), c_(std::move(c)) {}
  Status write_all(std::span<const ByteSpan> parts, Deadline d) override {
    Hook hook;
    {
      std::lock_guard lk(c_->mu);
      hook = c_->hook;
    }
    if (!hook) return inner().write_all(parts, d);
    Bytes frame;
    for (auto p : parts) frame.insert(frame.end(), p.begin(), p.end());
    for (const Bytes& out : hook(std::move(frame))) {
      if (out.empty()) continue;
      Status st = inner().write_all(ByteSpan(out), d);
      if (!st.is_ok()) return st;
    }
    return Status::ok();
  }

 private:
  std::shared_ptr<Control> c_;
};

}  // namespace cml::net::testing
