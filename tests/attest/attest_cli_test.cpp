// `cml attest verify`: the function behind the command (attest/evidence_check.h) on real samples.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "attest/evidence_check.h"
#include "support/test_support.h"

namespace cml::attest {
namespace {

TEST(AttestCli, NitroBase64SampleVerifiesWithExpectations) {
  CML_TESTDATA_OR_SKIP(b64, "nitro/evervault_ga_2023-09-18.cose.b64");
  CML_TESTDATA_OR_SKIP(raw, "nitro/evervault_ga_2023-09-18.cose");
  EXPECT_EQ(load_evidence_file(b64).value(), cml::testing::read_testdata(raw));
  CheckRequest r;
  r.type = EvidenceType::kNitro;
  r.evidence_path = b64;
  r.at = parse_time("1695050165").value();
  r.expectations.push_back(parse_expectation("PCR0=" + std::string(96, '0')).value());
  CheckOutcome o = check_evidence(r);
  ASSERT_TRUE(o.ok) << o.reason;
  EXPECT_EQ(outcome_line(o).rfind("OK: nitro evidence verified", 0), 0u);
  auto j = nlohmann::json::parse(outcome_json(r, o));
  EXPECT_EQ(j["verdict"], "verified");
  EXPECT_EQ(j["claims"]["measurements"]["pcr0"], std::string(96, '0'));
  EXPECT_EQ(j["claims"]["nonce"].get<std::string>().size(), 512u);
  // A wrong expectation: one line naming it.
  r.expectations = {parse_expectation("pcr3=00").value()};
  o = check_evidence(r);
  EXPECT_FALSE(o.ok);
  EXPECT_EQ(o.failed_check, "expect");
  EXPECT_EQ(outcome_line(o).find('\n'), std::string::npos);
  EXPECT_NE(outcome_line(o).find("expectation pcr3 failed"), std::string::npos);
  // Outside the certificate window.
  r.expectations.clear();
  r.at = parse_time("2023-09-19T00:00:00Z").value();
  o = check_evidence(r);
  EXPECT_FALSE(o.ok);
  EXPECT_EQ(o.failed_check, "verify");
  EXPECT_NE(o.reason.find("expired"), std::string::npos);
}

TEST(AttestCli, SnpHexReportWithVcekAndChain) {
  CML_TESTDATA_OR_SKIP(hex, "sev-snp/virtee_milan_report.hex");
  CML_TESTDATA_OR_SKIP(vcek, "sev-snp/virtee_milan_vcek.der");
  CML_TESTDATA_OR_SKIP(chain, "sev-snp/ask_ark_milan.pem");
  CML_TESTDATA_OR_SKIP(foreign_root, "nitro/aws_nitro_enclaves_root_g1.pem");
  CheckRequest r;
  r.type = EvidenceType::kSevSnp;
  r.evidence_path = hex;
  r.vcek_path = vcek;
  r.cert_chain_path = chain;
  r.at = parse_time("2024-01-01T00:00:00Z").value();
  r.expectations.push_back(
      parse_expectation(
          "measurement="
          "7a1e5c266c0108dbc9bb94fa926951320940915d0aafb42464bd88b579ea158d3e1a0dc39b2c60bd95b9c480cd81841f")
          .value());
  CheckOutcome o = check_evidence(r);
  EXPECT_TRUE(o.ok) << o.reason;
  r.cert_chain_path = foreign_root;  // a self-signed root that is not an AMD ARK
  o = check_evidence(r);
  EXPECT_FALSE(o.ok);
  EXPECT_NE(o.reason.find("wrong root"), std::string::npos) << o.reason;
  r.cert_chain_path.clear();
  r.vcek_path.clear();
  o = check_evidence(r);
  EXPECT_FALSE(o.ok);
  EXPECT_NE(o.reason.find("no VCEK"), std::string::npos);
}

TEST(AttestCli, TdxWithPcsCollateralFilesAndBundle) {
  CML_TESTDATA_OR_SKIP(q, "tdx/dcapqvl_tdx_quote");
  CML_TESTDATA_OR_SKIP(bundle, "tdx/dcapqvl_tdx_quote_collateral.json");
  CheckRequest r;
  r.type = EvidenceType::kTdx;
  r.evidence_path = q;
  r.collateral_bundle_path = bundle;
  r.at = from_unix_seconds(1752919234);
  CheckOutcome o = check_evidence(r);
  ASSERT_TRUE(o.ok) << o.reason;
  EXPECT_EQ(o.claims->tcb_status, "UpToDate");
  auto j = nlohmann::json::parse(outcome_json(r, o));
  EXPECT_EQ(j["claims"]["tcb_status"], "UpToDate");
  CML_TESTDATA_OR_SKIP(v4, "tdx/gotdxguest_quote_v4_SPR_E4.dat");
  CML_TESTDATA_OR_SKIP(tcb, "tdx/gotdxguest_sample_tcbInfo_response");
  CML_TESTDATA_OR_SKIP(qe, "tdx/gotdxguest_sample_qeIdentity_response");
  CML_TESTDATA_OR_SKIP(chain, "tdx/gotdxguest_tcb_signing_chain_2018-2025.pem");
  CML_TESTDATA_OR_SKIP(pckcrl, "tdx/gotdxguest_pckcrl");
  CML_TESTDATA_OR_SKIP(rootcrl, "tdx/gotdxguest_rootcrl.der");
  CheckRequest g;
  g.type = EvidenceType::kTdx;
  g.evidence_path = v4;
  g.at = parse_time("2023-07-01T01:00:00Z").value();
  g.pck_crl_path = pckcrl;
  g.root_crl_path = rootcrl;
  EXPECT_TRUE(check_evidence(g).ok) << check_evidence(g).reason;
  g.tcb_info_path = tcb;
  EXPECT_EQ(check_evidence(g).failed_check, "input");  // the three PCS files go together
  g.qe_identity_path = qe;
  g.tcb_signing_chain_path = chain;
  o = check_evidence(g);
  EXPECT_FALSE(o.ok);
  EXPECT_NE(o.reason.find("TCB not supported"), std::string::npos) << o.reason;
}

TEST(AttestCli, BadInputs) {
  EXPECT_FALSE(parse_expectation("pcr0").is_ok());
  EXPECT_FALSE(parse_expectation("pcr0=zz").is_ok());
  CheckRequest r;
  r.type = EvidenceType::kNitro;
  r.evidence_path = "/nonexistent/evidence";
  CheckOutcome o = check_evidence(r);
  EXPECT_FALSE(o.ok);
  EXPECT_EQ(o.failed_check, "input");
}

}  // namespace
}  // namespace cml::attest
