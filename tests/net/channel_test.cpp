// SecureChannel end to end: handshakes on every stream, suites, one-way mode, attestation and policy
// failures, every message kind, rekey, deadlines.
#include <gtest/gtest.h>

#include <thread>

#include "net/secure_channel.h"
#include "net_test_util.h"

namespace cml::net {
namespace {

using crypto::AeadSuite;
using std::chrono::milliseconds;
using testing::handshake;
using testing::mock_side;
using testing::soon;

void exchange_all_kinds(SecureChannel& a, SecureChannel& b) {
  Message m;
  NET_ASSERT_OK(a.send_data(as_bytes("{\"op\":\"ping\"}"), soon()));
  NET_ASSERT_OK(b.recv(m, soon()));
  EXPECT_EQ(m.kind, Message::Kind::kData);
  EXPECT_EQ(as_string_view(m.data), "{\"op\":\"ping\"}");
  const uint32_t shape[] = {2, 3};
  const std::vector<float> values = {1, 2, 3, 4, 5, 6};
  const ByteSpan raw(reinterpret_cast<const uint8_t*>(values.data()), values.size() * 4);
  NET_ASSERT_OK(b.send_tensor({"hidden", tensor::DType::kF32, shape, raw}, soon()));
  NET_ASSERT_OK(a.recv(m, soon()));
  EXPECT_EQ(m.kind, Message::Kind::kTensor);
  EXPECT_EQ(m.tensor.name, "hidden");
  EXPECT_EQ(m.tensor.shape, std::vector<uint32_t>(shape, shape + 2));
  EXPECT_EQ(m.tensor.data, Bytes(raw.begin(), raw.end()));
  NET_ASSERT_OK(a.send_heartbeat(soon()));
  NET_ASSERT_OK(a.send_end(soon()));
  NET_ASSERT_OK(b.recv(m, soon()));
  EXPECT_EQ(m.sentinel(), Sentinel::kEnd);
  EXPECT_EQ(b.stats().heartbeats_received, 1u);
}

void expect_established(testing::PairResult& r) {
  ASSERT_TRUE(r.initiator.is_ok()) << r.initiator.status().to_string();
  ASSERT_TRUE(r.responder.is_ok()) << r.responder.status().to_string();
  auto& i = **r.initiator;
  auto& s = **r.responder;
  EXPECT_EQ(i.session_id(), s.session_id());
  EXPECT_EQ(i.suite(), s.suite());
  EXPECT_TRUE(i.is_initiator());
  EXPECT_FALSE(s.is_initiator());
  ASSERT_TRUE(i.peer_claims().has_value());
  EXPECT_EQ(i.peer_claims()->measurements.at("image"), attest::mock_measurements("server").at("image"));
  exchange_all_kinds(i, s);
  exchange_all_kinds(s, i);
}

TEST(Channel, HandshakeOverPipeBothSuites) {
  for (AeadSuite suite : {AeadSuite::kAes256Gcm, AeadSuite::kChaCha20Poly1305}) {
    auto c = mock_side("client", "server");
    auto s = mock_side("server", "client");
    c.config.suites = {suite};
    auto r = testing::handshake_pipe(c.config, s.config);
    expect_established(r);
    EXPECT_EQ((*r.initiator)->suite(), suite);
    EXPECT_EQ((*r.responder)->peer_claims()->measurements.at("image"), attest::mock_measurements("client").at("image"));
  }
}

// Passes everything through and records the read-spin maxima it is given.
class SpinRecordingStream final : public testing::ForwardingStream {
 public:
  SpinRecordingStream(std::unique_ptr<Stream> inner, std::vector<std::chrono::nanoseconds>* log)
      : ForwardingStream(std::move(inner)), log_(log) {}
  void set_read_spin(std::chrono::nanoseconds max) override {
    log_->push_back(max);
    ForwardingStream::set_read_spin(max);
  }

