// Reading Project Wycheproof vector files (the shared testdata/wycheproof folder) in crypto tests.
//
// Every test that walks a file counts what it checked in a Tally and ends with expect_all_checked(),
// which fails unless the count equals the file's own numberOfTests, so a test can never pass having
// silently checked nothing.
#pragma once

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "base/bytes.h"
#include "support/test_support.h"

namespace cml::testing::wycheproof {

using Json = nlohmann::json;

// Parses a vector file; ADD_FAILURE and nullopt when it is missing, unreadable or not JSON.
std::optional<Json> load(const std::string& path);

// A hex field as bytes ("" is empty); ADD_FAILURE on bad hex.
Bytes hex(const Json& field);

bool has_flag(const Json& test, std::string_view flag);

// "tcId 12 (comment) [Flag1,Flag2]": names a vector in failure messages.
std::string label(const Json& test);

enum class Expected { kValid, kInvalid, kAcceptable };
Expected expected(const Json& test);

// What a test checked, by the vector's expected result.
struct Tally {
  size_t valid = 0;
  size_t invalid = 0;
  size_t acceptable = 0;
  // Vectors whose expected result we deliberately do not follow, each asserted to fail in the one way
  // the test documents (say which in the test).
  size_t documented_deviations = 0;

  void count(const Json& test);
  size_t total() const { return valid + invalid + acceptable; }
};

// Prints "[wycheproof] <name>: N vectors checked (...)", records it as test properties, and fails unless
// total() equals the file's numberOfTests and is non-zero.
void expect_all_checked(const std::string& name, const Json& root, const Tally& tally);

}  // namespace cml::testing::wycheproof

// Loads wycheproof/<file> into `var` (a const Json&). Skips the test only when the shared test-data
// folder has no wycheproof/ directory; a missing file inside it is a failure.
#define CML_WYCHEPROOF_LOAD(var, file)                                              \
  CML_TESTDATA_OR_SKIP(var##_dir_, "wycheproof");                                   \
  auto var##_loaded_ = ::cml::testing::wycheproof::load(var##_dir_ + "/" + (file)); \
  ASSERT_TRUE(var##_loaded_.has_value()) << (file);                                 \
  const ::cml::testing::wycheproof::Json& var = *var##_loaded_
