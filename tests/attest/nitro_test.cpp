#include "attest/nitro.h"

#include <gtest/gtest.h>
#include <openssl/x509.h>

#include <algorithm>

#include "attest/roots.h"
#include "support/test_support.h"

namespace cml::attest {
namespace {

using cml::testing::read_testdata;

WallTime at(int64_t s) {
  return from_unix_seconds(s);
}

// Pinned times from nitro/SOURCES.md (inside each leaf certificate's ~3 h window).
constexpr int64_t kGaTime = 1695050165;     // 2023-09-18T15:16:05Z
constexpr int64_t kBetaTime = 1665651500;   // 2022-10-13T08:58:20Z
constexpr int64_t kDebugTime = 1665582620;  // 2022-10-12T13:50:20Z
constexpr int64_t kIndefTime = 1767472867;  // 2026-01-03T20:41:07Z

TEST(Nitro, GaSampleVerifiesAtPinnedTime) {
  CML_TESTDATA_OR_SKIP(path, "nitro/evervault_ga_2023-09-18.cose");
  Bytes doc = read_testdata(path);
  NitroVerifier v;
  auto c = v.verify(doc, at(kGaTime));
  CML_ASSERT_OK(c);
  EXPECT_EQ(c->type, EvidenceType::kNitro);
  EXPECT_EQ(c->details.at("module_id"), "i-0918f6c55e3b61d89-enc018aa8b8e2285d13");
  EXPECT_EQ(to_hex(c->measurements.at("pcr3")).substr(0, 8), "4a9329d6");
  EXPECT_EQ(to_hex(c->measurements.at("pcr4")).substr(0, 8), "d0531b14");
  EXPECT_TRUE(c->debug);  // PCR0-2 zero
  EXPECT_EQ(c->nonce.size(), 256u);
  EXPECT_TRUE(c->public_key.empty());
  EXPECT_EQ(c->user_data.size(), 91u);
  EXPECT_EQ(c->document_hash, crypto::sha256(doc));
  ASSERT_TRUE(c->issued_at.has_value());
  EXPECT_EQ(to_unix_seconds(*c->issued_at), 1695049410);
}

TEST(Nitro, UserDataBindsTheTlsCertificateKey) {
  CML_TESTDATA_OR_SKIP(path, "nitro/evervault_ga_2023-09-18.cose");
  CML_TESTDATA_OR_SKIP(cert_path, "nitro/evervault_ga_2023-09-18_bound_tls_cert.der");
  auto c = NitroVerifier().verify(read_testdata(path), at(kGaTime));
  CML_ASSERT_OK(c);
  auto cert = crypto::Certificate::from_der(read_testdata(cert_path));
  CML_ASSERT_OK(cert);
  EVP_PKEY* k = X509_get0_pubkey(cert->get());
  unsigned char* spki = nullptr;
  int n = i2d_PUBKEY(k, &spki);
  ASSERT_GT(n, 0);
  Bytes der(spki, spki + n);
  OPENSSL_free(spki);
  EXPECT_EQ(c->user_data, der);
}

TEST(Nitro, BetaSampleVerifiesAndCarriesPcrs) {
  CML_TESTDATA_OR_SKIP(path, "nitro/evervault_beta_2022-10-13.cose");
  auto c = NitroVerifier().verify(read_testdata(path), at(kBetaTime));
  CML_ASSERT_OK(c);
  EXPECT_EQ(to_hex(c->measurements.at("pcr0")).substr(0, 8), "f4d48b81");
  EXPECT_EQ(to_hex(c->measurements.at("pcr8")).substr(0, 8), "8790eb3c");
  EXPECT_FALSE(c->debug);
}

TEST(Nitro, IndefiniteLengthPayloadWithNullFieldsVerifies) {
  CML_TESTDATA_OR_SKIP(path, "nitro/base_nitrovalidator_2026-01-03_indefmap.cose");
  auto c = NitroVerifier().verify(read_testdata(path), at(kIndefTime));
  CML_ASSERT_OK(c);
  EXPECT_TRUE(c->public_key.empty());
  EXPECT_TRUE(c->nonce.empty());
  EXPECT_EQ(to_hex(c->user_data), "69553adc61d6e9fcdecbe1ea49bb2b52a60238e0");
  EXPECT_EQ(to_hex(c->measurements.at("pcr0")).substr(0, 8), "4b8d4cf2");
}

TEST(Nitro, DebugSampleVerifiesButPolicyRefusesIt) {
  CML_TESTDATA_OR_SKIP(path, "nitro/evervault_debug_mode_2022-10-12.cose");
  auto c = NitroVerifier().verify(read_testdata(path), at(kDebugTime));
  CML_ASSERT_OK(c);  // crypto is fine
  EXPECT_TRUE(c->debug);
  EXPECT_EQ(as_string_view(c->public_key), "my super secret key");
  EXPECT_EQ(as_string_view(c->user_data), "hello, world!");
  Policy p;
  p.expected_measurements["pcr0"] = c->measurements.at("pcr0");
  Status s = appraise(*c, p, at(kDebugTime));
  EXPECT_EQ(s.code(), StatusCode::kPolicy);
  EXPECT_NE(s.message().find("debug"), std::string::npos);
}

TEST(Nitro, FailsOutsideLeafValidity) {
  CML_TESTDATA_OR_SKIP(path, "nitro/evervault_ga_2023-09-18.cose");
  Bytes doc = read_testdata(path);
  for (int64_t t : {kGaTime + 4 * 3600, int64_t(1700000000), kGaTime - 3600}) {
    auto c = NitroVerifier().verify(doc, at(t));
    ASSERT_FALSE(c.is_ok()) << t;
    EXPECT_EQ(c.status().code(), StatusCode::kAttestation);
    EXPECT_TRUE(c.status().message().find("expired") != std::string::npos ||
                c.status().message().find("not yet valid") != std::string::npos)
        << c.status().message();
  }
}

TEST(Nitro, MaxAgeEnforced) {
  CML_TESTDATA_OR_SKIP(path, "nitro/evervault_ga_2023-09-18.cose");
  NitroVerifierOptions o;
  o.max_age = std::chrono::seconds(300);
  auto c = NitroVerifier(o).verify(read_testdata(path), at(kGaTime));  // 755 s after the timestamp
  ASSERT_FALSE(c.is_ok());
  EXPECT_NE(c.status().message().find("older"), std::string::npos);
  o.max_age = std::chrono::seconds(900);
  CML_EXPECT_OK(NitroVerifier(o).verify(read_testdata(path), at(kGaTime)));
}

TEST(Nitro, FlippedBitsFailWithTheRightReason) {
  CML_TESTDATA_OR_SKIP(path, "nitro/evervault_ga_2023-09-18.cose");
  const Bytes doc = read_testdata(path);
  auto parsed = parse_nitro_document(doc);
  CML_ASSERT_OK(parsed);
  auto find = [&](const Bytes& needle) {
    auto it = std::search(doc.begin(), doc.end(), needle.begin(), needle.end());
    return static_cast<size_t>(it - doc.begin());
  };
  // Signature (last 96 bytes of the document).
  {
    Bytes d = doc;
    d[d.size() - 10] ^= 0x01;
    auto c = NitroVerifier().verify(d, at(kGaTime));
    ASSERT_FALSE(c.is_ok());
    EXPECT_NE(c.status().message().find("COSE_Sign1 signature does not verify"), std::string::npos);
  }
  // Signed body: a PCR byte.
  {
    Bytes d = doc;
    size_t off = find(parsed->pcrs.at(3));
    ASSERT_LT(off, d.size());
    d[off + 5] ^= 0x01;
    auto c = NitroVerifier().verify(d, at(kGaTime));
    ASSERT_FALSE(c.is_ok());
    EXPECT_NE(c.status().message().find("COSE_Sign1 signature does not verify"), std::string::npos);
  }
  // Each certificate: a bit in its signature value (the last bytes of the DER).
  std::vector<Bytes> certs = parsed->cabundle;
  certs.push_back(parsed->certificate);
  for (size_t i = 1; i < certs.size(); ++i) {
    Bytes d = doc;
    size_t off = find(certs[i]);
    ASSERT_LT(off, d.size());
    d[off + certs[i].size() - 3] ^= 0x01;
    auto c = NitroVerifier().verify(d, at(kGaTime));
    ASSERT_FALSE(c.is_ok()) << i;
    EXPECT_EQ(c.status().code(), StatusCode::kAttestation);
    EXPECT_NE(c.status().message().find("signature of certificate"), std::string::npos) << c.status().message();
  }
  // The root in cabundle.
  {
    Bytes d = doc;
    size_t off = find(certs[0]);
    d[off + certs[0].size() - 3] ^= 0x01;
    auto c = NitroVerifier().verify(d, at(kGaTime));
    ASSERT_FALSE(c.is_ok());
    EXPECT_NE(c.status().message().find("wrong root"), std::string::npos);
  }
}

TEST(Nitro, WrongRootRefused) {
  CML_TESTDATA_OR_SKIP(path, "nitro/evervault_ga_2023-09-18.cose");
  NitroVerifierOptions o;
  o.roots.push_back(roots::intel_sgx_root_ca());
  auto c = NitroVerifier(o).verify(read_testdata(path), at(kGaTime));
  ASSERT_FALSE(c.is_ok());
  EXPECT_NE(c.status().message().find("wrong root"), std::string::npos);
}

TEST(Nitro, MeasurementMismatchAndBindingAreCaught) {
  CML_TESTDATA_OR_SKIP(path, "nitro/evervault_beta_2022-10-13.cose");
  auto c = NitroVerifier().verify(read_testdata(path), at(kBetaTime));
  CML_ASSERT_OK(c);
  Policy p;
  p.expected_measurements["pcr0"] = Bytes(48, 0xaa);
  Status s = appraise(*c, p, at(kBetaTime));
  EXPECT_EQ(s.code(), StatusCode::kPolicy);
  EXPECT_NE(s.message().find("pcr0 mismatch"), std::string::npos);
  p.expected_measurements["pcr0"] = c->measurements.at("pcr0");
  EXPECT_TRUE(appraise(*c, p, at(kBetaTime)).is_ok());
  // This document binds no public key: the handshake's binding check must fail.
  Status b = check_binding(*c, Bytes(32, 1), c->nonce);
  EXPECT_EQ(b.code(), StatusCode::kAttestation);
}

TEST(Nitro, TruncationsNeverVerify) {
  CML_TESTDATA_OR_SKIP(path, "nitro/evervault_beta_2022-10-13.cose");
  const Bytes doc = read_testdata(path);
  for (size_t n = 0; n < doc.size(); n += 97) {
    auto c = NitroVerifier().verify(ByteSpan(doc).first(n), at(kBetaTime));
    EXPECT_FALSE(c.is_ok());
  }
}

}  // namespace
}  // namespace cml::attest
