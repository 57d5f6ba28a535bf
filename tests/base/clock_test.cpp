#include "base/clock.h"

#include <gtest/gtest.h>

namespace cml {
namespace {

TEST(ParseTime, UnixAndRfc3339Agree) {
  EXPECT_EQ(to_unix_seconds(*parse_time("1695038400")), 1695038400);
  EXPECT_EQ(to_unix_seconds(*parse_time("2023-09-18T12:00:00Z")), 1695038400);
  EXPECT_EQ(to_unix_seconds(*parse_time("2023-09-18T14:00:00+02:00")), 1695038400);
  EXPECT_EQ(to_unix_seconds(*parse_time("2023-09-18T12:00:00.250Z")), 1695038400);
  EXPECT_EQ(to_unix_seconds(*parse_time("1970-01-01T00:00:00Z")), 0);
  EXPECT_EQ(format_rfc3339(from_unix_seconds(1695038400)), "2023-09-18T12:00:00Z");
}

TEST(ParseTime, RejectsGarbage) {
  for (const char* bad :
       {"", "yesterday", "2023-13-01T00:00:00Z", "2023-09-18T12:00:00", "2023-09-18T12:00:00Zx", "99999999999999999"})
    EXPECT_FALSE(parse_time(bad).is_ok()) << bad;
}

TEST(Deadline, ExpiresAndClamps) {
  auto d = Deadline::after(std::chrono::milliseconds(-1));
  EXPECT_TRUE(d.expired());
  EXPECT_EQ(d.remaining(), Duration::zero());
  EXPECT_FALSE(Deadline::never().expired());
  EXPECT_FALSE(Deadline::after(std::chrono::hours(1)).expired());
}

}  // namespace
}  // namespace cml
