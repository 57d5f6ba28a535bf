// An attacker on the wire: replayed, reordered, dropped, truncated, bit-flipped, oversized and
// malformed frames are all rejected with a clear Status, without crash or hang — records, and the
// handshake's four messages (TamperHandshake, ScriptedInitiator).
#include <gtest/gtest.h>

#include <functional>
#include <optional>
#include <thread>

#include "net/secure_channel.h"
#include "net_test_util.h"

namespace cml::net {
namespace {

using testing::soon;
using testing::TamperStream;

struct Tapped {
  testing::MockSide c = testing::mock_side("client", "server");
  testing::MockSide s = testing::mock_side("server", "client");
  std::shared_ptr<TamperStream::Control> tap = std::make_shared<TamperStream::Control>();
  std::unique_ptr<SecureChannel> sender, receiver;
  Tapped() {
    auto pipe_a = make_pipe();
    auto& a = pipe_a.first;
    auto& b = pipe_a.second;
    auto p = testing::handshake(std::make_unique<TamperStream>(std::move(a), tap), std::move(b), c.config, s.config);
    CML_CHECK(p.initiator.is_ok() && p.responder.is_ok());
    sender = std::move(p.initiator).value();
    receiver = std::move(p.responder).value();
  }
  void send(std::string_view text) { ASSERT_TRUE(sender->send_data(as_bytes(text), soon()).is_ok()); }
  Status recv_text(std::string* text = nullptr) {
    Message m;
    Status st = receiver->recv(m, soon());
    if (st.is_ok() && text) *text = std::string(as_string_view(m.data));
    return st;
  }
};

TEST(Tamper, Replay) {
  Tapped t;
  Bytes captured;
  t.tap->set([&](Bytes f) {
    captured = f;
    return std::vector<Bytes>{f, f};  // delivered twice
  });
  t.send("pay 100");
  std::string text;
  NET_ASSERT_OK(t.recv_text(&text));
  EXPECT_EQ(text, "pay 100");
  NET_EXPECT_ERROR(t.recv_text(), StatusCode::kProtocol, "replayed or reordered");
  NET_EXPECT_ERROR(t.recv_text(), StatusCode::kProtocol, "replayed");  // sticky
}

TEST(Tamper, Reorder) {
  Tapped t;
  std::vector<Bytes> held;
  t.tap->set([&](Bytes f) {
    held.push_back(std::move(f));
    if (held.size() < 2) return std::vector<Bytes>{};
    return std::vector<Bytes>{held[1], held[0]};  // second before first
  });
  t.send("first");
  t.send("second");
  NET_EXPECT_ERROR(t.recv_text(), StatusCode::kProtocol, "record sequence 1, expected 0");
}

TEST(Tamper, Drop) {
  Tapped t;
  int n = 0;
  t.tap->set([&](Bytes f) {
    if (n++ == 1) return std::vector<Bytes>{};  // drop the second record
    return std::vector<Bytes>{f};
  });
  t.send("a");
  t.send("b");
  t.send("c");
  NET_ASSERT_OK(t.recv_text());
  NET_EXPECT_ERROR(t.recv_text(), StatusCode::kProtocol, "dropped");
}

TEST(Tamper, DropWithForgedSequenceFailsAuthentication) {
  // The attacker drops a record and rewrites the next one's sequence field to hide the gap.
  Tapped t;
  int n = 0;
  t.tap->set([&](Bytes f) {
    const int k = n++;
    if (k == 0) return std::vector<Bytes>{};
    store_u32_be(f.data() + 5, 0);
    return std::vector<Bytes>{f};
  });
  t.send("a");
  t.send("b");
  NET_EXPECT_ERROR(t.recv_text(), StatusCode::kCrypto, "failed authentication");
}

TEST(Tamper, TruncationWithoutShutdown) {
  Tapped t;
  t.send("a");
  t.sender.reset();  // connection ends without a Shutdown record
  NET_ASSERT_OK(t.recv_text());
  NET_EXPECT_ERROR(t.recv_text(), StatusCode::kProtocol, "ended without Shutdown (truncated)");
}

TEST(Tamper, ShutdownDroppedIsTruncation) {
  Tapped t;
  t.tap->set([&](Bytes f) {
    if (f[3] == static_cast<uint8_t>(MsgType::kShutdown)) return std::vector<Bytes>{};
    return std::vector<Bytes>{f};
  });
  t.send("a");
  NET_ASSERT_OK(t.sender->shutdown(soon()));
  NET_ASSERT_OK(t.recv_text());
  NET_EXPECT_ERROR(t.recv_text(), StatusCode::kProtocol, "truncated");
}

TEST(Tamper, BitFlips) {
  // Every bit of a Data record, one at a time: each flip is detected (by the header checks, the
  // sequence check or the AEAD tag) — none is accepted.
  Bytes frame;
  {
    Tapped t;
    t.tap->set([&](Bytes f) {
      frame = f;
      return std::vector<Bytes>{};
    });
    t.send("confidential activations");
  }
  ASSERT_EQ(frame.size(), 13u + 24 + 16);
  for (size_t bit = 0; bit < frame.size() * 8; bit += (bit < 13 * 8 ? 1 : 7)) {
    Tapped t;
    Bytes f = frame;
    // Re-send the captured record's bytes on this new session would fail anyway; flip a fresh one.
    t.tap->set([&](Bytes g) {
      g[bit / 8] ^= uint8_t(1u << (bit % 8));
      return std::vector<Bytes>{g};
    });
    t.send("confidential activations");
    t.sender.reset();
    Status st = t.recv_text();
    EXPECT_FALSE(st.is_ok()) << "bit " << bit;
    EXPECT_NE(st.code(), StatusCode::kInternal) << st.to_string();
  }
}

TEST(Tamper, PayloadBitFlipIsCryptoError) {
  Tapped t;
  t.tap->set([&](Bytes g) {
    g[20] ^= 0x40;
    return std::vector<Bytes>{g};
  });
  t.send("secret");
  NET_EXPECT_ERROR(t.recv_text(), StatusCode::kCrypto, "failed authentication");
}

TEST(Tamper, HeaderFlagsFlipIsDetected) {
  Tapped t;
  t.tap->set([&](Bytes g) {
    g[3] = static_cast<uint8_t>(MsgType::kError);  // type confusion: Data → Error (both encrypted, same size)
    return std::vector<Bytes>{g};
  });
  t.send("secret");
  NET_EXPECT_ERROR(t.recv_text(), StatusCode::kCrypto, "failed authentication");
}

TEST(Tamper, OversizedFrame) {
  Tapped t;
  t.tap->set([&](Bytes g) {
    store_u32_be(g.data() + 9, 0x7FFFFFFF);
    return std::vector<Bytes>{g};
  });
  t.send("x");
  NET_EXPECT_ERROR(t.recv_text(), StatusCode::kResourceExhausted, "exceeds the limit");
}

TEST(Tamper, OversizedDataUnderRecordLimit) {
  Tapped t;  // receiver: max_data_size 1 MiB, record limit 4 MiB
  t.tap->set([&](Bytes g) {
    store_u32_be(g.data() + 9, (2u << 20) + 16);
    return std::vector<Bytes>{g};
  });
  t.send("x");
  NET_EXPECT_ERROR(t.recv_text(), StatusCode::kResourceExhausted, "Data message");
}

TEST(Tamper, WrongMagicAndVersion) {
  for (int field : {0, 2}) {
    Tapped t;
    t.tap->set([&](Bytes g) {
      g[field] ^= 0x01;
      return std::vector<Bytes>{g};
    });
    t.send("x");
    NET_EXPECT_ERROR(t.recv_text(), StatusCode::kProtocol, field == 0 ? "bad magic" : "unsupported protocol version");
  }
}

TEST(Tamper, InjectedUnencryptedAndHelloFrames) {
  {
    Tapped t;
    t.tap->set([&](Bytes) { return std::vector<Bytes>{encode_frame({MsgType::kData, 0, 0, 0}, to_bytes("plain"))}; });
    t.send("x");
    NET_EXPECT_ERROR(t.recv_text(), StatusCode::kProtocol, "unencrypted");
  }
  {
    Tapped t;
    t.tap->set([&](Bytes) { return std::vector<Bytes>{encode_frame({MsgType::kHello, 0, 0, 0}, Bytes(33, 3))}; });
    t.send("x");
    NET_EXPECT_ERROR(t.recv_text(), StatusCode::kProtocol, "Hello frame after the handshake");
  }
  {
    Tapped t;
    t.tap->set([&](Bytes) {
      return std::vector<Bytes>{
          encode_frame({MsgType::kTensorChunk, flags::kEncrypted | flags::kTensor, 0, 0}, Bytes(20))};
    });
    t.send("x");
    NET_EXPECT_ERROR(t.recv_text(), StatusCode::kProtocol, "TensorChunk without");
  }
  {
    Tapped t;
    t.tap->set([&](Bytes) {
      return std::vector<Bytes>{encode_frame({MsgType::kData, flags::kEncrypted, 0, 0}, Bytes(5))};
    });
    t.send("x");
    NET_EXPECT_ERROR(t.recv_text(), StatusCode::kProtocol, "shorter than its tag");
  }
}

TEST(Tamper, PeerVanishesMidFrame) {
  for (size_t cut : {size_t{5}, size_t{13}, size_t{20}}) {
    Tapped t;
    t.tap->set([&](Bytes g) {
      g.resize(cut);
      return std::vector<Bytes>{g};
    });
    t.send("some activations");
    t.sender.reset();
    NET_EXPECT_ERROR(t.recv_text(), StatusCode::kUnavailable, "mid-frame");
  }
}

TEST(Tamper, PeerVanishesInsideChunkedTensor) {
  Tapped t;
  int n = 0;
  t.tap->set([&](Bytes g) {
    if (n++ >= 2) return std::vector<Bytes>{};  // header record and first chunk only
    return std::vector<Bytes>{g};
  });
  Bytes data(10 << 20, 1);
  const uint32_t shape[] = {10 << 20};
  std::thread s([&] {
    EXPECT_TRUE(t.sender->send_tensor({"x", tensor::DType::kU8, shape, data}, soon()).is_ok());
    t.sender.reset();
  });
  Message m;
  NET_EXPECT_ERROR(t.receiver->recv(m, soon()), StatusCode::kProtocol, "inside a chunked tensor");
  s.join();
}

TEST(Tamper, ChunkOfTensorDropped) {
  Tapped t;
  int n = 0;
  t.tap->set([&](Bytes g) {
    if (n++ == 1) return std::vector<Bytes>{};  // drop the first chunk after the tensor header record
    return std::vector<Bytes>{g};
  });
  Bytes data(5 << 20, 1);
  const uint32_t shape[] = {5 << 20};
  std::thread s([&] { (void)t.sender->send_tensor({"x", tensor::DType::kU8, shape, data}, soon()); });
  Message m;
  NET_EXPECT_ERROR(t.receiver->recv(m, soon()), StatusCode::kProtocol, "dropped");
  t.receiver->abort();  // unblocks the sender if the pipe is full
  s.join();
}

// ---------------------------------------------------------------------------------------------------
// The handshake on the wire (docs/protocol.md §4): M1 ClientHello (seq 0), M2 ServerHello (seq 1),
// M3 ServerFinished (seq 2), M4 ClientFinished (seq 3).

using Frames = std::vector<Bytes>;

// True for a plaintext Hello frame whose message code is `code`.
bool is_hello(const Bytes& f, uint8_t code) {
  return f.size() > kFrameHeaderSize && f[3] == static_cast<uint8_t>(MsgType::kHello) && f[kFrameHeaderSize] == code;
}

void set_payload_len(Bytes& f) {
  store_u32_be(f.data() + 9, static_cast<uint32_t>(f.size() - kFrameHeaderSize));
}

// A mutual handshake over a pipe with a tap on each direction: `responder_hook` rewrites what the
// responder sends, `initiator_hook` what the initiator sends. Every frame the initiator writes is recorded.
struct TappedHandshake {
  testing::MockSide c = testing::mock_side("client", "server");
  testing::MockSide s = testing::mock_side("server", "client");
  std::function<Frames(Bytes)> responder_hook = [](Bytes f) { return Frames{std::move(f)}; };
  std::function<Frames(Bytes)> initiator_hook = [](Bytes f) { return Frames{std::move(f)}; };
  Frames initiator_wrote;  // before initiator_hook

