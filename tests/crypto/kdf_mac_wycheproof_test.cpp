// HKDF-SHA256 and HMAC-SHA256 against every Wycheproof vector.
#include <gtest/gtest.h>

#include "crypto/hash.h"
#include "crypto/hkdf.h"
#include "wycheproof.h"

namespace cml::crypto {
namespace {

using testing::wycheproof::Expected;
using testing::wycheproof::hex;
using testing::wycheproof::label;
using testing::wycheproof::Tally;

TEST(HkdfWycheproof, EveryVector) {
  CML_WYCHEPROOF_LOAD(root, "hkdf_sha256_test.json");
  Tally tally;
  for (const auto& group : root["testGroups"]) {
    for (const auto& t : group["tests"]) {
      SCOPED_TRACE(label(t));
      const Bytes ikm = hex(t["ikm"]), salt = hex(t["salt"]), info = hex(t["info"]), okm = hex(t["okm"]);
      const size_t size = t["size"].get<size_t>();
      auto got = hkdf_sha256(salt, ikm, info, size);
      auto prk = hkdf_sha256_extract(salt, ikm);
      ASSERT_TRUE(prk.is_ok()) << prk.status().to_string();
      auto expanded = hkdf_sha256_expand(prk.value().span(), info, size);
      switch (testing::wycheproof::expected(t)) {
        case Expected::kValid:
          ASSERT_TRUE(got.is_ok()) << got.status().to_string();
          EXPECT_EQ(to_hex(got.value().span()), to_hex(okm));
          // The two halves compose to the same output.
          ASSERT_TRUE(expanded.is_ok()) << expanded.status().to_string();
          EXPECT_EQ(to_hex(expanded.value().span()), to_hex(okm));
          break;
        case Expected::kInvalid:  // output longer than 255 * 32 bytes
          EXPECT_EQ(got.status().code(), StatusCode::kInvalidArgument);
          EXPECT_EQ(expanded.status().code(), StatusCode::kInvalidArgument);
          EXPECT_GT(size, 255u * 32);
          break;
        case Expected::kAcceptable:
          ADD_FAILURE() << "no acceptable HKDF vectors expected";
          break;
      }
      tally.count(t);
    }
  }
  EXPECT_GT(tally.invalid, 0u);
  testing::wycheproof::expect_all_checked("hkdf_sha256_test.json", root, tally);
}

// hmac_sha256 computes the full 32-byte tag; a truncated tag (tagSize 128) is its prefix. Valid vectors
// must match, invalid ones (modified tags) must not.
TEST(HmacWycheproof, EveryVectorAllTagSizes) {
  CML_WYCHEPROOF_LOAD(root, "hmac_sha256_test.json");
  Tally tally;
  size_t by_tag_size[2] = {};
  for (const auto& group : root["testGroups"]) {
    const size_t tag_bytes = group["tagSize"].get<size_t>() / 8;
    ASSERT_TRUE(tag_bytes == 16 || tag_bytes == 32) << tag_bytes;
    for (const auto& t : group["tests"]) {
      SCOPED_TRACE(label(t));
      const Bytes key = hex(t["key"]), msg = hex(t["msg"]), tag = hex(t["tag"]);
      const Digest256 full = hmac_sha256(key, msg);
      const bool match = tag.size() == tag_bytes && constant_time_equal(ByteSpan(full).first(tag_bytes), tag);
      switch (testing::wycheproof::expected(t)) {
        case Expected::kValid:
          EXPECT_TRUE(match) << to_hex(full);
          break;
        case Expected::kInvalid:
          EXPECT_FALSE(match);
          break;
        case Expected::kAcceptable:
          ADD_FAILURE() << "no acceptable HMAC vectors expected";
          break;
      }
      ++by_tag_size[tag_bytes == 16 ? 0 : 1];
      tally.count(t);
    }
  }
  std::cout << "[wycheproof] hmac_sha256_test.json: 128-bit tags " << by_tag_size[0] << ", 256-bit tags "
            << by_tag_size[1] << "\n";
  EXPECT_GT(by_tag_size[0], 0u);
  EXPECT_GT(by_tag_size[1], 0u);
  testing::wycheproof::expect_all_checked("hmac_sha256_test.json", root, tally);
}

}  // namespace
}  // namespace cml::crypto