 private:
  std::vector<std::chrono::nanoseconds>* log_;
};

TEST(Channel, ReadSpinAppliesToRecordsOnlyOnceEstablished) {
  // The handshake keeps the stream's default; a configured read_spin takes over once keys are
  // installed, and a refused handshake leaves the stream as it was.
  for (const char* expected_peer : {"server", "someone-else"}) {
    std::vector<std::chrono::nanoseconds> client_log, server_log;
    auto [a, b] = make_pipe();
    auto c = mock_side("client", expected_peer);
    auto s = mock_side("server", "client");
    c.config.read_spin = std::chrono::microseconds(20);  // the server leaves it unset
    auto r = handshake(std::make_unique<SpinRecordingStream>(std::move(a), &client_log),
                       std::make_unique<SpinRecordingStream>(std::move(b), &server_log), c.config, s.config);
    const bool ok = std::string(expected_peer) == "server";
    EXPECT_EQ(r.initiator.is_ok(), ok);
    EXPECT_EQ(client_log, ok ? std::vector<std::chrono::nanoseconds>{std::chrono::microseconds(20)}
                             : std::vector<std::chrono::nanoseconds>{});
    EXPECT_TRUE(server_log.empty());
    if (ok) expect_established(r);
  }
}

TEST(Channel, ResponderHonoursInitiatorPreference) {
  auto c = mock_side("client", "server");
  auto s = mock_side("server", "client");
  c.config.suites = {AeadSuite::kChaCha20Poly1305, AeadSuite::kAes256Gcm};
  auto r = testing::handshake_pipe(c.config, s.config);
  expect_established(r);
  EXPECT_EQ((*r.initiator)->suite(), AeadSuite::kChaCha20Poly1305);
  // No common suite: both sides fail with a clear status.
  c.config.suites = {AeadSuite::kChaCha20Poly1305};
  s.config.suites = {AeadSuite::kAes256Gcm};
  auto r2 = testing::handshake_pipe(c.config, s.config);
  NET_EXPECT_ERROR(r2.responder, StatusCode::kProtocol, "no common AEAD suite");
  NET_EXPECT_ERROR(r2.initiator, StatusCode::kAborted, "no common AEAD suite");
}

TEST(Channel, HandshakeOverTcpLoopback) {
  auto l = listen(parse_endpoint("tcp://127.0.0.1:0").value());
  NET_ASSERT_OK(l);
  std::unique_ptr<Stream> server;
  std::thread t([&] { server = std::move((*l)->accept(soon()).value()); });
  auto client = connect(parse_endpoint((*l)->local_endpoint()).value(), soon());
  t.join();
  NET_ASSERT_OK(client);
  auto c = mock_side("client", "server");
  auto s = mock_side("server", "client");
  auto r = handshake(std::move(client).value(), std::move(server), c.config, s.config);
  expect_established(r);
  // Clean shutdown over TCP: the peer sees Shutdown, not truncation.
  NET_ASSERT_OK((*r.initiator)->shutdown(soon()));
  Message m;
  NET_ASSERT_OK((*r.responder)->recv(m, soon()));
  EXPECT_EQ(m.kind, Message::Kind::kShutdown);
}

TEST(Channel, HandshakeOverVsockOrSkip) {
  if (!vsock_available()) GTEST_SKIP() << "AF_VSOCK is not available in this kernel; VSock handshake skipped";
  auto l = listen(parse_endpoint("vsock://any:0").value());
  if (!l.is_ok()) GTEST_SKIP() << "cannot listen on VSock: " << l.status().to_string();
  const uint32_t port = parse_endpoint((*l)->local_endpoint()).value().port;
  auto client =
      connect(Endpoint{Endpoint::Kind::kVsock, "", kVsockCidLocal, port}, Deadline::after(std::chrono::seconds(2)));
  if (!client.is_ok()) GTEST_SKIP() << "no VSock loopback peer: " << client.status().to_string();
  auto server = (*l)->accept(soon());
  NET_ASSERT_OK(server);
  auto c = mock_side("client", "server");
  auto s = mock_side("server", "client");
  auto r = handshake(std::move(client).value(), std::move(server).value(), c.config, s.config);
  expect_established(r);
}

TEST(Channel, ConnectWithRetryWaitsForLateResponder) {
  std::string where;
  {
    auto probe = listen(parse_endpoint("tcp://127.0.0.1:0").value());
    NET_ASSERT_OK(probe);
    where = (*probe)->local_endpoint();
  }
  const Endpoint ep = parse_endpoint(where).value();
  auto c = mock_side("client", "server");
  auto s = mock_side("server", "client");
  std::unique_ptr<Listener> late;
  std::thread responder;
  Result<std::unique_ptr<SecureChannel>> accepted = internal_error("not run");
  RetryHooks hooks;
  hooks.sleep = [](Duration) {};
  hooks.on_retry = [&](int k, const Status& st, Duration) {
    EXPECT_EQ(st.code(), StatusCode::kUnavailable) << st.to_string();
    if (k != 0) return;
    auto l = listen(ep);  // the responder comes up after the first refusal
    ASSERT_TRUE(l.is_ok()) << l.status().to_string();
    late = std::move(l).value();
    responder = std::thread([&] {
      auto stream = late->accept(soon());
      if (stream.is_ok()) accepted = SecureChannel::accept(std::move(stream).value(), s.config);
    });
  };
  auto ch = SecureChannel::connect_with_retry(ep, c.config, RetryPolicy{}, soon(), hooks);
  if (responder.joinable()) responder.join();
  NET_ASSERT_OK(ch);
  NET_ASSERT_OK(accepted);
  EXPECT_EQ((*ch)->session_id(), (*accepted)->session_id());
  // A policy refusal is not retried.
  auto rogue = mock_side("client", "someone-else");
  int retries = 0;
  hooks.on_retry = [&](int, const Status&, Duration) { ++retries; };
  std::thread r2([&] {
    auto stream = late->accept(soon());
    if (stream.is_ok()) (void)SecureChannel::accept(std::move(stream).value(), s.config);
  });
  auto refused = SecureChannel::connect_with_retry(ep, rogue.config, RetryPolicy{}, soon(), hooks);
  r2.join();
  EXPECT_EQ(refused.status().code(), StatusCode::kPolicy) << refused.status().to_string();
  EXPECT_EQ(retries, 0);
}

TEST(Channel, OneWayMode) {
  auto c = mock_side("client", "server");
  c.config.mode = HandshakeMode::kOneWay;
  c.config.provider = nullptr;  // the initiator has no TEE
  auto s = mock_side("server", "client");
  s.config.mode = HandshakeMode::kOneWay;  // accept unattested initiators
  s.config.verifiers = nullptr;
  auto r = testing::handshake_pipe(c.config, s.config);
  ASSERT_TRUE(r.initiator.is_ok()) << r.initiator.status().to_string();
  ASSERT_TRUE(r.responder.is_ok()) << r.responder.status().to_string();
  EXPECT_TRUE((*r.initiator)->peer_claims().has_value());
  EXPECT_FALSE((*r.responder)->peer_claims().has_value());
  exchange_all_kinds(**r.initiator, **r.responder);
  exchange_all_kinds(**r.responder, **r.initiator);
}

TEST(Channel, MutualResponderRefusesOneWayInitiator) {
  auto c = mock_side("client", "server");
  c.config.mode = HandshakeMode::kOneWay;
  auto s = mock_side("server", "client");
  auto r = testing::handshake_pipe(c.config, s.config);
  NET_EXPECT_ERROR(r.responder, StatusCode::kPolicy, "mutual attestation is required");
  NET_EXPECT_ERROR(r.initiator, StatusCode::kAborted, "peer refused");
}

TEST(Channel, WrongPeerMeasurementRefused) {
  // The initiator expects "server" but the responder runs "rogue".
  auto c = mock_side("client", "server");
  auto s = mock_side("rogue", "client");
  auto r = testing::handshake_pipe(c.config, s.config);
  NET_EXPECT_ERROR(r.initiator, StatusCode::kPolicy, "responder evidence");
  NET_EXPECT_ERROR(r.responder, StatusCode::kAborted, "POLICY");
  // And the responder refuses a wrong initiator.
  auto c2 = mock_side("rogue", "server");
  auto s2 = mock_side("server", "client");
  auto r2 = testing::handshake_pipe(c2.config, s2.config);
  NET_EXPECT_ERROR(r2.responder, StatusCode::kPolicy, "initiator evidence");
  NET_EXPECT_ERROR(r2.initiator, StatusCode::kAborted, "POLICY");
}

TEST(Channel, DebugPeerRefusedUnlessAllowed) {
  auto c = mock_side("client", "server");
  auto s = mock_side("server", "client");
  attest::MockProvider debug_provider(attest::mock_measurements("server"), /*debug=*/true);
  s.config.provider = &debug_provider;
  auto r = testing::handshake_pipe(c.config, s.config);
  EXPECT_EQ(r.initiator.status().code(), StatusCode::kPolicy) << r.initiator.status().to_string();
  c.config.peer_policy.allow_debug = true;
  auto r2 = testing::handshake_pipe(c.config, s.config);
  NET_EXPECT_OK(r2.initiator);
}

// A provider that binds something other than the handshake's key or nonce.
class MisbindingProvider final : public attest::Provider {
 public:
  MisbindingProvider(bool wrong_key, bool wrong_nonce) : wrong_key_(wrong_key), wrong_nonce_(wrong_nonce) {}
  attest::EvidenceType type() const override { return attest::EvidenceType::kMock; }
  Result<attest::Evidence> attest(ByteSpan pk, ByteSpan nonce) override {
    const auto other = crypto::X25519KeyPair::generate().public_key();
    Bytes n(nonce.begin(), nonce.end());
    if (wrong_nonce_) n[0] ^= 1;
    return inner_.attest(wrong_key_ ? ByteSpan(other) : pk, n);
  }

