// X25519 against every Wycheproof vector.
//
// Our rule (x25519.h): derive() returns the RFC 7748 result for every 32-byte public value, and refuses
// with CRYPTO exactly when that result is all-zero. Decision per "acceptable" flag:
// - ZeroSharedSecret / LowOrderPublic (31 vectors, always together, shared secret all-zero): refused. A
//   low-order peer key would make the handshake secret independent of our key.
// - Twist, NonCanonicalPublic, SmallPublicKey, SpecialPublicKey, EdgeCaseShared, EdgeCaseMultiplication,
//   Ktv with a non-zero result: accepted, with the exact expected secret. RFC 7748 §5 requires
//   implementations to accept non-canonical u-coordinates (the top bit is masked), and X25519 is
//   twist-secure, so there is nothing to gain by refusing them.
#include <gtest/gtest.h>

#include <algorithm>

#include "crypto/x25519.h"
#include "wycheproof.h"

namespace cml::crypto {
namespace {

using testing::wycheproof::Expected;
using testing::wycheproof::has_flag;
using testing::wycheproof::hex;
using testing::wycheproof::label;
using testing::wycheproof::Tally;

TEST(X25519Wycheproof, EveryVector) {
  CML_WYCHEPROOF_LOAD(root, "x25519_test.json");
  Tally tally;
  size_t refused = 0, accepted_acceptable = 0;
  for (const auto& group : root["testGroups"]) {
    ASSERT_EQ(group["curve"].get<std::string>(), "curve25519");
    for (const auto& t : group["tests"]) {
      SCOPED_TRACE(label(t));
      const Bytes priv = hex(t["private"]), pub = hex(t["public"]), shared = hex(t["shared"]);
      const Expected want = testing::wycheproof::expected(t);
      ASSERT_NE(want, Expected::kInvalid) << "the file has no invalid vectors; decide one if added";
      const bool zero = std::all_of(shared.begin(), shared.end(), [](uint8_t b) { return b == 0; });
      auto kp = X25519KeyPair::from_private(priv);
      ASSERT_TRUE(kp.is_ok()) << kp.status().to_string();
      auto got = kp.value().derive(pub);
      if (zero) {
        EXPECT_EQ(want, Expected::kAcceptable);
        EXPECT_TRUE(has_flag(t, "ZeroSharedSecret"));
        EXPECT_EQ(got.status().code(), StatusCode::kCrypto) << "all-zero shared secret must be refused";
        ++refused;
      } else {
        ASSERT_TRUE(got.is_ok()) << got.status().to_string();
        EXPECT_EQ(to_hex(got.value().span()), to_hex(shared));
        if (want == Expected::kAcceptable) ++accepted_acceptable;
      }
      tally.count(t);
    }
  }
  std::cout << "[wycheproof] x25519_test.json: " << refused << " all-zero results refused, " << accepted_acceptable
            << " acceptable vectors accepted with the expected secret\n";
  EXPECT_GT(refused, 0u);
  testing::wycheproof::expect_all_checked("x25519_test.json", root, tally);
}

}  // namespace
}  // namespace cml::crypto
