// ECDSA P-256/SHA-256 and P-384/SHA-384 verification against every Wycheproof vector, DER and raw
// (IEEE P1363 r‖s) encodings. Valid signatures must verify, invalid ones must be refused with CRYPTO
// (these files have no "acceptable" vectors; BER encodings are invalid there and refused here).
#include <gtest/gtest.h>

#include "crypto/ecdsa.h"
#include "wycheproof.h"

namespace cml::crypto {
namespace {

using testing::wycheproof::Expected;
using testing::wycheproof::hex;
using testing::wycheproof::Json;
using testing::wycheproof::label;
using testing::wycheproof::Tally;

struct EcdsaFile {
  const char* test_name;
  const char* name;
  Curve curve;
  const char* curve_name;
  HashAlg alg;
  const char* sha;
  SignatureFormat format;
  size_t field_size;
};

// Names the file in CTest/GoogleTest output instead of dumping the struct's bytes.
void PrintTo(const EcdsaFile& f, std::ostream* os) {
  *os << f.name;
}

class EcdsaWycheproof : public ::testing::TestWithParam<EcdsaFile> {};

TEST_P(EcdsaWycheproof, EveryVector) {
  const EcdsaFile& f = GetParam();
  CML_WYCHEPROOF_LOAD(root, f.name);
  Tally tally;
  for (const auto& group : root["testGroups"]) {
    ASSERT_EQ(group["publicKey"]["curve"].get<std::string>(), f.curve_name);
    ASSERT_EQ(group["sha"].get<std::string>(), f.sha);
    // The same key two ways: DER SubjectPublicKeyInfo and the SEC1 uncompressed point.
    auto spki = PublicKey::from_spki_der(hex(group["publicKeyDer"]));
    ASSERT_TRUE(spki.is_ok()) << spki.status().to_string();
    auto point = PublicKey::from_ec_point(f.curve, hex(group["publicKey"]["uncompressed"]));
    ASSERT_TRUE(point.is_ok()) << point.status().to_string();
    for (const auto& t : group["tests"]) {
      SCOPED_TRACE(label(t));
      const Bytes msg = hex(t["msg"]), sig = hex(t["sig"]);
      const Status by_spki = ecdsa_verify(spki.value(), f.alg, msg, sig, f.format);
      const Status by_point = ecdsa_verify(point.value(), f.alg, msg, sig, f.format);
      const Status by_digest = ecdsa_verify_digest(spki.value(), hash(f.alg, msg), sig, f.format);
      switch (testing::wycheproof::expected(t)) {
        case Expected::kValid: {
          EXPECT_TRUE(by_spki.is_ok()) << by_spki.to_string();
          EXPECT_TRUE(by_point.is_ok()) << by_point.to_string();
          EXPECT_TRUE(by_digest.is_ok()) << by_digest.to_string();
          // The other encoding of the same signature verifies too.
          if (f.format == SignatureFormat::kDer) {
            auto raw = ecdsa_der_to_raw(sig, f.field_size);
            ASSERT_TRUE(raw.is_ok()) << raw.status().to_string();
            EXPECT_TRUE(ecdsa_verify(spki.value(), f.alg, msg, raw.value(), SignatureFormat::kRaw).is_ok());
          } else {
            auto der = ecdsa_raw_to_der(sig);
            ASSERT_TRUE(der.is_ok()) << der.status().to_string();
            EXPECT_TRUE(ecdsa_verify(spki.value(), f.alg, msg, der.value(), SignatureFormat::kDer).is_ok());
          }
          break;
        }
        case Expected::kInvalid:
          EXPECT_EQ(by_spki.code(), StatusCode::kCrypto) << by_spki.to_string();
          EXPECT_EQ(by_point.code(), StatusCode::kCrypto) << by_point.to_string();
          EXPECT_EQ(by_digest.code(), StatusCode::kCrypto) << by_digest.to_string();
          break;
        case Expected::kAcceptable:
          ADD_FAILURE() << "no acceptable ECDSA vectors expected; decide if added";
          break;
      }
      tally.count(t);
    }
  }
  EXPECT_GT(tally.valid, 0u);
  EXPECT_GT(tally.invalid, 0u);
  testing::wycheproof::expect_all_checked(f.name, root, tally);
}

std::string file_test_name(const ::testing::TestParamInfo<EcdsaFile>& p) {
  return p.param.test_name;
}

INSTANTIATE_TEST_SUITE_P(
    Files, EcdsaWycheproof,
    ::testing::Values(EcdsaFile{"P256Sha256Der", "ecdsa_secp256r1_sha256_test.json", Curve::kP256, "secp256r1",
                                HashAlg::kSha256, "SHA-256", SignatureFormat::kDer, 32},
                      EcdsaFile{"P256Sha256Raw", "ecdsa_secp256r1_sha256_p1363_test.json", Curve::kP256, "secp256r1",
                                HashAlg::kSha256, "SHA-256", SignatureFormat::kRaw, 32},
                      EcdsaFile{"P384Sha384Der", "ecdsa_secp384r1_sha384_test.json", Curve::kP384, "secp384r1",
                                HashAlg::kSha384, "SHA-384", SignatureFormat::kDer, 48},
                      EcdsaFile{"P384Sha384Raw", "ecdsa_secp384r1_sha384_p1363_test.json", Curve::kP384, "secp384r1",
                                HashAlg::kSha384, "SHA-384", SignatureFormat::kRaw, 48}),
    file_test_name);
}  // namespace
}  // namespace cml::crypto