  testing::PairResult run() {
    auto from_initiator = std::make_shared<TamperStream::Control>();
    auto from_responder = std::make_shared<TamperStream::Control>();
    from_initiator->set([this](Bytes f) {
      initiator_wrote.push_back(f);
      return initiator_hook(std::move(f));
    });
    from_responder->set([this](Bytes f) { return responder_hook(std::move(f)); });
    auto pipe = make_pipe();
    return testing::handshake(std::make_unique<TamperStream>(std::move(pipe.first), from_initiator),
                              std::make_unique<TamperStream>(std::move(pipe.second), from_responder), c.config,
                              s.config);
  }
  // Applies `mutate` to the responder's frames that carry message `code`.
  void on_responder_message(uint8_t code, std::function<Frames(Bytes)> mutate) {
    responder_hook = [code, mutate](Bytes f) {
      return is_hello(f, code) ? mutate(std::move(f)) : Frames{std::move(f)};
    };
  }
  // The seq of the initiator's last frame if it is an Error frame, else -1.
  int64_t initiator_error_seq() const {
    if (initiator_wrote.empty()) return -1;
    const Bytes& f = initiator_wrote.back();
    if (f.size() < kFrameHeaderSize || f[3] != static_cast<uint8_t>(MsgType::kError)) return -1;
    return load_u32_be(f.data() + 5);
  }
};

TEST(TamperHandshake, Untouched) {
  TappedHandshake t;
  auto r = t.run();
  NET_ASSERT_OK(r.initiator);
  NET_ASSERT_OK(r.responder);
  EXPECT_EQ((*r.initiator)->session_id(), (*r.responder)->session_id());
  ASSERT_EQ(t.initiator_wrote.size(), 2u);
  EXPECT_TRUE(is_hello(t.initiator_wrote[0], kClientHelloCode));
  EXPECT_TRUE(is_hello(t.initiator_wrote[1], kClientFinishedCode));
  EXPECT_EQ(load_u32_be(t.initiator_wrote[1].data() + 5), kClientFinishedSeq);
}

TEST(TamperHandshake, ServerFinishedBitFlipRefused) {
  TappedHandshake t;
  t.on_responder_message(kServerFinishedCode, [](Bytes f) {
    f[kFrameHeaderSize + 1 + 7] ^= 0x10;  // inside the finished value
    return Frames{f};
  });
  auto r = t.run();
  NET_EXPECT_ERROR(r.initiator, StatusCode::kCrypto, "responder Finished does not match");
  NET_EXPECT_ERROR(r.responder, StatusCode::kAborted, "peer refused");
  EXPECT_EQ(t.initiator_error_seq(), int64_t{kClientFinishedSeq});  // the Error takes M4's place
}

TEST(TamperHandshake, GarbledServerFinishedRefused) {
  struct Case {
    const char* name;
    std::function<void(Bytes&)> mutate;
    StatusCode code;
    const char* text;
    bool error_frame;  // the initiator refuses with an Error frame (seq 3)
  };
  const Case cases[] = {
      {"ClientFinished code", [](Bytes& f) { f[kFrameHeaderSize] = kClientFinishedCode; }, StatusCode::kProtocol,
       "expected ServerFinished", true},
      {"ServerHello code", [](Bytes& f) { f[kFrameHeaderSize] = kServerHelloCode; }, StatusCode::kProtocol,
       "expected ServerFinished", true},
      {"unknown code", [](Bytes& f) { f[kFrameHeaderSize] = 0x7F; }, StatusCode::kProtocol, "expected ServerFinished",
       true},
      {"truncated",
       [](Bytes& f) {
         f.pop_back();
         set_payload_len(f);
       },
       StatusCode::kInvalidArgument, "", true},
      {"empty",
       [](Bytes& f) {
         f.resize(kFrameHeaderSize);
         set_payload_len(f);
       },
       StatusCode::kInvalidArgument, "", true},
      {"trailing byte",
       [](Bytes& f) {
         f.push_back(0);
         set_payload_len(f);
       },
       StatusCode::kInvalidArgument, "", true},
      {"seq 3", [](Bytes& f) { store_u32_be(f.data() + 5, 3); }, StatusCode::kProtocol, "sequence 3, expected 2",
       false},
      {"seq 1", [](Bytes& f) { store_u32_be(f.data() + 5, 1); }, StatusCode::kProtocol, "sequence 1, expected 2",
       false},
      {"flags", [](Bytes& f) { f[4] = flags::kEncrypted; }, StatusCode::kProtocol, "flags set", false},
      {"Data type", [](Bytes& f) { f[3] = static_cast<uint8_t>(MsgType::kData); }, StatusCode::kProtocol,
       "expected a Hello frame (ServerFinished)", false},
      {"unknown type", [](Bytes& f) { f[3] = 0x55; }, StatusCode::kProtocol, "", false},
      {"oversized", [](Bytes& f) { store_u32_be(f.data() + 9, 0x7FFFFFFF); }, StatusCode::kResourceExhausted, "exceeds",
       false},
  };
  for (const Case& k : cases) {
    SCOPED_TRACE(k.name);
    TappedHandshake t;
    t.on_responder_message(kServerFinishedCode, [&k](Bytes f) {
      k.mutate(f);
      return Frames{f};
    });
    auto r = t.run();
    NET_EXPECT_ERROR(r.initiator, k.code, k.text);
    EXPECT_FALSE(r.responder.is_ok());
    EXPECT_EQ(t.initiator_error_seq(), k.error_frame ? int64_t{kClientFinishedSeq} : -1);
  }
}

TEST(TamperHandshake, ServerFinishedMissingTimesOut) {
  TappedHandshake t;
  t.c.config.handshake_timeout = std::chrono::milliseconds(300);
  t.on_responder_message(kServerFinishedCode, [](Bytes) { return Frames{}; });
  auto r = t.run();
  NET_EXPECT_ERROR(r.initiator, StatusCode::kTimeout, "waiting for ServerFinished");
  EXPECT_FALSE(r.responder.is_ok());  // the initiator went away without a ClientFinished
}

TEST(TamperHandshake, ServerFinishedDuplicated) {
  TappedHandshake t;
  t.on_responder_message(kServerFinishedCode, [](Bytes f) { return Frames{f, f}; });
  auto r = t.run();
  NET_ASSERT_OK(r.initiator);
  NET_ASSERT_OK(r.responder);
  // The initiator read one copy; the other is the first frame after its handshake.
  Message m;
  NET_EXPECT_ERROR((*r.initiator)->recv(m, soon()), StatusCode::kProtocol, "Hello frame after the handshake");
}

TEST(TamperHandshake, ServerHelloDuplicated) {
  TappedHandshake t;
  t.on_responder_message(kServerHelloCode, [](Bytes f) { return Frames{f, f}; });
  auto r = t.run();
  NET_EXPECT_ERROR(r.initiator, StatusCode::kProtocol, "sequence 1, expected 2");
  EXPECT_FALSE(r.responder.is_ok());
}

TEST(TamperHandshake, ServerHelloCarryingFinishedRefused) {
  // A ServerHello of the first v5 revision (the responder's Finished appended) has 32 trailing bytes.
  TappedHandshake t;
  t.on_responder_message(kServerHelloCode, [](Bytes f) {
    f.insert(f.end(), kFinishedSize, 0x6E);
    set_payload_len(f);
    return Frames{f};
  });
  auto r = t.run();
  NET_EXPECT_ERROR(r.initiator, StatusCode::kInvalidArgument, "ServerHello");
  NET_EXPECT_ERROR(r.responder, StatusCode::kAborted, "peer refused");
  EXPECT_EQ(t.initiator_error_seq(), int64_t{kClientFinishedSeq});
}

TEST(TamperHandshake, ClientFinishedBitFlipRefusedByResponder) {
  TappedHandshake t;
  t.initiator_hook = [](Bytes f) {
    if (is_hello(f, kClientFinishedCode)) f.back() ^= 0x01;
    return Frames{f};
  };
  auto r = t.run();
  NET_EXPECT_OK(r.initiator);  // it sent M4 and counts its session established
  NET_EXPECT_ERROR(r.responder, StatusCode::kCrypto, "initiator Finished does not match");
}

TEST(TamperHandshake, ClientFinishedMissingTimesOut) {
  TappedHandshake t;
  t.s.config.handshake_timeout = std::chrono::milliseconds(300);
  t.initiator_hook = [](Bytes f) { return is_hello(f, kClientFinishedCode) ? Frames{} : Frames{f}; };
  auto r = t.run();
  NET_EXPECT_OK(r.initiator);
  NET_EXPECT_ERROR(r.responder, StatusCode::kTimeout, "waiting for ClientFinished");
}

// A hand-written initiator driving a real responder frame by frame.
struct FakeInitiator {
  testing::MockSide s = testing::mock_side("server", "client");
  std::unique_ptr<Stream> wire;
  Result<std::unique_ptr<SecureChannel>> responder = internal_error("not run");
  std::thread thread;
  crypto::X25519KeyPair kp = crypto::X25519KeyPair::generate();
  attest::MockProvider provider{attest::mock_measurements("client")};
  ClientHello ch;