 private:
  attest::MockProvider inner_{attest::mock_measurements("server")};
  bool wrong_key_, wrong_nonce_;
};

TEST(Channel, KeyNotBoundInEvidenceRefused) {
  for (bool wrong_key : {true, false}) {
    auto c = mock_side("client", "server");
    auto s = mock_side("server", "client");
    MisbindingProvider bad(wrong_key, !wrong_key);
    s.config.provider = &bad;
    auto r = testing::handshake_pipe(c.config, s.config);
    EXPECT_EQ(r.initiator.status().code(), StatusCode::kAttestation) << r.initiator.status().to_string();
    EXPECT_EQ(r.responder.status().code(), StatusCode::kAborted) << r.responder.status().to_string();
  }
}

TEST(Channel, HandshakeTimeoutWhenPeerNeverAnswers) {
  auto c = mock_side("client", "server");
  c.config.handshake_timeout = milliseconds(200);
  auto pipe_a = make_pipe();
  auto& a = pipe_a.first;
  NET_EXPECT_ERROR(SecureChannel::connect(std::move(a), c.config), StatusCode::kTimeout, "waiting for ServerHello");
  auto s = mock_side("server", "client");
  s.config.handshake_timeout = milliseconds(200);
  auto pipe_a2 = make_pipe();
  auto& a2 = pipe_a2.first;
  NET_EXPECT_ERROR(SecureChannel::accept(std::move(a2), s.config), StatusCode::kTimeout, "waiting for ClientHello");
}

TEST(Channel, HandshakePeerVanishes) {
  auto c = mock_side("client", "server");
  auto pipe_a = make_pipe();
  auto& a = pipe_a.first;
  auto& b = pipe_a.second;
  std::thread t([&b] {
    Bytes hdr(13);
    (void)b->read_exact(hdr, soon());
    b.reset();  // reads the start of ClientHello and disappears
  });
  auto r = SecureChannel::connect(std::move(a), c.config);
  t.join();
  NET_EXPECT_ERROR(r, StatusCode::kUnavailable, "handshake");
}

TEST(Channel, HandshakeGarbageRefused) {
  auto s = mock_side("server", "client");
  auto pipe_a = make_pipe();
  auto& a = pipe_a.first;
  auto& b = pipe_a.second;
  NET_ASSERT_OK(a->write_all(from_hex("cf4d04010000000000000000450102").value(), soon()));  // version 4
  NET_EXPECT_ERROR(SecureChannel::accept(std::move(b), s.config), StatusCode::kProtocol,
                   "unsupported protocol version");
  auto pipe_a2 = make_pipe();
  auto& a2 = pipe_a2.first;
  auto& b2 = pipe_a2.second;
  NET_ASSERT_OK(a2->write_all(encode_frame({MsgType::kHello, 0, 0, 0}, Bytes(40, 1)), soon()));
  EXPECT_EQ(SecureChannel::accept(std::move(b2), s.config).status().code(), StatusCode::kInvalidArgument);
  auto pipe_a3 = make_pipe();
  auto& a3 = pipe_a3.first;
  auto& b3 = pipe_a3.second;
  NET_ASSERT_OK(a3->write_all(encode_frame_header({MsgType::kHello, 0, 0, 0x7FFFFFFF}), soon()));
  NET_EXPECT_ERROR(SecureChannel::accept(std::move(b3), s.config), StatusCode::kResourceExhausted, "exceeds");
}

TEST(Channel, ConfigValidation) {
  auto c = mock_side("client", "server");
  ChannelConfig bad = c.config;
  bad.provider = nullptr;
  auto pipe_a = make_pipe();
  auto& a = pipe_a.first;
  NET_EXPECT_ERROR(SecureChannel::connect(std::move(a), bad), StatusCode::kInvalidArgument, "provider");
  bad = c.config;
  bad.suites = {AeadSuite::kAes256Gcm, AeadSuite::kAes256Gcm};
  EXPECT_EQ(validate_config(bad, true).code(), StatusCode::kInvalidArgument);
  bad = c.config;
  bad.max_data_size = bad.max_record_payload;
  EXPECT_EQ(validate_config(bad, true).code(), StatusCode::kInvalidArgument);
  bad = c.config;
  bad.verifiers = nullptr;
  EXPECT_EQ(validate_config(bad, true).code(), StatusCode::kInvalidArgument);
  bad = c.config;
  bad.read_spin = std::chrono::milliseconds(11);
  EXPECT_EQ(validate_config(bad, true).code(), StatusCode::kInvalidArgument);
  bad.read_spin = std::chrono::nanoseconds(-1);
  EXPECT_EQ(validate_config(bad, true).code(), StatusCode::kInvalidArgument);
  bad.read_spin = std::chrono::milliseconds(10);
  EXPECT_TRUE(validate_config(bad, true).is_ok());
}

struct Established {
  testing::MockSide c = mock_side("client", "server");
  testing::MockSide s = mock_side("server", "client");
  std::unique_ptr<SecureChannel> i, r;
  explicit Established(std::function<void(ChannelConfig&, ChannelConfig&)> tweak = {},
                       size_t pipe_capacity = 4u << 20) {
    if (tweak) tweak(c.config, s.config);
    auto pipe_a = make_pipe(pipe_capacity);
    auto& a = pipe_a.first;
    auto& b = pipe_a.second;
    auto p = handshake(std::move(a), std::move(b), c.config, s.config);
    CML_CHECK(p.initiator.is_ok() && p.responder.is_ok());
    i = std::move(p.initiator).value();
    r = std::move(p.responder).value();
  }
};

TEST(Channel, RekeyForcedBySmallLimits) {
  Established e([](ChannelConfig& c, ChannelConfig& s) {
    c.rekey_after_records = 3;
    s.rekey_after_bytes = 100;
  });
  Message m;
  for (int k = 0; k < 20; ++k) {
    const std::string text = "message " + std::to_string(k) + std::string(40, 'x');
    NET_ASSERT_OK(e.i->send_data(as_bytes(text), soon()));
    NET_ASSERT_OK(e.r->recv(m, soon()));
    EXPECT_EQ(as_string_view(m.data), text);
    NET_ASSERT_OK(e.r->send_data(as_bytes(text), soon()));
    NET_ASSERT_OK(e.i->recv(m, soon()));
    EXPECT_EQ(as_string_view(m.data), text);
  }
  EXPECT_GE(e.i->stats().key_updates_sent, 6u);
  EXPECT_EQ(e.i->stats().key_updates_sent, e.r->stats().key_updates_received);
  EXPECT_GE(e.r->stats().key_updates_sent, 6u);
  EXPECT_EQ(e.r->stats().key_updates_sent, e.i->stats().key_updates_received);
}

TEST(Channel, RekeyInsideChunkedTensor) {
  Established e([](ChannelConfig& c, ChannelConfig& s) {
    c.rekey_after_records = 2;
    s.max_record_payload = 4096;
    s.max_data_size = 4000;
  });
  Bytes data(100000);
  for (size_t k = 0; k < data.size(); ++k) data[k] = uint8_t(k * 7 + 1);
  const uint32_t shape[] = {100000};
  std::thread t([&] { EXPECT_TRUE(e.i->send_tensor({"big", tensor::DType::kU8, shape, data}, soon()).is_ok()); });
  Message m;
  NET_ASSERT_OK(e.r->recv(m, soon()));
  t.join();
  EXPECT_EQ(m.kind, Message::Kind::kTensor);
  EXPECT_EQ(m.tensor.data, data);
  EXPECT_GT(e.r->stats().key_updates_received, 10u);
  EXPECT_GT(e.r->stats().records_received, 25u);  // 100 kB in 4 KiB records
}

TEST(Channel, ReceiverRefusesAPeerThatDoesNotRekeyInTime) {
  // The responder requires a new key every 4 records / 1000 bytes; a compliant sender passes...
  Established ok([](ChannelConfig& c, ChannelConfig& s) {
    c.rekey_after_records = 4;
    s.peer_max_records_per_key = 4;
    s.peer_max_bytes_per_key = 1000;
  });
  Message m;
  for (int k = 0; k < 20; ++k) {
    NET_ASSERT_OK(ok.i->send_data(Bytes(100, uint8_t(k)), soon()));
    NET_ASSERT_OK(ok.r->recv(m, soon()));
  }
  // ...one that keeps its key longer fails the channel at the first record past the limit.
  Established late([](ChannelConfig&, ChannelConfig& s) { s.peer_max_records_per_key = 4; });
  for (int k = 0; k < 3; ++k) {
    NET_ASSERT_OK(late.i->send_data(Bytes(10), soon()));
    NET_ASSERT_OK(late.r->recv(m, soon()));
  }
  NET_ASSERT_OK(late.i->send_data(Bytes(10), soon()));
  NET_EXPECT_ERROR(late.r->recv(m, soon()), StatusCode::kProtocol, "without a KeyUpdate");
  // The byte limit alike.
  Established heavy([](ChannelConfig&, ChannelConfig& s) { s.peer_max_bytes_per_key = 1000; });
  NET_ASSERT_OK(heavy.i->send_data(Bytes(1200), soon()));
  NET_ASSERT_OK(heavy.r->recv(m, soon()));  // one record may cross the limit
  NET_ASSERT_OK(heavy.i->send_data(Bytes(10), soon()));
  NET_EXPECT_ERROR(heavy.r->recv(m, soon()), StatusCode::kProtocol, "without a KeyUpdate");
}

TEST(Channel, RekeyLimitsBeyondTheProtocolAreRefused) {
  ChannelConfig c;
  c.provider = nullptr;
  c.mode = HandshakeMode::kOneWay;
  c.verifiers = attest::mock_verifier_set();
  EXPECT_TRUE(validate_config(c, true).is_ok());
  c.rekey_after_records = kMaxRecordsPerKey + 1;
  EXPECT_EQ(validate_config(c, true).code(), StatusCode::kInvalidArgument);
  c.rekey_after_records = kMaxRecordsPerKey;
  c.rekey_after_bytes = kMaxBytesPerKey + 1;
  EXPECT_EQ(validate_config(c, true).code(), StatusCode::kInvalidArgument);
  c.rekey_after_bytes = kMaxBytesPerKey;
  c.peer_max_records_per_key = 1;
  EXPECT_EQ(validate_config(c, true).code(), StatusCode::kInvalidArgument);
}

TEST(Channel, PeerLimitsRespectedBySender) {
  Established e([](ChannelConfig&, ChannelConfig& s) {
    s.max_record_payload = 8192;
    s.max_data_size = 8000;
  });
  EXPECT_EQ(e.i->max_send_data(), 8192u - 16);
  NET_EXPECT_ERROR(e.i->send_data(Bytes(9000), soon()), StatusCode::kResourceExhausted, "peer's limit");
  NET_EXPECT_OK(e.i->send_data(Bytes(100), soon()));
}

TEST(Channel, RecvTimeoutAtBoundaryKeepsChannel) {
  Established e;
  Message m;
  NET_EXPECT_ERROR(e.r->recv(m, Deadline::after(milliseconds(20))), StatusCode::kTimeout, "deadline");
  NET_ASSERT_OK(e.i->send_data(as_bytes("late"), soon()));
  NET_ASSERT_OK(e.r->recv(m, soon()));
  EXPECT_EQ(as_string_view(m.data), "late");
}

TEST(Channel, ShutdownAndErrorRecords) {
  Established e;
  Message m;
  NET_ASSERT_OK(e.i->send_data(as_bytes("last"), soon()));
  NET_ASSERT_OK(e.i->shutdown(soon()));
  NET_EXPECT_ERROR(e.i->send_data(as_bytes("more"), soon()), StatusCode::kAborted, "after shutdown");
  NET_ASSERT_OK(e.r->recv(m, soon()));
  EXPECT_EQ(as_string_view(m.data), "last");  // flushed before the Shutdown
  NET_ASSERT_OK(e.r->recv(m, soon()));
  EXPECT_EQ(m.kind, Message::Kind::kShutdown);
  NET_ASSERT_OK(e.r->recv(m, soon()));
  EXPECT_EQ(m.kind, Message::Kind::kShutdown);
  // The other direction still works until the responder sends an Error.
  NET_ASSERT_OK(e.r->send_err("layer 3 failed", soon()));
  NET_ASSERT_OK(e.i->recv(m, soon()));
  std::string reason;
  EXPECT_EQ(m.sentinel(&reason), Sentinel::kErr);
  EXPECT_EQ(reason, "layer 3 failed");
  NET_ASSERT_OK(e.r->send_error("out of memory", soon()));
  NET_EXPECT_ERROR(e.i->recv(m, soon()), StatusCode::kAborted, "peer aborted: out of memory");
  NET_EXPECT_ERROR(e.i->recv(m, soon()), StatusCode::kAborted, "out of memory");  // sticky
}

TEST(Channel, TensorsOfEveryDTypeAndSize) {
  Established e;
  Message m;
  for (tensor::DType dt : {tensor::DType::kF32, tensor::DType::kF64, tensor::DType::kF16, tensor::DType::kBF16,
                           tensor::DType::kI32, tensor::DType::kI64, tensor::DType::kU8, tensor::DType::kU32}) {
    for (uint32_t n : {0u, 1u, 1000u, 70000u, 3000000u}) {
      const uint32_t shape[] = {n};
      Bytes data(size_t{n} * tensor::dtype_size(dt));
      for (size_t k = 0; k < data.size(); ++k) data[k] = uint8_t(k ^ n);
      std::thread t([&] { EXPECT_TRUE(e.i->send_tensor({"t", dt, shape, data}, soon()).is_ok()); });
      NET_ASSERT_OK(e.r->recv(m, soon()));
      t.join();
      ASSERT_EQ(m.kind, Message::Kind::kTensor);
      EXPECT_EQ(m.tensor.dtype, dt);
      EXPECT_EQ(m.tensor.shape, std::vector<uint32_t>{n});
      EXPECT_EQ(m.tensor.data, data);
    }
  }
  // Scalar.
  const float one = 1.0f;
  NET_ASSERT_OK(
      e.i->send_tensor({"s", tensor::DType::kF32, {}, ByteSpan(reinterpret_cast<const uint8_t*>(&one), 4)}, soon()));
  NET_ASSERT_OK(e.r->recv(m, soon()));
  EXPECT_TRUE(m.tensor.shape.empty());
  EXPECT_EQ(m.tensor.data.size(), 4u);
}

TEST(Channel, LargeTensorsTravelInAboutFourChunks) {
  // A quarter of the data, rounded up to 4 KiB, between 32 KiB and the record limit.
  EXPECT_EQ(tensor_chunk_size(128 * 1024, 4u << 20), 32u * 1024);
  EXPECT_EQ(tensor_chunk_size(70000, 4u << 20), 32u * 1024);
  EXPECT_EQ(tensor_chunk_size(1u << 20, 4u << 20), 256u * 1024);
  EXPECT_EQ(tensor_chunk_size((1u << 20) + 1, 4u << 20), 260u * 1024);
  EXPECT_EQ(tensor_chunk_size(64u << 20, 4u << 20), 4u << 20);
  EXPECT_EQ(tensor_chunk_size(1u << 20, 10000), 10000u);
  EXPECT_EQ(tensor_chunk_size(1u << 20, 0), 1u);  // never an endless loop of empty chunks

  Established e;
  Message m;
  Bytes data(128 * 1024);
  for (size_t k = 0; k < data.size(); ++k) data[k] = uint8_t(k * 7);
  const uint32_t shape[] = {uint32_t(data.size())};
  const uint64_t before = e.r->stats().records_received;
  std::thread t([&] { EXPECT_TRUE(e.i->send_tensor({"h", tensor::DType::kU8, shape, data}, soon()).is_ok()); });
  NET_ASSERT_OK(e.r->recv(m, soon()));
  t.join();
  EXPECT_EQ(m.tensor.data, data);
  EXPECT_EQ(e.r->stats().records_received - before, 5u);  // the sub-header, then four chunks of 32 KiB
}

// Over a pipe of 10000 bytes, records of varying size land in one piece of the ring (sealed into it and
// opened out of it) or across its end (copied through the channel's own buffers), both ways at once.
TEST(Channel, RecordsInOnePieceOfThePipeOrAcrossItsEnd) {
  Established e({}, 10000);
  std::vector<Bytes> sent;
  for (uint32_t k = 0; k < 300; ++k) {
    Bytes d(1 + (k * 977) % 6000);
    for (size_t j = 0; j < d.size(); ++j) d[j] = uint8_t(j * 7 + k);
    sent.push_back(std::move(d));
  }
  std::thread t([&] {
    for (const Bytes& d : sent) {
      const uint32_t shape[] = {uint32_t(d.size())};
      if (!e.i->send_tensor({"t", tensor::DType::kU8, shape, d}, soon()).is_ok()) return;
      if (!e.i->send_data(ByteSpan(d).first(d.size() / 3), soon()).is_ok()) return;
    }
  });
  Message m;
  for (const Bytes& d : sent) {
    NET_ASSERT_OK(e.r->recv(m, soon()));
    ASSERT_EQ(m.kind, Message::Kind::kTensor);
    ASSERT_EQ(m.tensor.data, d);
    NET_ASSERT_OK(e.r->recv(m, soon()));
    ASSERT_EQ(m.kind, Message::Kind::kData);
    ASSERT_EQ(m.data, Bytes(d.begin(), d.begin() + std::ptrdiff_t(d.size() / 3)));
  }
  t.join();
}

TEST(Channel, TensorOverReceiverBoundRefused) {
  Established e([](ChannelConfig&, ChannelConfig& s) { s.max_tensor_size = 1000; });
  const uint32_t shape[] = {2000};
  Bytes data(2000);
  NET_ASSERT_OK(e.i->send_tensor({"t", tensor::DType::kU8, shape, data}, soon()));
  Message m;
  NET_EXPECT_ERROR(e.r->recv(m, soon()), StatusCode::kResourceExhausted, "exceed the limit of 1000");
}

TEST(Channel, ConcurrentSendAndReceive) {
  Established e;
  constexpr int kN = 2000;
  std::thread echo([&] {
    Message m;
    for (int k = 0; k < kN; ++k) {
      if (!e.r->recv(m, soon()).is_ok()) return;
      if (!e.r->send_data(m.data, soon()).is_ok()) return;
    }
  });
  std::thread sender([&] {
    for (int k = 0; k < kN; ++k) EXPECT_TRUE(e.i->send_data(as_bytes(std::to_string(k)), soon()).is_ok());
  });
  Message m;
  for (int k = 0; k < kN; ++k) {
    NET_ASSERT_OK(e.i->recv(m, soon()));
    EXPECT_EQ(as_string_view(m.data), std::to_string(k));
  }
  sender.join();
  echo.join();
}

// Records the size of every write that reaches the wrapped stream.
class WriteCountingStream final : public testing::ForwardingStream {
 public:
  WriteCountingStream(std::unique_ptr<Stream> inner, std::vector<size_t>* log)
      : ForwardingStream(std::move(inner)), log_(log) {}
  Status write_all(std::span<const ByteSpan> parts, Deadline d) override {
    size_t n = 0;
    for (ByteSpan p : parts) n += p.size();
    log_->push_back(n);
    return ForwardingStream::write_all(parts, d);
  }

