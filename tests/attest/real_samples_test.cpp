// Every real sample in ../shared/testdata: verifies at its pinned time (SOURCES.md), fails at a time outside
// its certificates' validity, and fails with a signature reason when one bit of its signed body or of its
// signature is flipped.
#include <gtest/gtest.h>

#include "attest/nitro.h"
#include "attest/sev_snp.h"
#include "attest/tdx.h"
#include "support/test_support.h"

namespace cml::attest {
namespace {

struct RealSample {
  const char* name;
  EvidenceType type;
  const char* evidence;
  const char* vek;  // SNP endorsement certificate (carried in the certificate table)
  bool vlek;
  const char* pinned;
  const char* outside;
};

const RealSample kSamples[] = {
    {"nitro_ga", EvidenceType::kNitro, "nitro/evervault_ga_2023-09-18.cose", nullptr, false, "1695050165",
     "2023-09-18T18:00:00Z"},
    {"nitro_beta", EvidenceType::kNitro, "nitro/evervault_beta_2022-10-13.cose", nullptr, false, "2022-10-13T08:58:20Z",
     "2022-10-13T08:50:00Z"},
    {"nitro_debug", EvidenceType::kNitro, "nitro/evervault_debug_mode_2022-10-12.cose", nullptr, false,
     "2022-10-12T13:50:20Z", "2022-10-13T13:50:20Z"},
    {"nitro_indefmap", EvidenceType::kNitro, "nitro/base_nitrovalidator_2026-01-03_indefmap.cose", nullptr, false,
     "1767472867", "2026-01-04T20:41:07Z"},
    {"snp_gosevguest", EvidenceType::kSevSnp, "sev-snp/gosevguest_milan_report.bin",
     "sev-snp/gosevguest_milan_vcek.der", false, "2022-09-24T01:00:00Z", "2029-10-01T00:00:00Z"},
    {"snp_virtee", EvidenceType::kSevSnp, "sev-snp/virtee_milan_report.bin", "sev-snp/virtee_milan_vcek.der", false,
     "2024-01-01T00:00:00Z", "2023-04-01T00:00:00Z"},
    {"snp_trustee_vlek", EvidenceType::kSevSnp, "sev-snp/trustee_test-vlek-report.bin", "sev-snp/trustee_test-vlek.der",
     true, "2025-06-01T00:00:00Z", "2025-12-11T00:00:00Z"},
    {"tdx_dcapqvl_v4", EvidenceType::kTdx, "tdx/dcapqvl_tdx_quote", nullptr, false, "1752919234",
     "2033-01-01T00:00:00Z"},
    {"tdx_dcapqvl_v5_outdated", EvidenceType::kTdx, "tdx/dcapqvl_tdx_quote_outdated", nullptr, false, "1774003274",
     "2053-01-01T00:00:00Z"},
    {"tdx_gotdx_v4", EvidenceType::kTdx, "tdx/gotdxguest_quote_v4_SPR_E4.dat", nullptr, false, "2023-07-01T01:00:00Z",
     "2053-01-01T00:00:00Z"},
    {"tdx_gotdx_v5", EvidenceType::kTdx, "tdx/gotdxguest_quote_v5.dat", nullptr, false, "2026-02-03T01:00:00Z",
     "2053-01-01T00:00:00Z"},
    {"tdx_gce_ccel", EvidenceType::kTdx, "tdx/gotdxguest_ccel/cos-113-tdx-quote.dat", nullptr, false,
     "2025-01-01T00:00:00Z", "2024-07-01T00:00:00Z"},
};

class RealSampleTest : public ::testing::TestWithParam<RealSample> {
 protected:
  Bytes document() {
    const RealSample& s = GetParam();
    auto ev = cml::testing::testdata_path(s.evidence);
    if (!ev) return {};
    Bytes doc = cml::testing::read_testdata(*ev);
    if (s.vek) {
      auto vp = cml::testing::testdata_path(s.vek);
      if (!vp) return {};
      SnpCertTable t;
      (s.vlek ? t.vlek : t.vcek) = cml::testing::read_testdata(*vp);
      doc = make_snp_document(doc, t);
    }
    return doc;
  }
  std::unique_ptr<Verifier> verifier() {
    switch (GetParam().type) {
      case EvidenceType::kNitro:
        return std::make_unique<NitroVerifier>();
      case EvidenceType::kSevSnp:
        return std::make_unique<SnpVerifier>();
      default:
        return std::make_unique<TdxVerifier>();
    }
  }
  // Offsets of one signed-body byte and one signature byte.
  std::pair<size_t, size_t> body_and_signature(const Bytes& doc) {
    switch (GetParam().type) {
      case EvidenceType::kNitro: {
        auto d = parse_nitro_document(doc).value();
        auto it = std::search(doc.begin(), doc.end(), d.pcrs.begin()->second.begin(), d.pcrs.begin()->second.end());
        return {static_cast<size_t>(it - doc.begin()) + 3, doc.size() - 7};
      }
      case EvidenceType::kSevSnp:
        return {0x90 + 3, 0x2A0 + 3};
      default: {
        auto q = parse_tdx_quote(doc).value();
        return {q.signed_part.size() - 64 - 10, q.signed_part.size() + 4 + 3};  // report data; signature r
      }
    }
  }
};

TEST_P(RealSampleTest, VerifiesAtPinnedTimeOnly) {
  CML_TESTDATA_OR_SKIP(path, GetParam().evidence);
  const Bytes doc = document();
  ASSERT_FALSE(doc.empty());
  auto ok = verifier()->verify(doc, parse_time(GetParam().pinned).value());
  CML_ASSERT_OK(ok);
  EXPECT_EQ(ok->document_hash, crypto::sha256(doc));
  auto outside = verifier()->verify(doc, parse_time(GetParam().outside).value());
  ASSERT_FALSE(outside.is_ok());
  EXPECT_EQ(outside.status().code(), StatusCode::kAttestation);
  const std::string& m = outside.status().message();
  EXPECT_TRUE(m.find("expired") != std::string::npos || m.find("not yet valid") != std::string::npos) << m;
}

TEST_P(RealSampleTest, FlippedBodyOrSignatureBitFails) {
  CML_TESTDATA_OR_SKIP(path, GetParam().evidence);
  const Bytes doc = document();
  const auto [body, sig] = body_and_signature(doc);
  for (size_t off : {body, sig}) {
    Bytes d = doc;
    d[off] ^= 0x10;
    auto c = verifier()->verify(d, parse_time(GetParam().pinned).value());
    ASSERT_FALSE(c.is_ok()) << off;
    EXPECT_EQ(c.status().code(), StatusCode::kAttestation) << c.status().to_string();
    EXPECT_NE(c.status().message().find("signature"), std::string::npos) << c.status().message();
  }
}

INSTANTIATE_TEST_SUITE_P(Samples, RealSampleTest, ::testing::ValuesIn(kSamples),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace cml::attest
