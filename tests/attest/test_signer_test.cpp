// End to end through the real parsers and verifiers, with documents signed by the test backend.
#include "attest/test_signer.h"

#include <gtest/gtest.h>

#include "crypto/random.h"
#include "support/test_support.h"

namespace cml::attest {
namespace {

class TestSignerE2E : public ::testing::TestWithParam<EvidenceType> {
 protected:
  static void SetUpTestSuite() {
    const WallTime now = Clock::system().now();
    signer_ = TestSigner::create(now - std::chrono::hours(1), now + std::chrono::hours(24)).value();
  }
  static std::shared_ptr<const TestSigner> signer_;
};
std::shared_ptr<const TestSigner> TestSignerE2E::signer_;

TEST_P(TestSignerE2E, ProviderEvidenceVerifiesBindsAndAppraises) {
  const EvidenceType type = GetParam();
  Bytes pk(32), nonce(32);
  for (size_t i = 0; i < 32; ++i) pk[i] = uint8_t(i + 1), nonce[i] = uint8_t(0xa0 + i);
  auto provider = signer_->provider(type);
  auto ev = provider->attest(pk, nonce);
  CML_ASSERT_OK(ev);
  VerifierSet set;
  set.add(signer_->verifier(type));
  const WallTime now = Clock::system().now();
  auto claims = set.verify(*ev, now);
  CML_ASSERT_OK(claims);
  EXPECT_EQ(claims->type, type);
  EXPECT_EQ(claims->document_hash, crypto::sha256(ev->document));
  EXPECT_TRUE(check_binding(*claims, pk, nonce).is_ok());
  Bytes other = nonce;
  other[0] ^= 1;
  EXPECT_EQ(check_binding(*claims, pk, other).code(), StatusCode::kAttestation);
  EXPECT_EQ(check_binding(*claims, other, nonce).code(), StatusCode::kAttestation);
  // Pin a measurement the document really carries, then a wrong one.
  Policy policy;
  const auto& [name, value] = *claims->measurements.begin();
  policy.expected_measurements[name] = value;
  EXPECT_TRUE(appraise(*claims, policy, now).is_ok()) << appraise(*claims, policy, now).message();
  policy.expected_measurements[name][0] ^= 1;
  EXPECT_EQ(appraise(*claims, policy, now).code(), StatusCode::kPolicy);
  // The pinned vendor roots refuse test documents.
  std::shared_ptr<const Verifier> production;
  if (type == EvidenceType::kNitro) production = std::make_shared<NitroVerifier>();
  if (type == EvidenceType::kSevSnp) production = std::make_shared<SnpVerifier>();
  if (type == EvidenceType::kTdx) production = std::make_shared<TdxVerifier>();
  auto refused = production->verify(ev->document, now);
  ASSERT_FALSE(refused.is_ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kAttestation);
  // Any single flipped bit in the signed part is refused.
  for (size_t off : {size_t(40), ev->document.size() / 4, size_t(700)}) {
    Bytes d = ev->document;
    d[off] ^= 0x04;
    EXPECT_FALSE(signer_->verifier(type)->verify(d, now).is_ok()) << off;
  }
}

INSTANTIATE_TEST_SUITE_P(AllFormats, TestSignerE2E,
                         ::testing::Values(EvidenceType::kNitro, EvidenceType::kSevSnp, EvidenceType::kTdx),
                         [](const auto& info) {
                           std::string n(evidence_type_name(info.param));
                           n.erase(std::remove(n.begin(), n.end(), '-'), n.end());
                           return n;
                         });

class TestSignerFormats : public ::testing::Test {
 protected:
  void SetUp() override {
    now_ = Clock::system().now();
    signer_ = TestSigner::create(now_ - std::chrono::hours(1), now_ + std::chrono::hours(24)).value();
    rd_.fill(0x42);
  }
  WallTime now_;
  std::shared_ptr<const TestSigner> signer_;
  std::array<uint8_t, 64> rd_{};
};

TEST_F(TestSignerFormats, NitroUntaggedAndDebugPcrs) {
  TestNitroParams p;
  p.tagged = false;
  p.pcrs = {{0, Bytes(48, 0)}, {1, Bytes(48, 0)}, {2, Bytes(48, 0)}};
  auto doc = signer_->nitro_document(Bytes(32, 1), Bytes(32, 2), p);
  CML_ASSERT_OK(doc);
  auto c = NitroVerifier(signer_->nitro_options()).verify(*doc, now_);
  CML_ASSERT_OK(c);
  EXPECT_TRUE(c->debug);
  Policy pol;
  pol.expected_measurements["pcr0"] = Bytes(48, 0);
  EXPECT_NE(appraise(*c, pol, now_).message().find("debug"), std::string::npos);
  // Freshness: a document from the future, and one older than max_age.
  TestNitroParams future;
  future.timestamp = now_ + std::chrono::minutes(10);
  auto f = NitroVerifier(signer_->nitro_options()).verify(signer_->nitro_document({}, {}, future).value(), now_);
  ASSERT_FALSE(f.is_ok());
  EXPECT_NE(f.status().message().find("future"), std::string::npos) << f.status().message();
  NitroVerifierOptions o = signer_->nitro_options();
  o.max_age = std::chrono::seconds(60);
  TestNitroParams old;
  old.timestamp = now_ - std::chrono::minutes(5);
  auto a = NitroVerifier(o).verify(signer_->nitro_document({}, {}, old).value(), now_);
  ASSERT_FALSE(a.is_ok());
  EXPECT_NE(a.status().message().find("older"), std::string::npos);
}

TEST_F(TestSignerFormats, SnpPolicyBitsAndTcbBinding) {
  TestSnpParams p;
  p.policy = 0x30000 | (1u << 19) | (1u << 18);  // debug + migration agent
  p.vmpl = 2;
  auto doc = signer_->snp_document(rd_, p);
  CML_ASSERT_OK(doc);
  auto c = SnpVerifier(signer_->snp_options()).verify(*doc, now_);
  CML_ASSERT_OK(c);
  EXPECT_TRUE(c->debug);
  EXPECT_NE(appraise_snp(*c, SnpPolicy{}).message().find("VMPL 2"), std::string::npos);
  SnpPolicy sp;
  sp.required_vmpl = 2;
  EXPECT_NE(appraise_snp(*c, sp).message().find("migration"), std::string::npos);
  // Report TCB differs from the VCEK's: patch the reported TCB and re-sign is impossible without the key, so
  // build a document whose VCEK was issued for another TCB and swap it in.
  TestSnpParams other;
  other.tcb.microcode = 200;
  auto doc2 = signer_->snp_document(rd_, other).value();
  Bytes mixed(doc->begin(), doc->begin() + kSnpReportSize);
  mixed.insert(mixed.end(), doc2.begin() + kSnpReportSize, doc2.end());
  auto m = SnpVerifier(signer_->snp_options()).verify(mixed, now_);
  EXPECT_FALSE(m.is_ok());
  // Without the certificate chain the bundled AMD intermediates do not help a test VCEK.
  TestSnpParams bare;
  bare.include_chain = false;
  EXPECT_FALSE(SnpVerifier(signer_->snp_options()).verify(signer_->snp_document(rd_, bare).value(), now_).is_ok());
}

TEST_F(TestSignerFormats, SnpCrlRevocationAndStaleness) {
  auto doc = signer_->snp_document(rd_);
  CML_ASSERT_OK(doc);
  auto with = [&](Result<crypto::Crl> crl) {
    SnpVerifierOptions o = signer_->snp_options();
    o.crls.push_back(crl.value());
    return SnpVerifier(o).verify(*doc, now_);
  };
  CML_EXPECT_OK(with(signer_->snp_crl(false, now_ - std::chrono::hours(1), now_ + std::chrono::hours(1))));
  auto revoked = with(signer_->snp_crl(true, now_ - std::chrono::hours(1), now_ + std::chrono::hours(1)));
  ASSERT_FALSE(revoked.is_ok());
  EXPECT_NE(revoked.status().message().find("revoked"), std::string::npos) << revoked.status().message();
  auto stale = with(signer_->snp_crl(false, now_ - std::chrono::hours(3), now_ - std::chrono::hours(2)));
  ASSERT_FALSE(stale.is_ok());
  EXPECT_NE(stale.status().message().find("stale"), std::string::npos);
}

TEST_F(TestSignerFormats, TdxCollateralStatusesAndAdvisories) {
  const TestTcbLevel plat = TestSigner::platform_tcb();
  auto quote = signer_->tdx_quote(rd_);
  CML_ASSERT_OK(quote);
  auto verify_with = [&](std::vector<TestTcbLevel> levels, uint16_t qe_min = 0) {
    TdxVerifierOptions o = signer_->tdx_options();
    o.collateral =
        signer_->tdx_collateral(levels, now_ - std::chrono::hours(1), now_ + std::chrono::hours(1), qe_min).value();
    return TdxVerifier(o).verify(*quote, now_);
  };
  TestTcbLevel newer = plat;
  newer.sgx[0] += 1;
  newer.status = "UpToDate";
  TestTcbLevel same = plat;
  same.status = "SWHardeningNeeded";
  same.advisories = {"INTEL-SA-00615", "INTEL-SA-00289"};
  TestTcbLevel older = plat;
  older.tdx[2] -= 1;
  older.status = "OutOfDate";
  older.advisories = {"INTEL-SA-00837"};

  auto a = verify_with({newer, same, older});
  CML_ASSERT_OK(a);
  EXPECT_EQ(a->tcb_status, "SWHardeningNeeded");
  EXPECT_EQ(a->advisories, (std::vector<std::string>{"INTEL-SA-00289", "INTEL-SA-00615"}));
  Policy pol;
  pol.expected_measurements["mrtd"] = a->measurements.at("mrtd");
  EXPECT_EQ(appraise(*a, pol, now_).code(), StatusCode::kPolicy);
  pol.accepted_tcb_statuses = {"UpToDate", "SWHardeningNeeded"};
  EXPECT_TRUE(appraise(*a, pol, now_).is_ok());

  TestTcbLevel exact = plat;
  exact.status = "UpToDate";
  auto b = verify_with({exact});
  CML_ASSERT_OK(b);
  EXPECT_EQ(b->tcb_status, "UpToDate");

  TestTcbLevel cfg = plat;
  cfg.status = "ConfigurationNeeded";
  auto qe_old = verify_with({cfg}, /*qe_min=*/200);  // QE ISVSVN below every QE identity level
  CML_ASSERT_OK(qe_old);
  EXPECT_EQ(qe_old->tcb_status, "OutOfDateConfigurationNeeded");

  auto none = verify_with({newer});
  ASSERT_FALSE(none.is_ok());
  EXPECT_NE(none.status().message().find("TCB not supported"), std::string::npos);

  TdxVerifierOptions stale = signer_->tdx_options();
  stale.collateral =
      signer_->tdx_collateral({exact}, now_ - std::chrono::hours(48), now_ - std::chrono::hours(24)).value();
  auto s = TdxVerifier(stale).verify(*quote, now_);
  ASSERT_FALSE(s.is_ok());
  EXPECT_NE(s.status().message().find("stale"), std::string::npos);
}

TEST_F(TestSignerFormats, TdxV5AndDebugAttribute) {
  TestTdxParams p;
  p.version = 5;
  p.td_attributes = 1;
  auto q = signer_->tdx_quote(rd_, p);
  CML_ASSERT_OK(q);
  auto c = TdxVerifier(signer_->tdx_options()).verify(*q, now_);
  CML_ASSERT_OK(c);
  EXPECT_EQ(c->details.at("version"), "5");
  EXPECT_TRUE(c->debug);
  Policy pol;
  pol.expected_measurements["mrtd"] = c->measurements.at("mrtd");
  EXPECT_NE(appraise(*c, pol, now_).message().find("debug"), std::string::npos);
}

TEST_F(TestSignerFormats, ExpiredTestPkiFails) {
  auto doc = signer_->nitro_document(Bytes(32, 1), Bytes(32, 2));
  CML_ASSERT_OK(doc);
  auto c = NitroVerifier(signer_->nitro_options()).verify(*doc, now_ + std::chrono::hours(48));
  ASSERT_FALSE(c.is_ok());
  EXPECT_NE(c.status().message().find("expired"), std::string::npos);
}

}  // namespace
}  // namespace cml::attest
