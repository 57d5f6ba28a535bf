// open_platform_provider / pinned_verifier: a missing device or configfs directory fails at open with the
// path in the message; a present configfs directory yields the provider of the right type.
#include "attest/platform.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "support/test_support.h"

namespace cml::attest {
namespace {

PlatformPaths missing() {
  PlatformPaths p;
  p.nsm_device = "/nonexistent/cml-test/nsm";
  p.tsm_root = "/nonexistent/cml-test/tsm/report";
  p.sev_guest = "/nonexistent/cml-test/sev-guest";
  return p;
}

TEST(PlatformProvider, MissingNsmDeviceNamesIt) {
  auto r = open_platform_provider(EvidenceType::kNitro, missing());
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(r.status().message().find("/nonexistent/cml-test/nsm"), std::string::npos) << r.status().to_string();
}

TEST(PlatformProvider, MissingConfigfsNamesItForTdx) {
  auto r = open_platform_provider(EvidenceType::kTdx, missing());
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(r.status().message().find("/nonexistent/cml-test/tsm/report"), std::string::npos);
}

TEST(PlatformProvider, SnpNamesBothConfigfsAndFallbackDevice) {
  auto r = open_platform_provider(EvidenceType::kSevSnp, missing());
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(r.status().message().find("/nonexistent/cml-test/tsm/report"), std::string::npos);
  EXPECT_NE(r.status().message().find("/nonexistent/cml-test/sev-guest"), std::string::npos);
}

TEST(PlatformProvider, PresentConfigfsDirectoryOpens) {
  const auto dir = std::filesystem::temp_directory_path() / ("cml-platform-test-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  PlatformPaths p = missing();
  p.tsm_root = dir.string();
  for (auto t : {EvidenceType::kSevSnp, EvidenceType::kTdx}) {
    auto r = open_platform_provider(t, p);
    ASSERT_TRUE(r.is_ok()) << r.status().to_string();
    EXPECT_EQ((*r)->type(), t);
  }
  std::filesystem::remove_all(dir);
}

TEST(PlatformProvider, MockHasNoPlatformProviderOrPinnedRoots) {
  EXPECT_EQ(open_platform_provider(EvidenceType::kMock).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(pinned_verifier(EvidenceType::kMock).status().code(), StatusCode::kInvalidArgument);
}

TEST(PinnedVerifier, EachRealTypeHasOne) {
  for (auto t : {EvidenceType::kNitro, EvidenceType::kSevSnp, EvidenceType::kTdx}) {
    auto v = pinned_verifier(t);
    ASSERT_TRUE(v.is_ok()) << v.status().to_string();
    EXPECT_EQ((*v)->type(), t);
  }
}

}  // namespace
}  // namespace cml::attest
