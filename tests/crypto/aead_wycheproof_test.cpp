// AES-GCM and ChaCha20-Poly1305 against every Wycheproof vector.
//
// For each vector: seal_detached must reproduce ct‖tag exactly (valid vectors) and open_detached must
// return the message; invalid vectors must fail to open with CRYPTO and leave the output zeroed. Vectors
// whose nonce the suite refuses must fail with INVALID_ARGUMENT before touching any output. Where the
// nonce is 12 bytes the record API (seal/open, tag appended) is checked too, including opening in place.
#include <gtest/gtest.h>

#include <algorithm>

#include "crypto/aead.h"
#include "wycheproof.h"

namespace cml::crypto {
namespace {

using testing::wycheproof::Expected;
using testing::wycheproof::hex;
using testing::wycheproof::Json;
using testing::wycheproof::label;
using testing::wycheproof::Tally;

bool all_bytes(ByteSpan b, uint8_t v) {
  return std::all_of(b.begin(), b.end(), [v](uint8_t x) { return x == v; });
}

// The nonce lengths Aead accepts for the suite (see aead.h).
bool nonce_supported(bool chacha, size_t n) {
  return chacha ? n == kAeadNonceSize : n >= 1 && n <= kAeadMaxGcmNonceSize;
}

// Checks one vector on `aead`. Returns true when the vector is one of our documented deviations.
bool check_vector(Aead& aead, bool chacha, const Json& t) {
  SCOPED_TRACE(label(t));
  const Bytes iv = hex(t["iv"]), aad = hex(t["aad"]), msg = hex(t["msg"]), ct = hex(t["ct"]), tag = hex(t["tag"]);
  const Expected want = testing::wycheproof::expected(t);
  EXPECT_NE(want, Expected::kAcceptable) << "AEAD files have no acceptable vectors; decide one if added";
  EXPECT_EQ(ct.size(), msg.size());

  if (!nonce_supported(chacha, iv.size())) {
    // Refused before any output is touched. Wycheproof calls every such ChaCha20-Poly1305 and every
    // empty GCM nonce invalid; GCM nonces over 128 bytes (OpenSSL 3's bound) are valid there, which
    // makes them our one documented deviation.
    const bool deviation = want == Expected::kValid;
    if (deviation) {
      EXPECT_TRUE(!chacha && iv.size() > kAeadMaxGcmNonceSize);
    }
    Bytes out(msg.size(), 0xAA), out_tag(kAeadTagSize, 0xAA);
    Status s = aead.seal_detached(iv, aad, msg, out, out_tag);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.to_string();
    Bytes pt(ct.size(), 0xAA);
    s = aead.open_detached(iv, aad, ct, tag, pt);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.to_string();
    EXPECT_TRUE(all_bytes(out, 0xAA) && all_bytes(out_tag, 0xAA) && all_bytes(pt, 0xAA));
    return deviation;
  }

  // Sealing the message reproduces the vector's ciphertext; its tag only for valid vectors (the invalid
  // ones are genuine ciphertexts with a modified tag).
  Bytes out(msg.size()), out_tag(kAeadTagSize);
  Status s = aead.seal_detached(iv, aad, msg, out, out_tag);
  EXPECT_TRUE(s.is_ok()) << s.to_string();
  EXPECT_EQ(to_hex(out), to_hex(ct));
  if (want == Expected::kValid)
    EXPECT_EQ(to_hex(out_tag), to_hex(tag));
  else
    EXPECT_NE(to_hex(out_tag), to_hex(tag));

  Bytes pt(ct.size(), 0xAA);
  s = aead.open_detached(iv, aad, ct, tag, pt);
  if (want == Expected::kValid) {
    EXPECT_TRUE(s.is_ok()) << s.to_string();
    EXPECT_EQ(to_hex(pt), to_hex(msg));
  } else {
    EXPECT_EQ(s.code(), StatusCode::kCrypto) << s.to_string();
    EXPECT_TRUE(all_bytes(pt, 0)) << "output not wiped after a failed open";
  }

  if (iv.size() == kAeadNonceSize) {
    // Record API: ct‖tag in one buffer, opened in place.
    Bytes record(msg.size() + kAeadTagSize);
    s = aead.seal(iv, aad, msg, record);
    EXPECT_TRUE(s.is_ok()) << s.to_string();
    EXPECT_EQ(to_hex(ByteSpan(record).first(ct.size())), to_hex(ct));
    Bytes received = ct;
    received.insert(received.end(), tag.begin(), tag.end());
    s = aead.open(iv, aad, received, MutableByteSpan(received).first(ct.size()));
    if (want == Expected::kValid) {
      EXPECT_TRUE(s.is_ok()) << s.to_string();
      EXPECT_EQ(to_hex(ByteSpan(received).first(msg.size())), to_hex(msg));
    } else {
      EXPECT_EQ(s.code(), StatusCode::kCrypto) << s.to_string();
      EXPECT_TRUE(all_bytes(ByteSpan(received).first(ct.size()), 0));
    }
  } else {
    // The record API takes 12-byte nonces only.
    Bytes record(msg.size() + kAeadTagSize);
    EXPECT_EQ(aead.seal(iv, aad, msg, record).code(), StatusCode::kInvalidArgument);
  }
  return false;
}

TEST(AeadWycheproof, AesGcmEveryVector) {
  CML_WYCHEPROOF_LOAD(root, "aes_gcm_test.json");
  Tally tally;
  size_t per_key_size[3] = {};
  for (const auto& group : root["testGroups"]) {
    const int key_bits = group["keySize"].get<int>();
    ASSERT_EQ(group["tagSize"].get<int>(), 128) << "only 16-byte tags are supported";
    for (const auto& t : group["tests"]) {
      const Bytes key = hex(t["key"]);
      ASSERT_EQ(key.size() * 8, static_cast<size_t>(key_bits));
      // 256-bit keys go through the protocol's constructor; 128/192 through the test-only one.
      auto aead =
          key.size() == kAeadKeySize ? Aead::create(AeadSuite::kAes256Gcm, key) : detail::aes_gcm_any_key_size(key);
      ASSERT_TRUE(aead.is_ok()) << aead.status().to_string();
      if (check_vector(aead.value(), /*chacha=*/false, t)) ++tally.documented_deviations;
      tally.count(t);
      ++per_key_size[key.size() == 16 ? 0 : key.size() == 24 ? 1 : 2];
    }
  }
  std::cout << "[wycheproof] aes_gcm_test.json by key size: 128-bit " << per_key_size[0] << ", 192-bit "
            << per_key_size[1] << ", 256-bit " << per_key_size[2] << "\n";
  for (size_t n : per_key_size) EXPECT_GT(n, 0u);
  // The three 2056-bit (257-byte) nonces, one per key size; nothing else may deviate.
  EXPECT_EQ(tally.documented_deviations, 3u);
  testing::wycheproof::expect_all_checked("aes_gcm_test.json", root, tally);
}

TEST(AeadWycheproof, ChaCha20Poly1305EveryVector) {
  CML_WYCHEPROOF_LOAD(root, "chacha20_poly1305_test.json");
  Tally tally;
  for (const auto& group : root["testGroups"]) {
    ASSERT_EQ(group["tagSize"].get<int>(), 128);
    for (const auto& t : group["tests"]) {
      auto aead = Aead::create(AeadSuite::kChaCha20Poly1305, hex(t["key"]));
      ASSERT_TRUE(aead.is_ok()) << aead.status().to_string();
      if (check_vector(aead.value(), /*chacha=*/true, t)) ++tally.documented_deviations;
      tally.count(t);
    }
  }
  EXPECT_EQ(tally.documented_deviations, 0u);
  testing::wycheproof::expect_all_checked("chacha20_poly1305_test.json", root, tally);
}

}  // namespace
}  // namespace cml::crypto