 private:
  std::vector<size_t>* log_;
};

// cork()/uncork(): the records sent in between reach the stream in as few writes as fit 64 KiB (a
// larger record on its own), in order, decryptable one by one, rekeys included; without a cork every
// record is its own write.
TEST(Channel, CorkedRecordsLeaveTogetherInOrder) {
  std::vector<size_t> writes;
  auto [a, b] = make_pipe();
  auto c = mock_side("client", "server");
  auto s = mock_side("server", "client");
  c.config.rekey_after_records = 5;
  auto r = handshake(std::make_unique<WriteCountingStream>(std::move(a), &writes), std::move(b), c.config, s.config);
  ASSERT_TRUE(r.initiator.is_ok() && r.responder.is_ok());
  SecureChannel& tx = **r.initiator;
  SecureChannel& rx = **r.responder;
  Message m;
  auto expect_data = [&](ByteSpan want) {
    NET_ASSERT_OK(rx.recv(m, soon()));
    ASSERT_EQ(m.kind, Message::Kind::kData);
    EXPECT_EQ(m.data, Bytes(want.begin(), want.end()));
  };
  const uint32_t shape[] = {3};
  const Bytes small = {1, 2, 3};

  // Uncorked: one write per record.
  writes.clear();
  NET_ASSERT_OK(tx.send_tensor({"t", tensor::DType::kU8, shape, small}, soon()));
  NET_ASSERT_OK(tx.send_data(as_bytes("END"), soon()));
  EXPECT_EQ(writes.size(), 2u);
  NET_ASSERT_OK(rx.recv(m, soon()));
  NET_ASSERT_OK(rx.recv(m, soon()));

  // A step's three records: nothing is written until uncork(), then one write of all three.
  writes.clear();
  tx.cork();
  NET_ASSERT_OK(tx.send_tensor({"step", tensor::DType::kU8, shape, small}, soon()));
  NET_ASSERT_OK(tx.send_tensor({"hidden", tensor::DType::kU8, shape, small}, soon()));
  NET_ASSERT_OK(tx.send_data(as_bytes("END"), soon()));
  EXPECT_TRUE(writes.empty());
  const uint64_t records_before = tx.stats().records_sent;
  NET_ASSERT_OK(tx.uncork(soon()));
  EXPECT_EQ(writes.size(), 1u);
  for (const char* name : {"step", "hidden"}) {
    NET_ASSERT_OK(rx.recv(m, soon()));
    ASSERT_EQ(m.kind, Message::Kind::kTensor);
    EXPECT_EQ(m.tensor.name, name);
    EXPECT_EQ(m.tensor.data, small);
  }
  expect_data(as_bytes("END"));
  EXPECT_EQ(tx.stats().records_sent, records_before);  // counted when sealed, not when written
  // Once uncorked, a record is written at once again.
  writes.clear();
  NET_ASSERT_OK(tx.send_data(as_bytes("alone"), soon()));
  EXPECT_EQ(writes.size(), 1u);
  expect_data(as_bytes("alone"));

  // Records of 20 KiB (with KeyUpdates among them): a write whenever the next would pass 64 KiB.
  writes.clear();
  std::vector<Bytes> sent;
  tx.cork();
  for (int k = 0; k < 12; ++k) {
    sent.emplace_back(20000, uint8_t(k));
    NET_ASSERT_OK(tx.send_data(sent.back(), soon()));
  }
  NET_ASSERT_OK(tx.uncork(soon()));
  EXPECT_EQ(writes.size(), 4u);
  for (size_t w : writes) EXPECT_LE(w, 64u * 1024);
  for (const Bytes& d : sent) expect_data(d);
  EXPECT_GE(tx.stats().key_updates_sent, 2u);

  // A record larger than the cork goes on its own, after what the cork held and before what follows.
  writes.clear();
  const uint32_t big_shape[] = {100000};
  const Bytes big(100000, 0x42);
  tx.cork();
  NET_ASSERT_OK(tx.send_data(as_bytes("before"), soon()));
  NET_ASSERT_OK(tx.send_tensor({"big", tensor::DType::kU8, big_shape, big}, soon()));
  NET_ASSERT_OK(tx.send_data(as_bytes("after"), soon()));
  NET_ASSERT_OK(tx.uncork(soon()));
  expect_data(as_bytes("before"));
  NET_ASSERT_OK(rx.recv(m, soon()));
  ASSERT_EQ(m.kind, Message::Kind::kTensor);
  EXPECT_EQ(m.tensor.data, big);
  expect_data(as_bytes("after"));

  // A refused send inside a cork loses nothing that came before it, and the channel goes on.
  tx.cork();
  NET_ASSERT_OK(tx.send_data(as_bytes("kept"), soon()));
  NET_EXPECT_ERROR(tx.send_data(Bytes(tx.max_send_data() + 1), soon()), StatusCode::kResourceExhausted, "exceeds");
  NET_ASSERT_OK(tx.uncork(soon()));
  expect_data(as_bytes("kept"));
  NET_ASSERT_OK(tx.send_data(as_bytes("next"), soon()));
  expect_data(as_bytes("next"));

  // shutdown() and send_error() write what a cork holds before they close the direction.
  tx.cork();
  NET_ASSERT_OK(tx.send_data(as_bytes("last"), soon()));
  NET_ASSERT_OK(tx.shutdown(soon()));
  expect_data(as_bytes("last"));
  NET_ASSERT_OK(rx.recv(m, soon()));
  EXPECT_EQ(m.kind, Message::Kind::kShutdown);
  rx.cork();
  NET_ASSERT_OK(rx.send_data(as_bytes("partial"), soon()));
  NET_ASSERT_OK(rx.send_error("stage failed", soon()));
  NET_ASSERT_OK(tx.recv(m, soon()));
  EXPECT_EQ(as_string_view(m.data), "partial");
  NET_EXPECT_ERROR(tx.recv(m, soon()), StatusCode::kAborted, "stage failed");
}

// Over an in-memory pipe a corked record still goes straight into the ring (nothing to gather).
TEST(Channel, CorkOverAPipeSealsIntoTheRing) {
  Established e;
  e.i->cork();
  NET_ASSERT_OK(e.i->send_data(as_bytes("one"), soon()));
  Message m;
  NET_ASSERT_OK(e.r->recv(m, Deadline::after(std::chrono::milliseconds(200))));  // before uncork()
  EXPECT_EQ(as_string_view(m.data), "one");
  NET_ASSERT_OK(e.i->uncork(soon()));
}

}  // namespace
}  // namespace cml::net
