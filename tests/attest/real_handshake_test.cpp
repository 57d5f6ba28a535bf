// Full SecureChannel handshakes (mutual, over the in-memory pipe) where each side's evidence is a document
// in a real format (Nitro COSE_Sign1, SEV-SNP report ‖ certificate table, TDX quote) signed by the test
// signer, and the peer checks it with the real verifier code trusting the test roots. Negative cases:
// wrong expected measurement, evidence bound to another key, and the pinned production roots.
#include <gtest/gtest.h>

#include <future>
#include <thread>

#include "attest/platform.h"
#include "attest/test_signer.h"
#include "crypto/random.h"
#include "net/secure_channel.h"
#include "net/stream.h"
#include "support/test_support.h"

namespace cml {
namespace {

using attest::EvidenceType;

std::shared_ptr<const attest::TestSigner> signer() {
  static auto s = [] {
    const WallTime now = Clock::system().now();
    auto r = attest::TestSigner::create(now - std::chrono::hours(24), now + std::chrono::hours(24));
    CML_CHECK(r.is_ok());
    return *r;
  }();
  return s;
}

// What the test signer's default documents measure (see TestNitroParams / TestSnpParams / TestTdxParams).
std::map<std::string, Bytes> default_measurements(EvidenceType t) {
  switch (t) {
    case EvidenceType::kNitro:
      return {{"pcr0", Bytes(48, 0x11)}, {"pcr1", Bytes(48, 0x22)}, {"pcr2", Bytes(48, 0x33)}};
    case EvidenceType::kSevSnp:
      return {{"measurement", Bytes(48, 0)}};
    case EvidenceType::kTdx:
      return {{"mrtd", Bytes(48, 0)}};
    case EvidenceType::kMock:
      break;
  }
  return {};
}

// Attests a fixed other public key instead of the handshake's key (a relay trying to reuse evidence).
class OtherKeyProvider final : public attest::Provider {
 public:
  explicit OtherKeyProvider(std::unique_ptr<attest::Provider> inner) : inner_(std::move(inner)) {
    other_key_ = Bytes(32, 0xA5);
  }
  EvidenceType type() const override { return inner_->type(); }
  Result<attest::Evidence> attest(ByteSpan, ByteSpan nonce) override { return inner_->attest(other_key_, nonce); }

