#include "attest/mock.h"

#include <gtest/gtest.h>

#include "support/test_support.h"

namespace cml::attest {
namespace {

const WallTime kNow = from_unix_seconds(1700000000);

TEST(Mock, ProviderDocumentVerifiesToItsClaims) {
  MockProvider p({{"image", Bytes(32, 0xAB)}, {"config", Bytes(4, 1)}}, /*debug=*/false);
  EXPECT_EQ(p.type(), EvidenceType::kMock);
  const Bytes pk(32, 0x11), nonce(32, 0x22);
  auto ev = p.attest(pk, nonce);
  ASSERT_TRUE(ev.is_ok());
  EXPECT_EQ(ev->type, EvidenceType::kMock);
  MockVerifier v;
  auto c = v.verify(ev->document, kNow);
  ASSERT_TRUE(c.is_ok()) << c.status().to_string();
  EXPECT_EQ(c->type, EvidenceType::kMock);
  EXPECT_EQ(c->public_key, pk);
  EXPECT_EQ(c->nonce, nonce);
  EXPECT_FALSE(c->debug);
  EXPECT_EQ(c->measurements.size(), 2u);
  EXPECT_EQ(c->measurements.at("image"), Bytes(32, 0xAB));
  EXPECT_EQ(c->document_hash, crypto::sha256(ev->document));
  EXPECT_TRUE(check_binding(*c, pk, nonce).is_ok());
  EXPECT_EQ(check_binding(*c, Bytes(32, 0x12), nonce).code(), StatusCode::kAttestation);
  EXPECT_EQ(check_binding(*c, pk, Bytes(32, 0)).code(), StatusCode::kAttestation);
}

TEST(Mock, DocumentLayout) {
  const Bytes doc = encode_mock_document({{"a1", Bytes{0x05}}}, true, Bytes{0xAA}, Bytes{0xBB, 0xCC});
  EXPECT_EQ(to_hex(doc),
            "434d4c4d4f434b31"
            "01"
            "01aa"
            "02bbcc"
            "01"
            "026131"
            "0105");
}

TEST(Mock, PolicyFailuresCanBeTested) {
  MockProvider p(mock_measurements("stage-1"), /*debug=*/true);
  auto c = MockVerifier().verify(p.attest(Bytes(32), Bytes(32))->document, kNow).value();
  Policy pol = mock_policy("stage-1");
  EXPECT_EQ(appraise(c, pol, kNow).code(), StatusCode::kPolicy);  // debug refused
  pol.allow_debug = true;
  EXPECT_TRUE(appraise(c, pol, kNow).is_ok());
  EXPECT_EQ(appraise(c, mock_policy("stage-2"), kNow).code(), StatusCode::kPolicy);
}

TEST(Mock, VerifierSetDispatch) {
  auto set = mock_verifier_set();
  MockProvider p(mock_measurements("x"));
  auto ev = p.attest(Bytes(32, 1), Bytes(32, 2)).value();
  EXPECT_TRUE(set->verify(ev, kNow).is_ok());
}

TEST(Mock, RejectsMalformedDocuments) {
  const Bytes good = encode_mock_document({{"b", Bytes(3, 1)}, {"c", Bytes(2, 2)}}, false, Bytes(32, 7), Bytes(32, 8));
  MockVerifier v;
  ASSERT_TRUE(v.verify(good, kNow).is_ok());
  for (size_t n = 0; n < good.size(); ++n) {
    EXPECT_EQ(v.verify(ByteSpan(good).first(n), kNow).status().code(), StatusCode::kInvalidArgument) << n;
  }
  Bytes x = good;
  x.push_back(0);
  EXPECT_EQ(v.verify(x, kNow).status().code(), StatusCode::kInvalidArgument);  // trailing byte
  x = good;
  x[0] = 'X';
  EXPECT_NE(v.verify(x, kNow).status().message().find("bad magic"), std::string::npos);
  x = good;
  x[8] = 0x02;  // unknown flag
  EXPECT_EQ(v.verify(x, kNow).status().code(), StatusCode::kInvalidArgument);
  x = good;
  x[9] = 65;  // pk_len over the bound
  EXPECT_NE(v.verify(x, kNow).status().message().find("longer than 64"), std::string::npos);
  // Measurement names out of order / duplicate / invalid.
  const size_t first_name = 8 + 1 + 33 + 33 + 1;
  x = good;
  x[first_name + 1] = 'd';  // "d" then "c": not ascending
  EXPECT_NE(v.verify(x, kNow).status().message().find("ascending"), std::string::npos);
  x = good;
  x[first_name + 1] = 'C';
  EXPECT_NE(v.verify(x, kNow).status().message().find("invalid measurement name"), std::string::npos);
  EXPECT_EQ(v.verify(Bytes(kMaxEvidenceSize + 1, 0), kNow).status().code(), StatusCode::kInvalidArgument);
}

TEST(Mock, ProviderBounds) {
  MockProvider p;
  EXPECT_EQ(p.attest(Bytes(65), Bytes(1)).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(p.attest(Bytes(1), Bytes(65)).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace cml::attest
