// Unit tests of the crypto module's own rules: secret wiping and moves, randomness, AEAD buffer and
// nonce rules, hashing, HKDF argument checks, X25519 and ECDSA encodings. Conformance to the algorithms
// themselves is checked against Wycheproof in the *_wycheproof_test.cpp files.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <set>
#include <thread>

#include "crypto/aead.h"
#include "crypto/ecdsa.h"
#include "crypto/hash.h"
#include "crypto/hkdf.h"
#include "crypto/random.h"
#include "crypto/secret.h"
#include "crypto/x25519.h"
#include "support/test_support.h"

namespace cml::crypto {
namespace {

bool all_bytes(ByteSpan b, uint8_t v) {
  return std::all_of(b.begin(), b.end(), [v](uint8_t x) { return x == v; });
}
Bytes pattern(size_t n, uint8_t seed) {
  Bytes b(n);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(seed + 31 * i);
  return b;
}

// ---- SecretBytes ----

TEST(SecretBytes, CopiesAndClonesIndependently) {
  const Bytes src = pattern(40, 7);
  SecretBytes s(src);
  ASSERT_EQ(s.size(), src.size());
  EXPECT_NE(s.data(), src.data());
  EXPECT_TRUE(std::equal(src.begin(), src.end(), s.data()));
  SecretBytes c = s.clone();
  c.data()[0] ^= 0xff;
  EXPECT_EQ(s.data()[0], src[0]);
  SecretBytes z(16);
  EXPECT_EQ(z.size(), 16u);
  EXPECT_TRUE(all_bytes(z.span(), 0));
  EXPECT_TRUE(SecretBytes(0).empty());
  EXPECT_TRUE(SecretBytes().clone().empty());
}

TEST(SecretBytes, MoveTransfersAndEmptiesTheSource) {
  SecretBytes a(pattern(32, 1));
  const uint8_t* storage = a.data();
  SecretBytes b(std::move(a));
  EXPECT_EQ(b.data(), storage) << "a move must not copy the secret";
  EXPECT_EQ(b.size(), 32u);
  EXPECT_TRUE(a.empty());  // NOLINT(bugprone-use-after-move): moved-from state is specified
  EXPECT_EQ(a.data(), nullptr);

  SecretBytes c(pattern(8, 2));
  c = std::move(b);
  EXPECT_EQ(c.data(), storage);
  EXPECT_EQ(c.size(), 32u);
  EXPECT_TRUE(b.empty());  // NOLINT(bugprone-use-after-move)

  SecretBytes& alias = c;
  c = std::move(alias);  // self-move keeps the value
  EXPECT_EQ(c.data(), storage);
  EXPECT_EQ(c.size(), 32u);
}

TEST(SecretBytes, WipeEmptiesAndSecureWipeZeroes) {
  SecretBytes s(pattern(24, 3));
  s.wipe();
  EXPECT_TRUE(s.empty());
  EXPECT_EQ(s.data(), nullptr);
  s.wipe();  // idempotent

  Bytes buf = pattern(100, 9);
  secure_wipe(MutableByteSpan(buf).subspan(10, 50));
  EXPECT_TRUE(all_bytes(ByteSpan(buf).subspan(10, 50), 0));
  EXPECT_EQ(buf[9], pattern(100, 9)[9]);
  EXPECT_EQ(buf[60], pattern(100, 9)[60]);
  secure_wipe({});  // empty span is fine
}

// ---- random ----

TEST(Random, DoesNotRepeat) {
  EXPECT_NE(random_bytes(32), random_bytes(32));
  std::set<uint64_t> seen;
  for (int i = 0; i < 10000; ++i) seen.insert(random_u64());
  EXPECT_EQ(seen.size(), 10000u);
  SecretBytes a = random_secret(32), b = random_secret(32);
  EXPECT_FALSE(std::equal(a.span().begin(), a.span().end(), b.span().begin()));
  EXPECT_TRUE(random_bytes(0).empty());
  random_fill({});
}

TEST(Random, BitsAreBalanced) {
  // 2^20 bits: the count of ones has a standard deviation of 512; ±8192 is 16 sigma, so this never
  // fails by chance but does catch a stuck or constant generator.
  const Bytes b = random_bytes(size_t{1} << 17);
  size_t ones = 0;
  for (uint8_t x : b) ones += static_cast<size_t>(std::popcount(x));
  EXPECT_NEAR(static_cast<double>(ones), double(size_t{1} << 19), 8192.0);
  // Every byte value appears (expected count 512 each).
  std::set<uint8_t> values(b.begin(), b.end());
  EXPECT_EQ(values.size(), 256u);
}

// ---- AEAD ----

class AeadTest : public ::testing::TestWithParam<AeadSuite> {
 protected:
  Aead make(uint8_t key_seed = 1) {
    auto a = Aead::create(GetParam(), pattern(kAeadKeySize, key_seed));
    CML_CHECK(a.is_ok());
    return std::move(a).value();
  }
};

TEST_P(AeadTest, SealOpenInPlaceRoundTrips) {
  Aead sealer = make(), opener = make();
  const Bytes aad = to_bytes("header");
  for (size_t n : {size_t{0}, size_t{1}, size_t{15}, size_t{16}, size_t{1000}, size_t{65537}}) {
    const Bytes nonce = pattern(kAeadNonceSize, static_cast<uint8_t>(n));
    const Bytes msg = pattern(n, 5);
    Bytes buf = msg;
    buf.resize(n + kAeadTagSize);
    // In place: plaintext is buf[0, n), output buf[0, n + 16).
    ASSERT_TRUE(sealer.seal(nonce, aad, ByteSpan(buf).first(n), buf).is_ok());
    if (n >= 16) {
      EXPECT_FALSE(std::equal(msg.begin(), msg.end(), buf.begin())) << "not encrypted";
    }
    // The same as out of place.
    Bytes out(n + kAeadTagSize);
    ASSERT_TRUE(sealer.seal(nonce, aad, msg, out).is_ok());
    EXPECT_EQ(out, buf);
    // Open in place.
    Status s = opener.open(nonce, aad, buf, MutableByteSpan(buf).first(n));
    ASSERT_TRUE(s.is_ok()) << s.to_string();
    EXPECT_TRUE(std::equal(msg.begin(), msg.end(), buf.begin()));
  }
}

TEST_P(AeadTest, TagFailureWipesOutputAndContextStaysUsable) {
  Aead a = make();
  const Bytes nonce = pattern(kAeadNonceSize, 1), aad = to_bytes("aad"), msg = pattern(300, 2);
  Bytes record(msg.size() + kAeadTagSize);
  ASSERT_TRUE(a.seal(nonce, aad, msg, record).is_ok());

  auto open_into_filled = [&](const Bytes& rec, ByteSpan n, ByteSpan ad) {
    Bytes out(rec.size() - kAeadTagSize, 0xAA);
    Status s = a.open(n, ad, rec, out);
    return std::make_pair(s, out);
  };
  for (size_t flip : {size_t{0}, msg.size() - 1, msg.size(), record.size() - 1}) {  // ciphertext and tag bytes
    Bytes bad = record;
    bad[flip] ^= 0x01;
    auto [s, out] = open_into_filled(bad, nonce, aad);
    EXPECT_EQ(s.code(), StatusCode::kCrypto) << flip;
    EXPECT_TRUE(all_bytes(out, 0)) << "plaintext of a forged record must not be released";
  }
  {
    auto [s, out] = open_into_filled(record, nonce, to_bytes("aae"));
    EXPECT_EQ(s.code(), StatusCode::kCrypto);
    EXPECT_TRUE(all_bytes(out, 0));
  }
  {
    auto [s, out] = open_into_filled(record, pattern(kAeadNonceSize, 2), aad);
    EXPECT_EQ(s.code(), StatusCode::kCrypto);
    EXPECT_TRUE(all_bytes(out, 0));
  }
  // After failures, the same object still opens the genuine record.
  auto [s, out] = open_into_filled(record, nonce, aad);
  ASSERT_TRUE(s.is_ok()) << s.to_string();
  EXPECT_EQ(out, msg);
  // A record shorter than its tag.
  Bytes tiny(kAeadTagSize - 1);
  EXPECT_EQ(a.open(nonce, aad, tiny, {}).code(), StatusCode::kCrypto);
}

TEST_P(AeadTest, ReusedContextMatchesFreshObjects) {
  Aead a = make(), b = make();
  for (uint8_t i = 0; i < 20; ++i) {
    const Bytes nonce = pattern(kAeadNonceSize, i), msg = pattern(64 + i, i);
    Bytes r1(msg.size() + kAeadTagSize), r2(msg.size() + kAeadTagSize);
    ASSERT_TRUE(a.seal(nonce, {}, msg, r1).is_ok());
    Aead fresh = make();
    ASSERT_TRUE(fresh.seal(nonce, {}, msg, r2).is_ok());
    EXPECT_EQ(r1, r2);
    Bytes back(msg.size());
    ASSERT_TRUE(b.open(nonce, {}, r1, back).is_ok());
    EXPECT_EQ(back, msg);
  }
  Aead other_key = make(2);
  Bytes r(kAeadTagSize + 4), back(4);
  ASSERT_TRUE(a.seal(pattern(12, 0), {}, pattern(4, 0), r).is_ok());
  EXPECT_EQ(other_key.open(pattern(12, 0), {}, r, back).code(), StatusCode::kCrypto);
}

TEST_P(AeadTest, NonceAndBufferRules) {
  Aead a = make();
  const Bytes msg = pattern(10, 1);
  Bytes out(msg.size() + kAeadTagSize, 0xAA);
  for (size_t n : {size_t{0}, size_t{8}, size_t{11}, size_t{13}, size_t{16}}) {
    EXPECT_EQ(a.seal(pattern(n, 1), {}, msg, out).code(), StatusCode::kInvalidArgument) << n;
    EXPECT_EQ(a.open(pattern(n, 1), {}, out, MutableByteSpan(out).first(msg.size())).code(),
              StatusCode::kInvalidArgument)
        << n;
  }
  EXPECT_TRUE(all_bytes(out, 0xAA)) << "a refused call must not touch the output";
  // Output sizes must match exactly.
  Bytes short_out(msg.size() + kAeadTagSize - 1);
  EXPECT_EQ(a.seal(pattern(12, 1), {}, msg, short_out).code(), StatusCode::kInvalidArgument);
  Bytes ct(msg.size()), tag(kAeadTagSize - 1);
  EXPECT_EQ(a.seal_detached(pattern(12, 1), {}, msg, ct, tag).code(), StatusCode::kInvalidArgument);
  // Keys must be 32 bytes.
  EXPECT_EQ(Aead::create(GetParam(), pattern(16, 0)).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Aead::create(GetParam(), {}).status().code(), StatusCode::kInvalidArgument);
}

INSTANTIATE_TEST_SUITE_P(Suites, AeadTest, ::testing::Values(AeadSuite::kChaCha20Poly1305, AeadSuite::kAes256Gcm),
                         [](const ::testing::TestParamInfo<AeadSuite>& i) {
                           return i.param == AeadSuite::kAes256Gcm ? std::string("Aes256Gcm")
                                                                   : std::string("ChaCha20Poly1305");
                         });

TEST(AeadDetached, SuiteNonceLengths) {
  auto chacha = Aead::create(AeadSuite::kChaCha20Poly1305, pattern(32, 1));
  auto gcm = Aead::create(AeadSuite::kAes256Gcm, pattern(32, 1));
  ASSERT_TRUE(chacha.is_ok() && gcm.is_ok());
  const Bytes msg = pattern(33, 4);
  Bytes ct(msg.size()), tag(kAeadTagSize), pt(msg.size());
  // ChaCha20-Poly1305: exactly 12 (RFC 8439), refused before OpenSSL is asked.
  for (size_t n : {size_t{0}, size_t{1}, size_t{8}, size_t{11}, size_t{13}, size_t{24}})
    EXPECT_EQ(chacha.value().seal_detached(pattern(n, 1), {}, msg, ct, tag).code(), StatusCode::kInvalidArgument) << n;
  // AES-GCM: 1..128, and a context switching between lengths gives the same answers as fresh ones.
  for (size_t n : {size_t{0}, size_t{129}, size_t{257}})
    EXPECT_EQ(gcm.value().seal_detached(pattern(n, 1), {}, msg, ct, tag).code(), StatusCode::kInvalidArgument) << n;
  for (size_t n : {size_t{1}, size_t{12}, size_t{16}, size_t{12}, size_t{128}, size_t{8}}) {
    const Bytes nonce = pattern(n, static_cast<uint8_t>(n));
    ASSERT_TRUE(gcm.value().seal_detached(nonce, {}, msg, ct, tag).is_ok()) << n;
    auto fresh = Aead::create(AeadSuite::kAes256Gcm, pattern(32, 1));
    Bytes ct2(msg.size()), tag2(kAeadTagSize);
    ASSERT_TRUE(fresh.value().seal_detached(nonce, {}, msg, ct2, tag2).is_ok());
    EXPECT_EQ(ct, ct2) << n;
    EXPECT_EQ(tag, tag2) << n;
    ASSERT_TRUE(gcm.value().open_detached(nonce, {}, ct, tag, pt).is_ok()) << n;
    EXPECT_EQ(pt, msg);
  }
  // A detached tag of the wrong size is an authentication failure.
  EXPECT_EQ(gcm.value().open_detached(pattern(12, 1), {}, ct, ByteSpan(tag).first(15), pt).code(), StatusCode::kCrypto);
  // Other AES key sizes exist only through the test-only constructor.
  EXPECT_TRUE(detail::aes_gcm_any_key_size(pattern(16, 0)).is_ok());
  EXPECT_TRUE(detail::aes_gcm_any_key_size(pattern(24, 0)).is_ok());
  EXPECT_EQ(detail::aes_gcm_any_key_size(pattern(20, 0)).status().code(), StatusCode::kInvalidArgument);
}

TEST(AeadSuiteNames, ParseAndPrint) {
  for (AeadSuite s : {AeadSuite::kChaCha20Poly1305, AeadSuite::kAes256Gcm}) {
    auto back = parse_aead_suite(aead_suite_name(s));
    ASSERT_TRUE(back.is_ok());
    EXPECT_EQ(back.value(), s);
  }
  EXPECT_EQ(parse_aead_suite("aes").value(), AeadSuite::kAes256Gcm);
  EXPECT_EQ(parse_aead_suite("chacha").value(), AeadSuite::kChaCha20Poly1305);
  EXPECT_EQ(parse_aead_suite("aes-128-gcm").status().code(), StatusCode::kInvalidArgument);
}

// ---- hashes ----

TEST(Hash, KnownAnswers) {
  // FIPS 180-2 "abc" examples.
  EXPECT_EQ(to_hex(sha256(as_bytes("abc"))), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(to_hex(sha384(as_bytes("abc"))),
            "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7");
  EXPECT_EQ(to_hex(hash(HashAlg::kSha512, as_bytes("abc"))),
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d"
            "4423643ce80e2a9ac94fa54ca49f");
  EXPECT_EQ(to_hex(hash(HashAlg::kSha256, as_bytes("abc"))), to_hex(sha256(as_bytes("abc"))));
  EXPECT_EQ(to_hex(hash(HashAlg::kSha384, {})), to_hex(sha384({})));
}

TEST(Hash, Sha256IncrementalEqualsOneShot) {
  const Bytes data = pattern(10000, 3);
  for (size_t split : {size_t{0}, size_t{1}, size_t{63}, size_t{64}, size_t{65}, size_t{5000}, size_t{10000}}) {
    Sha256 h;
    h.update(ByteSpan(data).first(split));
    h.update({});
    h.update(ByteSpan(data).subspan(split));
    EXPECT_EQ(h.finish(), sha256(data)) << split;
  }
  Sha256 bytewise;
  for (size_t i = 0; i < 300; ++i) bytewise.update(ByteSpan(data).subspan(i, 1));
  EXPECT_EQ(bytewise.finish(), sha256(ByteSpan(data).first(300)));
  Sha256 empty;
  EXPECT_EQ(empty.finish(), sha256({}));
  Sha256 moved_from;
  moved_from.update(as_bytes("ab"));
  Sha256 moved(std::move(moved_from));
  moved.update(as_bytes("c"));
  EXPECT_EQ(to_hex(moved.finish()), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

// ---- HKDF ----

TEST(Hkdf, ArgumentRulesAndStructure) {
  const Bytes ikm = pattern(22, 1), info = to_bytes("ctx");
  // Extract is HMAC(salt, ikm); an empty salt means 32 zero bytes.
  auto prk = hkdf_sha256_extract(to_bytes("salt"), ikm);
  ASSERT_TRUE(prk.is_ok());
  const Digest256 mac = hmac_sha256(as_bytes("salt"), ikm);
  EXPECT_EQ(to_hex(prk.value().span()), to_hex(mac));
  auto a = hkdf_sha256({}, ikm, info, 42), b = hkdf_sha256(Bytes(32, 0), ikm, info, 42);
  ASSERT_TRUE(a.is_ok() && b.is_ok());
  EXPECT_EQ(to_hex(a.value().span()), to_hex(b.value().span()));
  // Expand's first block is HMAC(prk, info ‖ 0x01).
  Bytes block_input = info;
  block_input.push_back(1);
  auto okm = hkdf_sha256_expand(prk.value().span(), info, 32);
  ASSERT_TRUE(okm.is_ok());
  EXPECT_EQ(to_hex(okm.value().span()), to_hex(hmac_sha256(prk.value().span(), block_input)));
  // Empty IKM is allowed (RFC 5869 does not forbid it).
  EXPECT_TRUE(hkdf_sha256(to_bytes("s"), {}, {}, 32).is_ok());
  // Bounds.
  EXPECT_EQ(hkdf_sha256({}, ikm, info, 0).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(hkdf_sha256({}, ikm, info, 255 * 32 + 1).status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(hkdf_sha256({}, ikm, info, 255 * 32).is_ok());
  EXPECT_EQ(hkdf_sha256_expand(pattern(31, 0), info, 32).status().code(), StatusCode::kInvalidArgument);
}

TEST(Hkdf, ExpanderServesSeveralOutputsOfOnePrk) {
  // RFC 5869 test case 1: PRK and OKM.
  const Bytes prk = from_hex("077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5").value();
  const Bytes info = from_hex("f0f1f2f3f4f5f6f7f8f9").value();
  const std::string okm = "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865";
  auto x = HkdfExpander::create(prk);
  ASSERT_TRUE(x.is_ok());
  // Earlier outputs (one of several blocks, one refused) leave no state behind for the next.
  auto other = x.value().expand(to_bytes("other"), 100);
  ASSERT_TRUE(other.is_ok());
  EXPECT_EQ(x.value().expand(info, 0).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(x.value().expand(info, 255 * 32 + 1).status().code(), StatusCode::kInvalidArgument);
  auto first = x.value().expand(info, 42), again = x.value().expand(info, 42);
  ASSERT_TRUE(first.is_ok() && again.is_ok());
  EXPECT_EQ(to_hex(first.value().span()), okm);
  EXPECT_EQ(to_hex(again.value().span()), okm);
  auto direct = hkdf_sha256_expand(prk, to_bytes("other"), 100);
  ASSERT_TRUE(direct.is_ok());
  EXPECT_EQ(to_hex(other.value().span()), to_hex(direct.value().span()));
  EXPECT_EQ(HkdfExpander::create(pattern(31, 0)).status().code(), StatusCode::kInvalidArgument);
}

// ---- X25519 ----

TEST(X25519, EphemeralStockHandsOutEachKeyOnceFromManyThreads) {
  // Four threads drain the stock faster than it refills, so keys come from it and from the fallback.
  std::vector<std::vector<X25519PublicKey>> seen(4);
  std::vector<std::thread> threads;
  for (auto& v : seen) {
    threads.emplace_back([&v] {
      for (int k = 0; k < 50; ++k) {
        X25519KeyPair a = X25519KeyPair::take_ephemeral();
        X25519KeyPair b = X25519KeyPair::generate();
        auto ab = a.derive(b.public_key()), ba = b.derive(a.public_key());
        if (ab.is_ok() && ba.is_ok() && to_hex(ab->span()) == to_hex(ba->span())) v.push_back(a.public_key());
      }
    });
  }
  for (auto& t : threads) t.join();
  std::set<X25519PublicKey> all;
  for (const auto& v : seen) {
    EXPECT_EQ(v.size(), 50u);  // every key pair agrees with its peer
    all.insert(v.begin(), v.end());
  }
  EXPECT_EQ(all.size(), 200u);  // none handed out twice
}

TEST(X25519, AgreementAndRefusals) {
  X25519KeyPair a = X25519KeyPair::generate(), b = X25519KeyPair::generate();
  EXPECT_NE(a.public_key(), b.public_key());
  auto ab = a.derive(b.public_key()), ba = b.derive(a.public_key());
  ASSERT_TRUE(ab.is_ok() && ba.is_ok());
  EXPECT_EQ(to_hex(ab.value().span()), to_hex(ba.value().span()));
  // Same private key, same public key.
  auto a2 = X25519KeyPair::from_private(pattern(32, 9)), a3 = X25519KeyPair::from_private(pattern(32, 9));
  ASSERT_TRUE(a2.is_ok() && a3.is_ok());
  EXPECT_EQ(a2.value().public_key(), a3.value().public_key());
  // Lengths and the all-zero (low-order) peer key.
  EXPECT_EQ(X25519KeyPair::from_private(pattern(31, 0)).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(a.derive(pattern(31, 0)).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(a.derive(pattern(33, 0)).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(a.derive(Bytes(32, 0)).status().code(), StatusCode::kCrypto);
  Bytes one(32, 0);
  one[0] = 1;  // u = 1 has order 1 too
  EXPECT_EQ(a.derive(one).status().code(), StatusCode::kCrypto);
  // A key pair is reusable for many derivations, and a moved-from one refuses cleanly.
  auto again = a.derive(b.public_key());
  ASSERT_TRUE(again.is_ok());
  EXPECT_EQ(to_hex(again.value().span()), to_hex(ab.value().span()));
  X25519KeyPair moved = std::move(a);
  EXPECT_TRUE(moved.derive(b.public_key()).is_ok());
  EXPECT_EQ(a.derive(b.public_key()).status().code(), StatusCode::kInvalidArgument);  // NOLINT(bugprone-use-after-move)
}

// ---- ECDSA encodings ----

TEST(Ecdsa, EncodingConversionsAndHostileInput) {
  // raw → DER → raw keeps the value, with leading zero bytes restored.
  Bytes raw(64, 0);
  raw[31] = 5;                  // r = 5
  raw[32] = 0x80, raw[63] = 1;  // s has its top bit set: DER needs a 0x00 pad
  auto der = ecdsa_raw_to_der(raw);
  ASSERT_TRUE(der.is_ok());
  EXPECT_EQ(to_hex(der.value()).substr(0, 12), "302602010502");  // SEQUENCE, INTEGER 5, INTEGER ...
  auto back = ecdsa_der_to_raw(der.value(), 32);
  ASSERT_TRUE(back.is_ok());
  EXPECT_EQ(back.value(), raw);
  // Does not fit a 16-byte field.
  EXPECT_EQ(ecdsa_der_to_raw(der.value(), 16).status().code(), StatusCode::kCrypto);
  // Negative r (INTEGER -1) is refused, not turned into +1.
  EXPECT_EQ(ecdsa_der_to_raw(from_hex("30060201ff020101").value(), 32).status().code(), StatusCode::kCrypto);
  // Trailing bytes, truncation, garbage.
  Bytes trailing = der.value();
  trailing.push_back(0);
  EXPECT_EQ(ecdsa_der_to_raw(trailing, 32).status().code(), StatusCode::kCrypto);
  EXPECT_EQ(ecdsa_der_to_raw(ByteSpan(der.value()).first(10), 32).status().code(), StatusCode::kCrypto);
  EXPECT_EQ(ecdsa_der_to_raw({}, 32).status().code(), StatusCode::kCrypto);
  EXPECT_EQ(ecdsa_raw_to_der({}).status().code(), StatusCode::kCrypto);
  EXPECT_EQ(ecdsa_raw_to_der(pattern(63, 0)).status().code(), StatusCode::kCrypto);
  EXPECT_EQ(ecdsa_der_to_raw(Bytes(100000, 0x30), 32).status().code(), StatusCode::kCrypto);

  // Public keys: wrong length, off-curve point, malformed SPKI.
  EXPECT_EQ(PublicKey::from_ec_point(Curve::kP256, pattern(63, 0)).status().code(), StatusCode::kInvalidArgument);
  Bytes off_curve(65, 0);
  off_curve[0] = 0x04;
  off_curve[64] = 1;  // (0, 1) is not on P-256
  EXPECT_EQ(PublicKey::from_ec_point(Curve::kP256, off_curve).status().code(), StatusCode::kCrypto);
  EXPECT_EQ(PublicKey::from_spki_der(pattern(91, 0x30)).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(PublicKey::from_spki_der({}).status().code(), StatusCode::kInvalidArgument);
  // No key, or a key that is not EC (here an X25519 SPKI, which parses fine): INVALID_ARGUMENT.
  EXPECT_EQ(ecdsa_verify(PublicKey(), HashAlg::kSha256, {}, raw, SignatureFormat::kRaw).code(),
            StatusCode::kInvalidArgument);
  Bytes x25519_spki = from_hex("302a300506032b656e032100").value();
  const Bytes point = pattern(32, 1);
  x25519_spki.insert(x25519_spki.end(), point.begin(), point.end());
  auto not_ec = PublicKey::from_spki_der(x25519_spki);
  ASSERT_TRUE(not_ec.is_ok()) << not_ec.status().to_string();
  EXPECT_EQ(ecdsa_verify(not_ec.value(), HashAlg::kSha256, {}, der.value(), SignatureFormat::kDer).code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace cml::crypto
