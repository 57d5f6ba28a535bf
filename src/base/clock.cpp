#include "base/clock.h"

#include <cctype>
#include <ctime>
#include <string>

namespace cml {

namespace {
class SystemClock final : public Clock {
 public:
  WallTime now() const override { return std::chrono::system_clock::now(); }
};

// Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's civil algorithm).
int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

bool read_digits(std::string_view s, size_t pos, size_t n, int& out) {
  if (pos + n > s.size()) return false;
  out = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (!std::isdigit(static_cast<unsigned char>(s[i]))) return false;
    out = out * 10 + (s[i] - '0');
  }
  return true;
}
}  // namespace

const Clock& Clock::system() {
  static const SystemClock kClock;
  return kClock;
}

Duration Deadline::remaining() const {
  if (is_never()) return Duration::max();
  auto now = std::chrono::steady_clock::now();
  return now >= at_ ? Duration::zero() : std::chrono::duration_cast<Duration>(at_ - now);
}

WallTime from_unix_seconds(int64_t s) { return WallTime(std::chrono::seconds(s)); }
int64_t to_unix_seconds(WallTime t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

Result<WallTime> parse_time(std::string_view t) {
  if (t.empty()) return invalid_argument("empty time");
  bool all_digits = true;
  for (char c : t) all_digits = all_digits && std::isdigit(static_cast<unsigned char>(c));
  if (all_digits) {
    if (t.size() > 12) return invalid_argument("unix time out of range: " + std::string(t));
    return from_unix_seconds(std::stoll(std::string(t)));
  }
  int y, mo, d, h, mi, s;
  if (!read_digits(t, 0, 4, y) || t.size() < 19 || t[4] != '-' || !read_digits(t, 5, 2, mo) || t[7] != '-' ||
      !read_digits(t, 8, 2, d) || (t[10] != 'T' && t[10] != 't' && t[10] != ' ') || !read_digits(t, 11, 2, h) ||
      t[13] != ':' || !read_digits(t, 14, 2, mi) || t[16] != ':' || !read_digits(t, 17, 2, s))
    return invalid_argument("time is neither Unix seconds nor RFC 3339: " + std::string(t));
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60)
    return invalid_argument("time field out of range: " + std::string(t));
  size_t pos = 19;
  if (pos < t.size() && t[pos] == '.') {
    ++pos;
    while (pos < t.size() && std::isdigit(static_cast<unsigned char>(t[pos]))) ++pos;
  }
  int64_t offset = 0;
  if (pos < t.size() && (t[pos] == 'Z' || t[pos] == 'z')) {
    ++pos;
  } else if (pos < t.size() && (t[pos] == '+' || t[pos] == '-')) {
    int oh, om;
    if (!read_digits(t, pos + 1, 2, oh) || pos + 3 >= t.size() || t[pos + 3] != ':' || !read_digits(t, pos + 4, 2, om))
      return invalid_argument("bad UTC offset in " + std::string(t));
    offset = (t[pos] == '+' ? 1 : -1) * (oh * 3600 + om * 60);
    pos += 6;
  } else {
    return invalid_argument("RFC 3339 time needs 'Z' or an offset: " + std::string(t));
  }
  if (pos != t.size()) return invalid_argument("trailing characters in time " + std::string(t));
  int64_t secs = days_from_civil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d)) * 86400 + h * 3600 +
                 mi * 60 + s - offset;
  return from_unix_seconds(secs);
}

std::string format_rfc3339(WallTime t) {
  std::time_t tt = static_cast<std::time_t>(to_unix_seconds(t));
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace cml
