#include "attest/tdx.h"

#include <gtest/gtest.h>

#include "support/test_support.h"

namespace cml::attest {
namespace {

using cml::testing::read_testdata;

WallTime t(std::string_view s) {
  return parse_time(s).value();
}
std::string text(const std::string& path) {
  Bytes b = read_testdata(path);
  return std::string(b.begin(), b.end());
}

// Pinned times (tdx/SOURCES.md).
constexpr int64_t kDcapTdxTime = 1752919234;       // dcapqvl_tdx_quote
constexpr int64_t kDcapOutdatedTime = 1774003274;  // dcapqvl_tdx_quote_outdated
const char* kGoV4Time = "2023-07-01T01:00:00Z";
const char* kGoV5Time = "2026-02-03T01:00:00Z";

TdxVerifierOptions with_bundle(const std::string& path) {
  auto o = options_from_bundle(text(path));
  EXPECT_TRUE(o.is_ok()) << o.status().to_string();
  return o.is_ok() ? *o : TdxVerifierOptions{};
}

std::vector<crypto::Crl> gotdx_crls() {
  return {crypto::Crl::parse_any(read_testdata(*cml::testing::testdata_path("tdx/gotdxguest_pckcrl"))).value(),
          crypto::Crl::parse_any(read_testdata(*cml::testing::testdata_path("tdx/gotdxguest_rootcrl.der"))).value()};
}

TdxVerifierOptions with_gotdx_collateral(bool crls) {
  TdxVerifierOptions o;
  auto tcb = cml::testing::testdata_path("tdx/gotdxguest_sample_tcbInfo_response");
  auto qe = cml::testing::testdata_path("tdx/gotdxguest_sample_qeIdentity_response");
  auto chain = cml::testing::testdata_path("tdx/gotdxguest_tcb_signing_chain_2018-2025.pem");
  auto c = collateral_from_pcs(text(*tcb), text(*qe), text(*chain));
  EXPECT_TRUE(c.is_ok()) << c.status().to_string();
  if (crls) o.crls = gotdx_crls();
  o.collateral = std::move(*c);
  return o;
}

TEST(Tdx, DcapQvlV4QuoteUpToDateWithCollateral) {
  CML_TESTDATA_OR_SKIP(q, "tdx/dcapqvl_tdx_quote");
  CML_TESTDATA_OR_SKIP(col, "tdx/dcapqvl_tdx_quote_collateral.json");
  auto c = TdxVerifier(with_bundle(col)).verify(read_testdata(q), from_unix_seconds(kDcapTdxTime));
  CML_ASSERT_OK(c);
  EXPECT_EQ(c->tcb_status, "UpToDate");
  EXPECT_TRUE(c->advisories.empty());
  EXPECT_EQ(to_hex(c->measurements.at("mrtd")).substr(0, 8), "91eb2b44");
  EXPECT_EQ(to_hex(c->report_data).substr(0, 8), "9a9d48e7");
  EXPECT_EQ(c->details.at("fmspc"), "b0c06f000000");
  EXPECT_EQ(c->details.at("version"), "4");
}

// The PCK certificate's SGX TCB (component 8 = 3) is below every level of this TCB info (which all need 5):
// no level matches, so the quote is not UpToDate by itself (dcap-qvl needs a forced override to accept it).
TEST(Tdx, DcapQvlV5OutdatedQuoteMatchesNoTcbLevel) {
  CML_TESTDATA_OR_SKIP(q, "tdx/dcapqvl_tdx_quote_outdated");
  CML_TESTDATA_OR_SKIP(col, "tdx/dcapqvl_tdx_quote_outdated_collateral.json");
  const Bytes doc = read_testdata(q);
  auto plain = TdxVerifier().verify(doc, from_unix_seconds(kDcapOutdatedTime));  // authenticates without collateral
  CML_ASSERT_OK(plain);
  EXPECT_EQ(plain->details.at("version"), "5");
  EXPECT_EQ(plain->details.at("fmspc"), "90c06f000000");
  auto c = TdxVerifier(with_bundle(col)).verify(doc, from_unix_seconds(kDcapOutdatedTime));
  ASSERT_FALSE(c.is_ok());
  EXPECT_NE(c.status().message().find("TCB not supported"), std::string::npos) << c.status().message();
}

TEST(Tdx, GoTdxGuestV4WithCrlsAndPcsCollateral) {
  CML_TESTDATA_OR_SKIP(q, "tdx/gotdxguest_quote_v4_SPR_E4.dat");
  TdxVerifierOptions crl_only;
  crl_only.crls = gotdx_crls();
  auto c = TdxVerifier(crl_only).verify(read_testdata(q), t(kGoV4Time));
  CML_ASSERT_OK(c);
  EXPECT_EQ(to_hex(c->measurements.at("mrtd")).substr(0, 8), "6363b804");
  EXPECT_EQ(to_hex(c->report_data).substr(0, 8), "6c62dec1");
  EXPECT_EQ(c->details.at("fmspc"), "50806f000000");
  EXPECT_EQ(c->details.at("trailing_bytes"), "39");
  // Collateral signatures verify, but the platform (PCK CPUSVN 03030202020100020…, TEE_TCB_SVN[2] = 4) is
  // below both TCB levels of this (trimmed) TCB info sample.
  auto full = TdxVerifier(with_gotdx_collateral(true)).verify(read_testdata(q), t(kGoV4Time));
  ASSERT_FALSE(full.is_ok());
  EXPECT_NE(full.status().message().find("TCB not supported"), std::string::npos) << full.status().message();
}

TEST(Tdx, GoTdxGuestV5AndCcelQuotesVerifyWithoutCollateral) {
  CML_TESTDATA_OR_SKIP(v5, "tdx/gotdxguest_quote_v5.dat");
  auto c = TdxVerifier().verify(read_testdata(v5), t(kGoV5Time));
  CML_ASSERT_OK(c);
  EXPECT_EQ(c->details.at("version"), "5");
  EXPECT_TRUE(c->tcb_status.empty());
  CML_TESTDATA_OR_SKIP(ccel, "tdx/gotdxguest_ccel/cos-113-tdx-quote.dat");
  auto cc = TdxVerifier().verify(read_testdata(ccel), t("2025-01-01T00:00:00Z"));
  CML_ASSERT_OK(cc);
  EXPECT_TRUE(cc->public_key.empty());  // report data all zero: nothing bound
  EXPECT_EQ(check_binding(*cc, Bytes(32, 1), Bytes(32, 2)).code(), StatusCode::kAttestation);
  TdxVerifierOptions strict;
  strict.require_collateral = true;
  EXPECT_FALSE(TdxVerifier(strict).verify(read_testdata(v5), t(kGoV5Time)).is_ok());
}

TEST(Tdx, FailsOutsideValidityAndWithStaleCollateral) {
  CML_TESTDATA_OR_SKIP(q, "tdx/gotdxguest_quote_v4_SPR_E4.dat");
  auto future = TdxVerifier().verify(read_testdata(q), t("2053-01-01T00:00:00Z"));
  ASSERT_FALSE(future.is_ok());
  EXPECT_NE(future.status().message().find("expired"), std::string::npos) << future.status().message();
  auto early = TdxVerifier().verify(read_testdata(q), t("2020-01-01T00:00:00Z"));
  ASSERT_FALSE(early.is_ok());
  EXPECT_NE(early.status().message().find("not yet valid"), std::string::npos);
  // Certificates still valid in 2024, but the TCB info (nextUpdate 2023-07-18) is stale.
  auto stale = TdxVerifier(with_gotdx_collateral(false)).verify(read_testdata(q), t("2024-01-01T00:00:00Z"));
  ASSERT_FALSE(stale.is_ok());
  EXPECT_NE(stale.status().message().find("stale"), std::string::npos) << stale.status().message();
}

TEST(Tdx, FlippedBitsFailWithTheRightReason) {
  CML_TESTDATA_OR_SKIP(q, "tdx/dcapqvl_tdx_quote");
  const Bytes doc = read_testdata(q);
  auto parsed = parse_tdx_quote(doc);
  CML_ASSERT_OK(parsed);
  const size_t sig_off = parsed->signed_part.size() + 4;
  const size_t qe_off = sig_off + 128 + 6;
  const size_t pem_off = static_cast<size_t>(parsed->pck_chain_pem.data() - doc.data());
  auto check = [&](size_t off, std::string_view want) {
    Bytes d = doc;
    d[off] ^= 0x01;
    auto c = TdxVerifier().verify(d, from_unix_seconds(kDcapTdxTime));
    ASSERT_FALSE(c.is_ok()) << off;
    EXPECT_NE(c.status().message().find(want), std::string::npos) << off << ": " << c.status().message();
  };
  check(48 + 136, "quote signature does not verify");                     // MRTD
  check(48 + 520, "quote signature does not verify");                     // report data
  check(sig_off + 3, "quote signature does not verify");                  // signature
  check(sig_off + 64 + 3, "attestation key");                             // attestation key (off the curve)
  check(qe_off + 10, "QE report signature");                              // QE report body
  check(qe_off + 384 + 5, "QE report signature");                         // QE report signature
  check(qe_off + 384 + 64 + 2 + 1, "does not bind the attestation key");  // QE auth data
  check(pem_off + 200, "PCK");                                            // inside the PCK leaf (base64 text)
}

TEST(Tdx, CollateralTamperingAndWrongRoot) {
  CML_TESTDATA_OR_SKIP(q, "tdx/dcapqvl_tdx_quote");
  CML_TESTDATA_OR_SKIP(col, "tdx/dcapqvl_tdx_quote_collateral.json");
  TdxVerifierOptions o = with_bundle(col);
  o.collateral->tcb_info_json[20] ^= 0x01;
  auto c = TdxVerifier(o).verify(read_testdata(q), from_unix_seconds(kDcapTdxTime));
  ASSERT_FALSE(c.is_ok());
  EXPECT_NE(c.status().message().find("TCB info signature"), std::string::npos) << c.status().message();
  TdxVerifierOptions q2 = with_bundle(col);
  q2.collateral->qe_identity_signature[3] ^= 0x01;
  auto c2 = TdxVerifier(q2).verify(read_testdata(q), from_unix_seconds(kDcapTdxTime));
  ASSERT_FALSE(c2.is_ok());
  EXPECT_NE(c2.status().message().find("QE identity signature"), std::string::npos);
  // FMSPC mismatch: the gotdx collateral is for another platform.
  auto c3 = TdxVerifier(with_gotdx_collateral(false)).verify(read_testdata(q), t("2023-07-01T01:00:00Z"));
  EXPECT_FALSE(c3.is_ok());
  CML_TESTDATA_OR_SKIP(nitro_root, "nitro/aws_nitro_enclaves_root_g1.pem");
  TdxVerifierOptions wrong;
  wrong.roots = crypto::Certificate::parse_any(read_testdata(nitro_root)).value();
  auto w = TdxVerifier(wrong).verify(read_testdata(q), from_unix_seconds(kDcapTdxTime));
  ASSERT_FALSE(w.is_ok());
  EXPECT_NE(w.status().message().find("trusted root"), std::string::npos) << w.status().message();
}

TEST(Tdx, DebugTdRefusedByPolicy) {
  CML_TESTDATA_OR_SKIP(q, "tdx/dcapqvl_tdx_quote");
  auto c = TdxVerifier().verify(read_testdata(q), from_unix_seconds(kDcapTdxTime));
  CML_ASSERT_OK(c);
  Claims dbg = *c;
  dbg.debug = true;  // TD_ATTRIBUTES.DEBUG as the verifier reports it
  Policy p;
  p.expected_measurements["mrtd"] = c->measurements.at("mrtd");
  EXPECT_TRUE(appraise(*c, p, from_unix_seconds(kDcapTdxTime)).is_ok());
  EXPECT_NE(appraise(dbg, p, from_unix_seconds(kDcapTdxTime)).message().find("debug"), std::string::npos);
  p.expected_measurements["rtmr0"] = Bytes(48, 0);
  EXPECT_NE(appraise(*c, p, from_unix_seconds(kDcapTdxTime)).message().find("rtmr0 mismatch"), std::string::npos);
}

TEST(Tdx, ParserIsBounded) {
  CML_TESTDATA_OR_SKIP(q, "tdx/dcapqvl_tdx_quote");
  const Bytes doc = read_testdata(q);
  for (size_t n = 0; n < doc.size(); n += 53) EXPECT_FALSE(TdxVerifier().verify(ByteSpan(doc).first(n), {}).is_ok());
  Bytes big = doc;
  store_u32_be(big.data() + 632, 0xffffffff);  // absurd signature data length
  EXPECT_FALSE(parse_tdx_quote(big).is_ok());
}

}  // namespace
}  // namespace cml::attest
