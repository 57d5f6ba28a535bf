#include "base/spin.h"

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <thread>

namespace cml {

std::chrono::nanoseconds AdaptiveSpin::default_max() {
  static const std::chrono::nanoseconds value = [] {
    int64_t us = 300;
    if (const char* env = std::getenv("CML_SPIN_US")) {
      int64_t v = 0;
      const char* end = env + std::strlen(env);
      auto [p, ec] = std::from_chars(env, end, v);
      if (ec == std::errc() && p == end && v >= 0 && v <= 10'000) us = v;
    }
    return std::chrono::nanoseconds(us * 1000);
  }();
  return value;
}

namespace {

// Runnable threads right now, from the fourth field of /proc/loadavg ("running/total"); -1 if unknown.
int runnable_threads() {
  const int fd = ::open("/proc/loadavg", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  char buf[128];
  const ssize_t n = ::read(fd, buf, sizeof(buf) - 1);
  ::close(fd);
  if (n <= 0) return -1;
  buf[n] = 0;
  // "0.20 0.06 0.02 2/311 1234": skip three fields.
  const char* p = buf;
  for (int field = 0; field < 3; ++field) {
    p = std::strchr(p, ' ');
    if (p == nullptr) return -1;
    ++p;
  }
  int running = 0;
  auto [end, ec] = std::from_chars(p, buf + n, running);
  if (ec != std::errc() || *end != '/') return -1;
  return running;
}

}  // namespace

void AdaptiveSpin::yield_cpu() {
  sched_yield();
}

bool AdaptiveSpin::machine_busy() {
  static std::atomic<int64_t> next_check_ns{0};
  static std::atomic<bool> busy{false};
  static const int cpus = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const int64_t now =
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
  int64_t due = next_check_ns.load(std::memory_order_relaxed);
  if (now >= due && next_check_ns.compare_exchange_strong(due, now + 10'000'000, std::memory_order_relaxed)) {
    const int r = runnable_threads();
    // The count includes the calling thread, which is about to wait.
    busy.store(r > cpus, std::memory_order_relaxed);
  }
  return busy.load(std::memory_order_relaxed);
}

}  // namespace cml
