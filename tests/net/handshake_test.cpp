// Handshake messages, transcript and key schedule, checked against vectors computed independently from
// docs/protocol.md by vectors/gen_v5_vectors.py (Python `cryptography`; output in vectors/v5_vectors.json).
#include "net/handshake.h"

#include <gtest/gtest.h>

#include "attest/mock.h"
#include "net/secure_channel.h"
#include "net_test_util.h"

namespace cml::net {
namespace {

using crypto::AeadSuite;

// The fixed handshake of docs/protocol.md §7.
struct Fixed {
  crypto::X25519KeyPair ki = crypto::X25519KeyPair::from_private(Bytes(32, 0x11)).value();
  crypto::X25519KeyPair kr = crypto::X25519KeyPair::from_private(Bytes(32, 0x22)).value();
  ClientHello ch;
  ServerHello sh;
  Fixed() {
    ch.mode = HandshakeMode::kMutual;
    ch.public_key = ki.public_key();
    ch.nonce.fill(0xA1);
    ch.max_record_payload = 4u << 20;
    ch.suites = {AeadSuite::kAes256Gcm, AeadSuite::kChaCha20Poly1305};
    attest::MockProvider pi(attest::mock_measurements("client"));
    ch.evidence = pi.attest(ch.public_key, ch.nonce).value();
    sh.public_key = kr.public_key();
    sh.nonce.fill(0xB2);
    sh.max_record_payload = 4u << 20;
    sh.suite = AeadSuite::kAes256Gcm;
    attest::MockProvider pr(attest::mock_measurements("server"));
    sh.evidence = pr.attest(sh.public_key, responder_evidence_nonce(ch.nonce, sh.nonce)).value();
  }
};

TEST(HandshakeVectors, MatchIndependentComputation) {
  Fixed f;
  EXPECT_EQ(to_hex(f.ch.public_key), "7b4e909bbe7ffe44c465a220037d608ee35897d31ef972f07f74892cb0f73f13");
  EXPECT_EQ(to_hex(responder_evidence_nonce(f.ch.nonce, f.sh.nonce)),
            "4a10def6a7ed0c34ee0454aa9177aae7c5ad08271b725927d6d242dc18d35d94");
  EXPECT_EQ(to_hex(f.ch.evidence->document),
            "434d4c4d4f434b3100207b4e909bbe7ffe44c465a220037d608ee35897d31ef972f07f74892cb0f73f1320a1a1a1a1a1a1a1"
            "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a10105696d61676520948fe603f61dc036b5c596dc09fe3ce3f3"
            "d30dc90f024c85f3c82db2ccab679d");
  EXPECT_EQ(to_hex(encode_frame({MsgType::kHello, 0, 0, 0}, encode_client_hello(f.ch))),
            "cf4d05010000000000000000c101007b4e909bbe7ffe44c465a220037d608ee35897d31ef972f07f74892cb0f73f13a1a1a1"
            "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1004000000202010100000073434d4c4d4f434b3100"
            "207b4e909bbe7ffe44c465a220037d608ee35897d31ef972f07f74892cb0f73f1320a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1"
            "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a10105696d61676520948fe603f61dc036b5c596dc09fe3ce3f3d30dc90f024c85f3c8"
            "2db2ccab679d");
  const auto th = transcript_hash(f.ch, f.sh);
  EXPECT_EQ(to_hex(th), "694212cadefdfe06909ad37cf1ddec574bb5ad0fb5530e40943f95243b1235fd");
  auto ss = f.ki.derive(f.sh.public_key);
  NET_ASSERT_OK(ss);
  EXPECT_EQ(to_hex(ss->span()), "9e004098efc091d4ec2663b4e9f5cfd4d7064571690b4bea97ab146ab9f35056");
  auto ks = derive_key_schedule(ss->span(), th);
  NET_ASSERT_OK(ks);
  EXPECT_EQ(to_hex(ks->key_i2r.span()), "3dcaf995abf04ed15758fcd734327a750439e1e02418e97750c1f90b26b2bd00");
  EXPECT_EQ(to_hex(ks->key_r2i.span()), "f94e6b10140959eb4e674a422a463c11231ec198545be616faa593f5311e4d20");
  EXPECT_EQ(to_hex(ks->session_id), "60bf549b95cbb5d0695ad310883bed1769083c4cb8f3b06137d8b40474f95645");
  const Bytes m2 = encode_frame({MsgType::kHello, 0, kServerHelloSeq, 0}, encode_server_hello(f.sh));
  EXPECT_EQ(m2.size(), 203u);
  EXPECT_EQ(to_hex(crypto::sha256(m2)), "37161409ca1f029b200ed0620f4896f30ce42b301d2b1b766db8662842457d16");
  ServerFinished sf{compute_finished(ks->finished_resp, th)};
  EXPECT_EQ(to_hex(sf.finished), "6e7798b9274a16a6e5cceffabaef84b23e78d0a459eff4d5be9076d3f4109b61");
  EXPECT_EQ(to_hex(encode_frame({MsgType::kHello, 0, kServerFinishedSeq, 0}, encode_server_finished(sf))),
            "cf4d0501000000000200000021046e7798b9274a16a6e5cceffabaef84b23e78d0a459eff4d5be9076d3f4109b61");
  ClientFinished cf{compute_finished(ks->finished_init, th)};
  EXPECT_EQ(to_hex(encode_frame({MsgType::kHello, 0, kClientFinishedSeq, 0}, encode_client_finished(cf))),
            "cf4d0501000000000300000021039d4dacbcacc9b586c2fce3b82beed7484359712db44d9846d098875ff723ff0f");
  auto next = next_traffic_key(ks->key_i2r);
  NET_ASSERT_OK(next);
  EXPECT_EQ(to_hex(next->span()), "53b46217c1f93d49a71e97de5e59ff4ed30b1a0259e19ae1fcd5d683fd82dbf9");
}

TEST(HandshakeVectors, RecordsMatchIndependentComputation) {
  Fixed f;
  const auto th = transcript_hash(f.ch, f.sh);
  auto ks = derive_key_schedule(f.ki.derive(f.sh.public_key)->span(), th).value();
  auto pipe_a = make_pipe();
  auto& a = pipe_a.first;
  auto& b = pipe_a.second;
  ChannelConfig cfg;
  auto ch = SecureChannel::from_key_schedule_for_testing(std::move(a), cfg, true, std::move(ks), AeadSuite::kAes256Gcm,
                                                         4u << 20);
  auto wire = [&](size_t n) {
    Bytes got(n);
    EXPECT_TRUE(b->read_exact(got, testing::soon()).is_ok());
    return to_hex(got);
  };
  NET_ASSERT_OK(ch->send_data(as_bytes("hello"), testing::soon()));
  EXPECT_EQ(wire(13 + 21), "cf4d05020100000000000000153e989ba9e598ad6e015bad315bde5b5b3b0376d811");
  NET_ASSERT_OK(ch->send_end(testing::soon()));
  EXPECT_EQ(wire(13 + 19), "cf4d0502010000000100000013824cd531004bc69d2a01d03d2464184ef5a2b1");
  NET_ASSERT_OK(ch->update_key(testing::soon()));
  EXPECT_EQ(wire(13 + 16), "cf4d05080100000002000000109de2a64eba595615bab3cebebb711086");
  NET_ASSERT_OK(ch->send_data(as_bytes("after"), testing::soon()));
  EXPECT_EQ(wire(13 + 21), "cf4d05020100000003000000155360852ccf16473bf00ab3dff388f4f82ba6d48d27");
}

TEST(HandshakeMessages, RoundTrip) {
  Fixed f;
  auto ch = parse_client_hello(encode_client_hello(f.ch));
  NET_ASSERT_OK(ch);
  EXPECT_EQ(ch->public_key, f.ch.public_key);
  EXPECT_EQ(ch->nonce, f.ch.nonce);
  EXPECT_EQ(ch->suites, f.ch.suites);
  EXPECT_EQ(ch->max_record_payload, f.ch.max_record_payload);
  EXPECT_EQ(ch->evidence->document, f.ch.evidence->document);
  auto sh = parse_server_hello(encode_server_hello(f.sh));
  NET_ASSERT_OK(sh);
  EXPECT_EQ(sh->suite, f.sh.suite);
  EXPECT_EQ(sh->public_key, f.sh.public_key);
  EXPECT_EQ(sh->nonce, f.sh.nonce);
  EXPECT_EQ(sh->max_record_payload, f.sh.max_record_payload);
  EXPECT_EQ(sh->evidence.document, f.sh.evidence.document);
  // One-way ClientHello: no evidence.
  ClientHello one = f.ch;
  one.mode = HandshakeMode::kOneWay;
  one.evidence.reset();
  auto back = parse_client_hello(encode_client_hello(one));
  NET_ASSERT_OK(back);
  EXPECT_EQ(back->mode, HandshakeMode::kOneWay);
  EXPECT_FALSE(back->evidence.has_value());
  ServerFinished sf;
  sf.finished.fill(0x5C);
  EXPECT_EQ(to_hex(encode_server_finished(sf)), "04" + to_hex(sf.finished));
  EXPECT_EQ(parse_server_finished(encode_server_finished(sf))->finished, sf.finished);
  ClientFinished cf;
  cf.finished.fill(3);
  EXPECT_EQ(parse_client_finished(encode_client_finished(cf))->finished, cf.finished);
}

TEST(HandshakeMessages, EveryTruncationAndTrailingByteRejected) {
  Fixed f;
  const Bytes m1 = encode_client_hello(f.ch), m2 = encode_server_hello(f.sh);
  const Bytes m3 = encode_server_finished({}), m4 = encode_client_finished({});
  for (size_t n = 0; n < m1.size(); ++n) EXPECT_FALSE(parse_client_hello(ByteSpan(m1).first(n)).is_ok()) << n;
  for (size_t n = 0; n < m2.size(); ++n) EXPECT_FALSE(parse_server_hello(ByteSpan(m2).first(n)).is_ok()) << n;
  for (size_t n = 0; n < m3.size(); ++n) EXPECT_FALSE(parse_server_finished(ByteSpan(m3).first(n)).is_ok()) << n;
  for (size_t n = 0; n < m4.size(); ++n) EXPECT_FALSE(parse_client_finished(ByteSpan(m4).first(n)).is_ok()) << n;
  Bytes x = m1;
  x.push_back(0);
  EXPECT_EQ(parse_client_hello(x).status().code(), StatusCode::kInvalidArgument);
  x = m2;
  x.push_back(0);
  EXPECT_EQ(parse_server_hello(x).status().code(), StatusCode::kInvalidArgument);
  x = m3;
  x.push_back(0);
  EXPECT_EQ(parse_server_finished(x).status().code(), StatusCode::kInvalidArgument);
  x = m4;
  x.push_back(0);
  EXPECT_EQ(parse_client_finished(x).status().code(), StatusCode::kInvalidArgument);
}

TEST(HandshakeMessages, EachParserRefusesTheOtherMessages) {
  // The two Finished messages have the same shape; only the code tells them apart.
  Fixed f;
  const Bytes msgs[] = {encode_client_hello(f.ch), encode_server_hello(f.sh), encode_server_finished({}),
                        encode_client_finished({})};
  for (size_t i = 0; i < 4; ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(parse_client_hello(msgs[i]).is_ok(), i == 0);
    EXPECT_EQ(parse_server_hello(msgs[i]).is_ok(), i == 1);
    EXPECT_EQ(parse_server_finished(msgs[i]).is_ok(), i == 2);
    EXPECT_EQ(parse_client_finished(msgs[i]).is_ok(), i == 3);
  }
  NET_EXPECT_ERROR(parse_server_finished(msgs[3]), StatusCode::kProtocol, "expected ServerFinished, got code 3");
  NET_EXPECT_ERROR(parse_client_finished(msgs[2]), StatusCode::kProtocol, "expected ClientFinished, got code 4");
}

TEST(HandshakeMessages, FieldRules) {
  Fixed f;
  Bytes m = encode_client_hello(f.ch);
  // Layout: code(0) mode(1) pk(2..34) nonce(34..66) max(66..70) n(70) suites(71,72) type(73) len(74..78)
  Bytes x = m;
  x[0] = 2;
  NET_EXPECT_ERROR(parse_client_hello(x), StatusCode::kProtocol, "expected ClientHello");
  x = m;
  x[1] = 2;
  NET_EXPECT_ERROR(parse_client_hello(x), StatusCode::kProtocol, "unknown mode");
  x = m;
  x[1] = 1;  // one-way but carries evidence
  NET_EXPECT_ERROR(parse_client_hello(x), StatusCode::kProtocol, "evidence present in one-way");
  x = m;
  store_u32_be(x.data() + 66, 100);
  NET_EXPECT_ERROR(parse_client_hello(x), StatusCode::kProtocol, "max record payload");
  x = m;
  x[70] = 0;
  NET_EXPECT_ERROR(parse_client_hello(x), StatusCode::kProtocol, "offers 0 suites");
  x = m;
  x[72] = 9;
  NET_EXPECT_ERROR(parse_client_hello(x), StatusCode::kProtocol, "unknown AEAD suite");
  x = m;
  x[72] = x[71];
  NET_EXPECT_ERROR(parse_client_hello(x), StatusCode::kProtocol, "offered twice");
  x = m;
  x[73] = 9;
  NET_EXPECT_ERROR(parse_client_hello(x), StatusCode::kProtocol, "unknown evidence type");
  x = m;
  store_u32_be(x.data() + 74, 0xFFFFFFF0);
  NET_EXPECT_ERROR(parse_client_hello(x), StatusCode::kResourceExhausted, "exceeds the limit");
  x = m;
  store_u32_be(x.data() + 74, 0);
  NET_EXPECT_ERROR(parse_client_hello(x), StatusCode::kProtocol, "evidence missing");
}

TEST(Transcript, CoversEveryNegotiatedField) {
  Fixed f;
  const auto base = transcript_hash(f.ch, f.sh);
  auto differs = [&](auto mutate) {
    Fixed g;
    mutate(g);
    return transcript_hash(g.ch, g.sh) != base;
  };
  EXPECT_TRUE(differs([](Fixed& g) { g.ch.suites = {AeadSuite::kAes256Gcm}; }));  // downgrade of the offer
  EXPECT_TRUE(differs([](Fixed& g) { g.sh.suite = AeadSuite::kChaCha20Poly1305; }));
  EXPECT_TRUE(differs([](Fixed& g) { g.ch.nonce[0] ^= 1; }));
  EXPECT_TRUE(differs([](Fixed& g) { g.sh.nonce[31] ^= 1; }));
  EXPECT_TRUE(differs([](Fixed& g) { g.ch.max_record_payload = 8192; }));
  EXPECT_TRUE(differs([](Fixed& g) { g.sh.max_record_payload = 8192; }));
  EXPECT_TRUE(differs([](Fixed& g) { g.ch.evidence->document.back() ^= 1; }));
  EXPECT_TRUE(differs([](Fixed& g) { g.sh.evidence.document.back() ^= 1; }));
  EXPECT_TRUE(differs([](Fixed& g) { std::swap(g.ch.public_key, g.sh.public_key); }));  // roles are bound
  EXPECT_TRUE(differs([](Fixed& g) {
    g.ch.mode = HandshakeMode::kOneWay;
    g.ch.evidence.reset();
  }));
  EXPECT_FALSE(differs([](Fixed&) {}));
}

}  // namespace
}  // namespace cml::net