 private:
  std::unique_ptr<attest::Provider> inner_;
  Bytes other_key_;
};

struct Side {
  attest::Provider* provider = nullptr;
  std::shared_ptr<const attest::VerifierSet> verifiers;
  attest::Policy policy;  // what this side requires of its peer
};

struct Outcome {
  Status client;
  Status server;
};

// Runs a mutual handshake and, when both sides succeed, one Data message each way.
Outcome handshake(const Side& client, const Side& server) {
  // No structured bindings here: clang 14 cannot capture them in lambdas.
  auto ends = net::make_pipe();
  auto a = std::move(ends.first);
  auto b = std::move(ends.second);
  auto config = [](const Side& s) {
    net::ChannelConfig c;
    c.provider = s.provider;
    c.verifiers = s.verifiers;
    c.peer_policy = s.policy;
    c.mode = net::HandshakeMode::kMutual;
    c.handshake_timeout = std::chrono::seconds(20);
    return c;
  };
  const net::ChannelConfig cc = config(client), sc = config(server);
  auto server_done = std::async(std::launch::async, [&, s = std::move(b)]() mutable {
    auto ch = net::SecureChannel::accept(std::move(s), sc);
    if (!ch.is_ok()) return ch.status();
    net::Message m;
    CML_RETURN_IF_ERROR((*ch)->recv(m, Deadline::after(std::chrono::seconds(20))));
    if (m.kind != net::Message::Kind::kData || m.data != to_bytes("ping")) return internal_error("bad message");
    return (*ch)->send_data(to_bytes("pong"), Deadline::after(std::chrono::seconds(20)));
  });
  Outcome out;
  out.client = [&]() -> Status {
    auto ch = net::SecureChannel::connect(std::move(a), cc);
    if (!ch.is_ok()) return ch.status();
    CML_RETURN_IF_ERROR((*ch)->send_data(to_bytes("ping"), Deadline::after(std::chrono::seconds(20))));
    net::Message m;
    CML_RETURN_IF_ERROR((*ch)->recv(m, Deadline::after(std::chrono::seconds(20))));
    if (m.kind != net::Message::Kind::kData || m.data != to_bytes("pong")) return internal_error("bad message");
    return ok_status();
  }();
  out.server = server_done.get();
  return out;
}

std::shared_ptr<const attest::VerifierSet> test_verifiers() {
  auto v = std::make_shared<attest::VerifierSet>();
  for (auto t : {EvidenceType::kNitro, EvidenceType::kSevSnp, EvidenceType::kTdx}) v->add(signer()->verifier(t));
  return v;
}

std::shared_ptr<const attest::VerifierSet> pinned_verifiers() {
  auto v = std::make_shared<attest::VerifierSet>();
  for (auto t : {EvidenceType::kNitro, EvidenceType::kSevSnp, EvidenceType::kTdx}) {
    auto p = attest::pinned_verifier(t);
    CML_CHECK(p.is_ok());
    v->add(*p);
  }
  return v;
}

attest::Policy policy_for(EvidenceType t) {
  attest::Policy p;
  p.allowed_types = {t};
  p.expected_measurements = default_measurements(t);
  return p;
}

class RealFormatHandshake : public ::testing::TestWithParam<EvidenceType> {};

TEST_P(RealFormatHandshake, MutualHandshakeThroughRealVerifiers) {
  auto cp = signer()->provider(GetParam());
  auto sp = signer()->provider(GetParam());
  const Side client{cp.get(), test_verifiers(), policy_for(GetParam())};
  const Side server{sp.get(), test_verifiers(), policy_for(GetParam())};
  Outcome o = handshake(client, server);
  EXPECT_TRUE(o.client.is_ok()) << o.client.to_string();
  EXPECT_TRUE(o.server.is_ok()) << o.server.to_string();
}

TEST_P(RealFormatHandshake, WrongExpectedMeasurementIsRefused) {
  auto cp = signer()->provider(GetParam());
  auto sp = signer()->provider(GetParam());
  attest::Policy wrong = policy_for(GetParam());
  auto& first = wrong.expected_measurements.begin()->second;
  first[0] ^= 0x01;
  // The client pins a measurement the server does not have.
  const Side client{cp.get(), test_verifiers(), wrong};
  const Side server{sp.get(), test_verifiers(), policy_for(GetParam())};
  Outcome o = handshake(client, server);
  ASSERT_FALSE(o.client.is_ok());
  EXPECT_EQ(o.client.code(), StatusCode::kPolicy) << o.client.to_string();
  EXPECT_FALSE(o.server.is_ok());
}

TEST_P(RealFormatHandshake, EvidenceBoundToAnotherKeyIsRefused) {
  auto cp = signer()->provider(GetParam());
  OtherKeyProvider sp(signer()->provider(GetParam()));
  const Side client{cp.get(), test_verifiers(), policy_for(GetParam())};
  const Side server{&sp, test_verifiers(), policy_for(GetParam())};
  Outcome o = handshake(client, server);
  ASSERT_FALSE(o.client.is_ok());
  EXPECT_EQ(o.client.code(), StatusCode::kAttestation) << o.client.to_string();
  EXPECT_FALSE(o.server.is_ok());
}

TEST_P(RealFormatHandshake, TestSignedEvidenceIsRefusedByPinnedRoots) {
  auto cp = signer()->provider(GetParam());
  auto sp = signer()->provider(GetParam());
  // The client trusts only the vendors' production roots.
  const Side client{cp.get(), pinned_verifiers(), policy_for(GetParam())};
  const Side server{sp.get(), test_verifiers(), policy_for(GetParam())};
  Outcome o = handshake(client, server);
  ASSERT_FALSE(o.client.is_ok());
  EXPECT_EQ(o.client.code(), StatusCode::kAttestation) << o.client.to_string();
  EXPECT_FALSE(o.server.is_ok());
}

TEST(RealFormatHandshakeMixed, EachSideInAnotherFormat) {
  // A Nitro client talking to a TDX server: each pins the other's type and measurements.
  auto cp = signer()->provider(EvidenceType::kNitro);
  auto sp = signer()->provider(EvidenceType::kTdx);
  const Side client{cp.get(), test_verifiers(), policy_for(EvidenceType::kTdx)};
  const Side server{sp.get(), test_verifiers(), policy_for(EvidenceType::kNitro)};
  Outcome o = handshake(client, server);
  EXPECT_TRUE(o.client.is_ok()) << o.client.to_string();
  EXPECT_TRUE(o.server.is_ok()) << o.server.to_string();
}

INSTANTIATE_TEST_SUITE_P(Formats, RealFormatHandshake,
                         ::testing::Values(EvidenceType::kNitro, EvidenceType::kSevSnp, EvidenceType::kTdx),
                         [](const ::testing::TestParamInfo<EvidenceType>& p) {
                           std::string n(attest::evidence_type_name(p.param));
                           for (auto& c : n)
                             if (c == '-') c = '_';
                           return n;
                         });

}  // namespace
}  // namespace cml