  explicit FakeInitiator(HandshakeMode mode = HandshakeMode::kMutual) {
    ch.mode = mode;
    ch.public_key = kp.public_key();
    ch.nonce.fill(0x5A);
    ch.max_record_payload = 1u << 20;
    ch.suites = {crypto::AeadSuite::kChaCha20Poly1305};
    if (mode == HandshakeMode::kMutual) ch.evidence = provider.attest(ch.public_key, ch.nonce).value();
  }
  void start() {
    auto pipe = make_pipe();
    wire = std::move(pipe.first);
    thread = std::thread(
        [this, b = std::move(pipe.second)]() mutable { responder = SecureChannel::accept(std::move(b), s.config); });
  }
  // Waits for the responder's accept() to return.
  void finish() {
    if (thread.joinable()) thread.join();
  }
  ~FakeInitiator() {
    if (wire) wire->abort();
    finish();
  }
  Status send(uint32_t seq, ByteSpan payload) {
    return wire->write_all(encode_frame({MsgType::kHello, 0, seq, 0}, payload), soon());
  }
  Result<std::pair<FrameHeader, Bytes>> read() {
    FrameHeaderBytes hb{};
    CML_RETURN_IF_ERROR(wire->read_exact(hb, soon()));
    CML_ASSIGN_OR_RETURN(FrameHeader h, decode_frame_header(hb, kMaxHandshakePayload));
    Bytes payload(h.payload_len);
    CML_RETURN_IF_ERROR(wire->read_exact(payload, soon()));
    return std::pair<FrameHeader, Bytes>{h, std::move(payload)};
  }
};

TEST(ScriptedInitiator, ClientFinishedBeforeServerFinishedIsRead) {
  // The responder sends M3 before it reads anything, so an M4 that is already waiting changes nothing;
  // an M4 in M3's slot (seq 2, the first revision's ClientFinished) is refused.
  for (uint32_t m4_seq : {kClientFinishedSeq, kServerFinishedSeq}) {
    SCOPED_TRACE(m4_seq);
    FakeInitiator x;
    x.start();
    std::optional<KeySchedule> ks;
    std::array<uint8_t, kFinishedSize> server_finished{}, expected_server_finished{};
    auto script = [&]() -> Status {
      CML_RETURN_IF_ERROR(x.send(kClientHelloSeq, encode_client_hello(x.ch)));
      CML_ASSIGN_OR_RETURN(auto m2, x.read());
      if (m2.first.type != MsgType::kHello || m2.first.seq != kServerHelloSeq) return internal_error("no M2");
      CML_ASSIGN_OR_RETURN(ServerHello sh, parse_server_hello(m2.second));
      CML_ASSIGN_OR_RETURN(crypto::SecretBytes ss, x.kp.derive(sh.public_key));
      const auto th = transcript_hash(x.ch, sh);
      CML_ASSIGN_OR_RETURN(KeySchedule k, derive_key_schedule(ss.span(), th));
      expected_server_finished = compute_finished(k.finished_resp, th);
      // M4 goes out before M3 has been read.
      CML_RETURN_IF_ERROR(x.send(m4_seq, encode_client_finished({compute_finished(k.finished_init, th)})));
      ks = std::move(k);
      CML_ASSIGN_OR_RETURN(auto m3, x.read());
      if (m3.first.type != MsgType::kHello || m3.first.seq != kServerFinishedSeq) return internal_error("no M3");
      CML_ASSIGN_OR_RETURN(ServerFinished sf, parse_server_finished(m3.second));
      server_finished = sf.finished;
      return Status::ok();
    };
    const Status st = script();
    x.finish();
    NET_ASSERT_OK(st);
    EXPECT_EQ(server_finished, expected_server_finished);
    if (m4_seq == kClientFinishedSeq) {
      NET_ASSERT_OK(x.responder);
      EXPECT_EQ((*x.responder)->session_id(), ks->session_id);
    } else {
      NET_EXPECT_ERROR(x.responder, StatusCode::kProtocol, "sequence 2, expected 3");
    }
  }
}

TEST(ScriptedInitiator, ResponderRefusalTakesThePlaceOfServerHello) {
  FakeInitiator x(HandshakeMode::kOneWay);  // the responder requires mutual attestation
  x.start();
  NET_ASSERT_OK(x.send(kClientHelloSeq, encode_client_hello(x.ch)));
  auto f = x.read();
  x.finish();
  NET_ASSERT_OK(f);
  EXPECT_EQ(f->first.type, MsgType::kError);
  EXPECT_EQ(f->first.seq, kServerHelloSeq);
  NET_EXPECT_ERROR(x.responder, StatusCode::kPolicy, "mutual attestation is required");
}

TEST(ScriptedInitiator, ResponderRefusalAfterServerHelloTakesThePlaceOfServerFinished) {
  // An all-zero public key: the responder sends M2 before it derives, then finds the shared secret
  // all-zero and refuses in M3's slot.
  FakeInitiator x(HandshakeMode::kOneWay);
  x.s.config.mode = HandshakeMode::kOneWay;
  x.ch.public_key.fill(0);
  x.start();
  NET_ASSERT_OK(x.send(kClientHelloSeq, encode_client_hello(x.ch)));
  auto m2 = x.read();
  auto err = x.read();
  x.finish();
  NET_ASSERT_OK(m2);
  EXPECT_EQ(m2->first.type, MsgType::kHello);
  EXPECT_EQ(m2->first.seq, kServerHelloSeq);
  NET_EXPECT_OK(parse_server_hello(m2->second));
  NET_ASSERT_OK(err);
  EXPECT_EQ(err->first.type, MsgType::kError);
  EXPECT_EQ(err->first.seq, kServerFinishedSeq);
  NET_EXPECT_ERROR(x.responder, StatusCode::kCrypto, "non-contributory");
}

}  // namespace
}  // namespace cml::net
