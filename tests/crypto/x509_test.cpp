#include "crypto/x509.h"

#include <gtest/gtest.h>

#include "support/test_support.h"

namespace cml::crypto {
namespace {

using cml::testing::read_testdata;

std::vector<Certificate> load_chain(const std::string& path) {
  auto c = Certificate::parse_any(read_testdata(path));
  EXPECT_TRUE(c.is_ok()) << c.status().to_string();
  return c.is_ok() ? *c : std::vector<Certificate>{};
}

TEST(X509, ParsesPemAndDerAndFingerprints) {
  CML_TESTDATA_OR_SKIP(path, "nitro/aws_nitro_enclaves_root_g1.pem");
  auto certs = load_chain(path);
  ASSERT_EQ(certs.size(), 1u);
  EXPECT_EQ(to_hex(certs[0].fingerprint_sha256()), "641a0321a3e244efe456463195d606317ed7cdcc3c1756e09893f3c68f79bb5b");
  EXPECT_EQ(certs[0].common_name(), "aws.nitro-enclaves");
  auto again = Certificate::from_der(certs[0].der());
  CML_ASSERT_OK(again);
  EXPECT_EQ(again->der(), certs[0].der());
  EXPECT_TRUE(certs[0].valid_at(parse_time("2030-01-01T00:00:00Z").value()));
  EXPECT_FALSE(certs[0].valid_at(parse_time("2050-01-01T00:00:00Z").value()));
}

TEST(X509, RejectsMalformedAndTrailingBytes) {
  EXPECT_FALSE(Certificate::from_der({}).is_ok());
  Bytes junk = {0x30, 0x82, 0xff, 0xff, 0x01};
  EXPECT_EQ(Certificate::from_der(junk).status().code(), StatusCode::kInvalidArgument);
  CML_TESTDATA_OR_SKIP(path, "sev-snp/virtee_milan_vcek.der");
  Bytes der = read_testdata(path);
  der.push_back(0);
  EXPECT_FALSE(Certificate::from_der(der).is_ok());
  der.pop_back();
  for (size_t n = 0; n < der.size(); n += 37) EXPECT_FALSE(Certificate::from_der(ByteSpan(der).first(n)).is_ok());
}

TEST(X509, RsaPssChainVcekAskArkVerifiesAndExpires) {
  CML_TESTDATA_OR_SKIP(vcek_path, "sev-snp/virtee_milan_vcek.der");
  CML_TESTDATA_OR_SKIP(chain_path, "sev-snp/ask_ark_milan.pem");
  auto vcek = load_chain(vcek_path);
  auto chain = load_chain(chain_path);
  ASSERT_EQ(chain.size(), 2u);
  std::vector<Certificate> ask = {chain[0]}, ark = {chain[1]};
  const WallTime now = parse_time("2024-01-01T00:00:00Z").value();
  Status ok = verify_chain(vcek[0], ask, ark, now);
  EXPECT_TRUE(ok.is_ok()) << ok.message();
  Status expired = verify_chain(vcek[0], ask, ark, parse_time("2031-01-01T00:00:00Z").value());
  EXPECT_NE(expired.message().find("expired"), std::string::npos) << expired.message();
  Status early = verify_chain(vcek[0], ask, ark, parse_time("2020-01-01T00:00:00Z").value());
  EXPECT_NE(early.message().find("not yet valid"), std::string::npos) << early.message();
  // Missing intermediate / wrong root.
  Status noask = verify_chain(vcek[0], {}, ark, now);
  EXPECT_NE(noask.message().find("trusted root"), std::string::npos) << noask.message();
  EXPECT_TRUE(vcek[0].verify_signed_by(ask[0]).is_ok());
  EXPECT_FALSE(vcek[0].verify_signed_by(ark[0]).is_ok());
}

TEST(X509, ExtensionsReadable) {
  CML_TESTDATA_OR_SKIP(vcek_path, "sev-snp/gosevguest_milan_vcek.der");
  auto vcek = load_chain(vcek_path);
  auto bl = vcek[0].extension("1.3.6.1.4.1.3704.1.3.1");
  ASSERT_TRUE(bl.has_value());
  DerReader r(*bl);
  auto el = r.expect(0x02, "blSPL");
  CML_ASSERT_OK(el);
  EXPECT_EQ(der_uint(el->value).value(), 2u);
  EXPECT_FALSE(vcek[0].extension("1.2.3.4").has_value());
}

TEST(X509, CrlChecksIssuerTimeAndRevocation) {
  CML_TESTDATA_OR_SKIP(crl_path, "tdx/gotdxguest_rootcrl.der");
  CML_TESTDATA_OR_SKIP(root_path, "tdx/intel_sgx_root_ca.pem");
  CML_TESTDATA_OR_SKIP(pck_ca_path, "tdx/gotdxguest_pck_platform_ca_chain.pem");
  auto crl = Crl::parse_any(read_testdata(crl_path));
  CML_ASSERT_OK(crl);
  auto root = load_chain(root_path);
  auto pck_ca = load_chain(pck_ca_path);
  const WallTime now = parse_time("2023-07-01T01:00:00Z").value();
  EXPECT_TRUE(crl->check(root[0], now).is_ok()) << crl->check(root[0], now).message();
  EXPECT_FALSE(crl->check(pck_ca[0], now).is_ok());  // wrong issuer
  EXPECT_FALSE(crl->is_revoked(pck_ca[0]));
  std::vector<Crl> crls = {*crl};
  EXPECT_TRUE(verify_chain(pck_ca[0], {}, root, now, crls).is_ok());
  Status stale = verify_chain(pck_ca[0], {}, root, parse_time("2030-01-01T00:00:00Z").value(), crls);
  EXPECT_NE(stale.message().find("stale"), std::string::npos) << stale.message();
}

TEST(X509, DerReaderBounds) {
  Bytes b = {0x30, 0x05, 0x02, 0x01, 0x07};
  DerReader r(b);
  EXPECT_FALSE(r.next().is_ok());  // declared length exceeds input
  Bytes big = {0x04, 0x84, 0xff, 0xff, 0xff, 0xff};
  DerReader r2(big);
  EXPECT_FALSE(r2.next().is_ok());
  Bytes oid = {0x2b, 0x06, 0x01, 0x04, 0x01, 0x9c, 0x78, 0x01, 0x03, 0x01};
  EXPECT_EQ(der_oid_to_string(oid).value(), "1.3.6.1.4.1.3704.1.3.1");
}

}  // namespace
}  // namespace cml::crypto
