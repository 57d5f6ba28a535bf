#include "base/status.h"

#include <gtest/gtest.h>

namespace cml {
namespace {

Result<int> parse_positive(int v) {
  if (v <= 0) return invalid_argument("not positive: " + std::to_string(v));
  return v;
}

Result<int> doubled(int v) {
  CML_ASSIGN_OR_RETURN(int x, parse_positive(v));
  return 2 * x;
}

Status check_even(int v) {
  CML_RETURN_IF_ERROR(parse_positive(v).status());
  if (v % 2) return policy_error("odd");
  return ok_status();
}

TEST(Status, OkIsCheapAndPrintable) {
  Status s;
  EXPECT_TRUE(s.is_ok());
  EXPECT_EQ(s.code(), StatusCode::kOk);
  EXPECT_EQ(s.to_string(), "OK");
  EXPECT_TRUE(s.message().empty());
}

TEST(Status, ErrorCarriesCodeMessageAndContext) {
  Status s = timeout_error("read took too long").with_context("stage 2");
  EXPECT_FALSE(s.is_ok());
  EXPECT_EQ(s.code(), StatusCode::kTimeout);
  EXPECT_EQ(s.to_string(), "TIMEOUT: stage 2: read took too long");
}

TEST(Result, PropagatesValuesAndErrors) {
  EXPECT_EQ(*doubled(4), 8);
  auto bad = doubled(-1);
  ASSERT_FALSE(bad.is_ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(check_even(3).code(), StatusCode::kPolicy);
  EXPECT_EQ(check_even(-3).code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(check_even(2).is_ok());
  EXPECT_EQ(bad.value_or(7), 7);
}

TEST(ResultDeathTest, ValueOfErrorAborts) {
  auto bad = doubled(-1);
  EXPECT_DEATH((void)bad.value(), "not positive");
}

}  // namespace
}  // namespace cml
