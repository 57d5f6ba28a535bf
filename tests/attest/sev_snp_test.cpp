#include "attest/sev_snp.h"

#include <gtest/gtest.h>

#include "support/test_support.h"

namespace cml::attest {
namespace {

using cml::testing::read_testdata;

WallTime t(std::string_view s) {
  return parse_time(s).value();
}

struct Sample {
  std::string report, vek;
  std::string at;
};
// Pinned times inside each endorsement certificate's validity (sev-snp/SOURCES.md).
const Sample kGoSevGuest{"sev-snp/gosevguest_milan_report.bin", "sev-snp/gosevguest_milan_vcek.der",
                         "2022-09-24T01:00:00Z"};
const Sample kVirtee{"sev-snp/virtee_milan_report.bin", "sev-snp/virtee_milan_vcek.der", "2024-01-01T00:00:00Z"};
const Sample kTrusteeVlek{"sev-snp/trustee_test-vlek-report.bin", "sev-snp/trustee_test-vlek.der",
                          "2025-06-01T00:00:00Z"};

// Document = report ‖ certificate table carrying the VEK (the handshake wire format).
Bytes document_for(const Sample& s, bool vlek = false) {
  auto rp = cml::testing::testdata_path(s.report);
  auto vp = cml::testing::testdata_path(s.vek);
  if (!rp || !vp) return {};
  SnpCertTable table;
  (vlek ? table.vlek : table.vcek) = read_testdata(*vp);
  return make_snp_document(read_testdata(*rp), table);
}

#define SNP_SAMPLE_OR_SKIP(s)            \
  CML_TESTDATA_OR_SKIP(rp_, (s).report); \
  CML_TESTDATA_OR_SKIP(vp_, (s).vek)

TEST(SevSnp, GoSevGuestMilanReportVerifies) {
  SNP_SAMPLE_OR_SKIP(kGoSevGuest);
  auto c = SnpVerifier().verify(document_for(kGoSevGuest), t(kGoSevGuest.at));
  CML_ASSERT_OK(c);
  EXPECT_EQ(to_hex(c->measurements.at("measurement")),
            "b07af9620f3b839b47996422ddec6058338951d984e312115131ea82705eaf5b6bdf8a9ece31a5a608eb0cf2e4872b01");
  EXPECT_EQ(to_hex(c->report_data).substr(0, 10), "0102030405");
  EXPECT_EQ(c->details.at("product"), "Milan");
  EXPECT_EQ(c->details.at("reported_tcb_text"), "bl=2 tee=0 snp=5 ucode=68");
  EXPECT_EQ(c->details.at("vmpl"), "0");
  EXPECT_TRUE(c->debug);  // policy 0xb0000 has DEBUG (bit 19) set
  EXPECT_TRUE(c->nonce.empty());
}

TEST(SevSnp, VirteeMilanReportVerifiesAndIsNotDebug) {
  SNP_SAMPLE_OR_SKIP(kVirtee);
  auto c = SnpVerifier().verify(document_for(kVirtee), t(kVirtee.at));
  CML_ASSERT_OK(c);
  EXPECT_FALSE(c->debug);  // policy 0x30000
  EXPECT_EQ(to_hex(c->measurements.at("measurement")).substr(0, 12), "7a1e5c266c01");
  EXPECT_EQ(to_hex(c->report_data).substr(0, 8), "d447b55d");
  EXPECT_EQ(c->public_key.size(), 32u);
  EXPECT_EQ(c->nonce.size(), 32u);
  EXPECT_TRUE(appraise_snp(*c, SnpPolicy{}).is_ok());
}

TEST(SevSnp, VlekReportVersion3Verifies) {
  SNP_SAMPLE_OR_SKIP(kTrusteeVlek);
  auto c = SnpVerifier().verify(document_for(kTrusteeVlek, true), t(kTrusteeVlek.at));
  CML_ASSERT_OK(c);
  EXPECT_EQ(c->details.at("signing_key"), "VLEK");
  EXPECT_EQ(c->details.at("version"), "3");
  EXPECT_EQ(to_hex(c->report_data).substr(0, 8), "819770b7");
  // VMPL 1: refused by the default SNP policy (VMPL 0 required), accepted when configured.
  Status s = appraise_snp(*c, SnpPolicy{});
  EXPECT_EQ(s.code(), StatusCode::kPolicy);
  EXPECT_NE(s.message().find("VMPL 1"), std::string::npos);
  SnpPolicy p;
  p.required_vmpl = 1;
  EXPECT_TRUE(appraise_snp(*c, p).is_ok());
}

TEST(SevSnp, BareReportWithConfiguredVcek) {
  SNP_SAMPLE_OR_SKIP(kVirtee);
  SnpVerifierOptions o;
  o.vek = crypto::Certificate::from_der(read_testdata(vp_)).value();
  CML_EXPECT_OK(SnpVerifier(o).verify(read_testdata(rp_), t(kVirtee.at)));
  auto none = SnpVerifier().verify(read_testdata(rp_), t(kVirtee.at));
  ASSERT_FALSE(none.is_ok());
  EXPECT_NE(none.status().message().find("no VCEK"), std::string::npos);
}

TEST(SevSnp, FailsOutsideCertificateValidity) {
  SNP_SAMPLE_OR_SKIP(kTrusteeVlek);
  auto c = SnpVerifier().verify(document_for(kTrusteeVlek, true), t("2026-01-01T00:00:00Z"));  // VLEK expired
  ASSERT_FALSE(c.is_ok());
  EXPECT_NE(c.status().message().find("expired"), std::string::npos) << c.status().message();
  auto early = SnpVerifier().verify(document_for(kVirtee), t("2023-01-01T00:00:00Z"));
  ASSERT_FALSE(early.is_ok());
  EXPECT_NE(early.status().message().find("not yet valid"), std::string::npos) << early.status().message();
}

TEST(SevSnp, FlippedBitsFailWithTheRightReason) {
  SNP_SAMPLE_OR_SKIP(kVirtee);
  const Bytes doc = document_for(kVirtee);
  auto check = [&](size_t off, std::string_view want) {
    Bytes d = doc;
    d[off] ^= 0x01;
    auto c = SnpVerifier().verify(d, t(kVirtee.at));
    ASSERT_FALSE(c.is_ok()) << off;
    EXPECT_NE(c.status().message().find(want), std::string::npos) << off << ": " << c.status().message();
  };
  check(0x90, "report signature does not verify");       // measurement (signed body)
  check(0x50, "report signature does not verify");       // report data
  check(0x2A0 + 5, "report signature does not verify");  // signature r
  check(0x2E8 + 5, "report signature does not verify");  // signature s
  const Bytes vcek = read_testdata(vp_);
  const size_t cert_off = doc.size() - vcek.size();
  check(cert_off + vcek.size() - 5, "signature of certificate");  // VCEK signature value
  check(0x180, "report signature does not verify");               // reported_tcb is signed too
}

TEST(SevSnp, InvalidVceksAreRefused) {
  SNP_SAMPLE_OR_SKIP(kVirtee);
  for (const char* name :
       {"sev-snp/trustee_test-vcek-invalid-legacy.der", "sev-snp/trustee_test-vcek-invalid-new.der"}) {
    CML_TESTDATA_OR_SKIP(bad, name);
    SnpCertTable table;
    table.vcek = read_testdata(bad);
    Bytes doc = make_snp_document(read_testdata(rp_), table);
    for (const char* when : {"2024-01-01T00:00:00Z", "2025-06-01T00:00:00Z"}) {
      auto c = SnpVerifier().verify(doc, t(when));
      ASSERT_FALSE(c.is_ok()) << name;
      EXPECT_EQ(c.status().code(), StatusCode::kAttestation) << c.status().to_string();
    }
  }
}

TEST(SevSnp, WrongVcekAndWrongRootAreRefused) {
  SNP_SAMPLE_OR_SKIP(kVirtee);
  CML_TESTDATA_OR_SKIP(other, "sev-snp/gosevguest_milan_vcek.der");
  SnpCertTable table;
  table.vcek = read_testdata(other);
  auto c = SnpVerifier().verify(make_snp_document(read_testdata(rp_), table), t(kVirtee.at));
  ASSERT_FALSE(c.is_ok());
  EXPECT_NE(c.status().message().find("report signature does not verify"), std::string::npos);
  // Trusting only the Turin ARK: the Milan chain has no trusted root.
  CML_TESTDATA_OR_SKIP(turin, "sev-snp/ask_ark_turin_vcek.pem");
  SnpVerifierOptions o;
  o.arks = {crypto::Certificate::parse_any(read_testdata(turin)).value()[1]};
  auto w = SnpVerifier(o).verify(document_for(kVirtee), t(kVirtee.at));
  ASSERT_FALSE(w.is_ok());
  EXPECT_NE(w.status().message().find("trusted root"), std::string::npos) << w.status().message();
  // A foreign ARK inside the certificate table.
  SnpCertTable forged;
  forged.vcek = read_testdata(vp_);
  forged.ark = read_testdata(other);
  auto f = SnpVerifier().verify(make_snp_document(read_testdata(rp_), forged), t(kVirtee.at));
  ASSERT_FALSE(f.is_ok());
  EXPECT_NE(f.status().message().find("wrong root"), std::string::npos);
}

TEST(SevSnp, DebugPolicyRefusedByAppraisalNotCrypto) {
  SNP_SAMPLE_OR_SKIP(kGoSevGuest);
  auto c = SnpVerifier().verify(document_for(kGoSevGuest), t(kGoSevGuest.at));
  CML_ASSERT_OK(c);
  Policy p;
  p.expected_measurements["measurement"] = c->measurements.at("measurement");
  Status s = appraise(*c, p, t(kGoSevGuest.at));
  EXPECT_EQ(s.code(), StatusCode::kPolicy);
  EXPECT_NE(s.message().find("debug"), std::string::npos);
  p.expected_measurements["measurement"][0] ^= 1;
  p.allow_debug = true;
  EXPECT_NE(appraise(*c, p, t(kGoSevGuest.at)).message().find("measurement mismatch"), std::string::npos);
}

TEST(SevSnp, MinimumTcbAndPolicyBits) {
  SNP_SAMPLE_OR_SKIP(kVirtee);
  auto c = SnpVerifier().verify(document_for(kVirtee), t(kVirtee.at));
  CML_ASSERT_OK(c);
  SnpPolicy p;
  p.min_tcb = SnpTcb{0, 3, 0, 8, 115};  // equal to the reported TCB (0x7308000000000003)
  EXPECT_TRUE(appraise_snp(*c, p).is_ok()) << appraise_snp(*c, p).message();
  p.min_tcb->microcode = 116;
  EXPECT_NE(appraise_snp(*c, p).message().find("below the minimum"), std::string::npos);
  SnpPolicy nosmt;
  nosmt.allow_smt = false;
  EXPECT_NE(appraise_snp(*c, nosmt).message().find("SMT"), std::string::npos);
}

TEST(SevSnp, AppraisalOfHandMadeClaimsFailsClosed) {
  Claims c;
  c.type = EvidenceType::kSevSnp;
  c.details["vmpl"] = "not a number";
  EXPECT_NE(appraise_snp(c, SnpPolicy{}).message().find("host"), std::string::npos);
  c.type = EvidenceType::kTdx;
  EXPECT_EQ(appraise_snp(c, SnpPolicy{}).code(), StatusCode::kPolicy);
}

TEST(SevSnp, KeyNotBoundIsCaught) {
  SNP_SAMPLE_OR_SKIP(kVirtee);
  auto c = SnpVerifier().verify(document_for(kVirtee), t(kVirtee.at));
  CML_ASSERT_OK(c);
  EXPECT_TRUE(check_binding(*c, c->public_key, c->nonce).is_ok());
  Bytes other_key(32, 7);
  EXPECT_EQ(check_binding(*c, other_key, c->nonce).code(), StatusCode::kAttestation);
}

TEST(SevSnp, ReportAndTableParsersAreBounded) {
  EXPECT_FALSE(parse_snp_report(Bytes(1183)).is_ok());
  EXPECT_FALSE(parse_snp_report(Bytes(1185)).is_ok());
  // An entry pointing past the table.
  ByteWriter w;
  w.bytes(Bytes{0x63, 0xda, 0x75, 0x8d, 0xe6, 0x64, 0x45, 0x64, 0xad, 0xc5, 0xf4, 0xb9, 0x3b, 0xe8, 0xac, 0xcd});
  w.u32_le(48);
  w.u32_le(0xffffffff);
  w.zeros(24);
  EXPECT_FALSE(parse_snp_cert_table(w.data()).is_ok());
  EXPECT_FALSE(parse_snp_cert_table(Bytes(10)).is_ok());  // no terminator
  SnpCertTable tbl;
  tbl.vcek = Bytes{1, 2, 3};
  tbl.ask = Bytes{4, 5};
  auto back = parse_snp_cert_table(encode_snp_cert_table(tbl));
  CML_ASSERT_OK(back);
  EXPECT_EQ(*back->vcek, *tbl.vcek);
  EXPECT_EQ(*back->ask, *tbl.ask);
}

}  // namespace
}  // namespace cml::attest
