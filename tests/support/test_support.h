// Shared test helpers: locating ../shared/testdata and waiting on conditions with deadlines.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>

#include "base/bytes.h"
#include "base/status.h"

namespace cml::testing {

// The shared test-data folder (CML_TESTDATA_DIR from CTest, else the CMake default), or nullopt.
std::optional<std::string> testdata_dir();

// Path of `relative` under the test-data folder; GTEST_SKIPs the calling test with a message when the
// folder (or the named subfolder) is absent. Use as: CML_TESTDATA_OR_SKIP(path, "nitro/x.cose");
#define CML_TESTDATA_OR_SKIP(var, relative)                                    \
  std::string var;                                                             \
  do {                                                                         \
    auto cml_td_ = ::cml::testing::testdata_path(relative);                    \
    if (!cml_td_)                                                              \
      GTEST_SKIP() << "shared test data not found (" << (relative)             \
                   << "); set CML_TESTDATA_DIR to the shared/testdata folder"; \
    var = *cml_td_;                                                            \
  } while (0)
std::optional<std::string> testdata_path(const std::string& relative);

// Reads a test-data file (aborts the test on failure).
Bytes read_testdata(const std::string& path);

// The lowest CPU number the calling thread may not run on (it may or may not exist): for tests of
// placement settings that must be refused.
int unusable_cpu();

// Polls `cond` until true or the timeout passes; never a bare sleep in tests.
bool wait_for(const std::function<bool()>& cond, std::chrono::milliseconds timeout);

// The status of a Status or of a Result, for the macros below. They copy it out while the expression's
// temporaries live (`CML_ASSERT_OK(f()[0].status)` must not keep a reference into a destroyed vector).
inline const Status& status_of(const Status& s) {
  return s;
}
template <typename T>
const Status& status_of(const Result<T>& r) {
  return r.status();
}

}  // namespace cml::testing

#define CML_ASSERT_OK(expr)                                       \
  do {                                                            \
    const ::cml::Status cml_s_ = ::cml::testing::status_of(expr); \
    ASSERT_TRUE(cml_s_.is_ok()) << cml_s_.to_string();            \
  } while (0)
#define CML_EXPECT_OK(expr)                                       \
  do {                                                            \
    const ::cml::Status cml_s_ = ::cml::testing::status_of(expr); \
    EXPECT_TRUE(cml_s_.is_ok()) << cml_s_.to_string();            \
  } while (0)
