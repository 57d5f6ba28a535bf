// Time: deadlines on the steady clock; verifiers take wall-clock `now` as an explicit parameter.
// Thread safety: Clock implementations must be callable from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <string_view>

#include "base/status.h"

namespace cml {

using SteadyTime = std::chrono::steady_clock::time_point;
using WallTime = std::chrono::system_clock::time_point;
using Duration = std::chrono::nanoseconds;

// Injectable wall clock (for tests and verification at pinned times).
class Clock {
 public:
  virtual ~Clock() = default;
  virtual WallTime now() const = 0;
  static const Clock& system();
};

class FixedClock final : public Clock {
 public:
  explicit FixedClock(WallTime t) : t_(t) {}
  WallTime now() const override { return t_; }

 private:
  WallTime t_;
};

// A point on the steady clock by which an operation must finish.
class Deadline {
 public:
  static Deadline after(Duration d) { return Deadline(std::chrono::steady_clock::now() + d); }
  static Deadline never() { return Deadline(SteadyTime::max()); }
  explicit Deadline(SteadyTime at) : at_(at) {}

  SteadyTime at() const { return at_; }
  bool expired() const { return std::chrono::steady_clock::now() >= at_; }
  bool is_never() const { return at_ == SteadyTime::max(); }
  // Remaining time, clamped at zero.
  Duration remaining() const;

 private:
  SteadyTime at_;
};

WallTime from_unix_seconds(int64_t s);
int64_t to_unix_seconds(WallTime t);
// Unix seconds ("1700000000") or RFC 3339 ("2023-09-18T12:00:00Z", offsets allowed).
Result<WallTime> parse_time(std::string_view text);
// RFC 3339 in UTC with seconds precision.
std::string format_rfc3339(WallTime t);

}  // namespace cml
