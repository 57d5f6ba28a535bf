// Spin-then-block waiting for short hand-offs between threads.
//
// Waking a blocked thread costs 5–30 µs on a virtual machine (futex wake, scheduler, IPI), which is
// more than a whole 1 KiB encrypted round trip. A waiter that expects its data within microseconds
// first polls a cheap readiness check for a bounded time and only then blocks. The budget adapts to
// what the waiter sees: after a block that ended within the maximum budget the next spin covers that
// wait (twice its length); after a longer block the budget halves, so a waiter whose data takes
// milliseconds (a worker's GEMM, a model step) soon spins not at all and costs no CPU.
//
// The maximum (300 µs) must exceed what waking a sleeping thread costs (100–200 µs on the VMs measured):
// a wait that ended in a sleep counts its wake-up too, and with a smaller maximum a chain of threads
// that once fell asleep (each waiting for the previous one's wake-up) never spins again, every wait
// then being longer than the maximum.
//
// While the machine is oversubscribed (more runnable threads than CPUs) a busy poll would take the CPU
// from the thread it waits for, so the spinner yields its CPU between polls instead (sched_yield). A
// chain of more threads than cores (orchestrator → stages → return) then passes data without wake-ups.
//
// Thread safety: one AdaptiveSpin per waiting thread (for example, per stream direction).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>

#include "base/clock.h"

namespace cml {

class AdaptiveSpin {
 public:
  // The process-wide maximum: 300 µs, or CML_SPIN_US from the environment (0 turns spinning off).
  static std::chrono::nanoseconds default_max();

  explicit AdaptiveSpin(std::chrono::nanoseconds max = default_max()) : max_ns_(max.count()), budget_ns_(max.count()) {}

  // Polls `ready` until it returns true (then true) or the current budget is spent (then false;
  // the caller blocks and reports the whole wait with record_wait). `ready` runs at least once.
  template <typename Ready>
  bool spin(Ready&& ready) {
    if (ready()) return true;
    if (budget_ns_ <= 0) return false;
    // On a crowded machine the spinner gives its CPU away between polls, so the thread it waits for
    // (or any other) runs, and the hand-off still needs no wake-up.
    const bool crowded = machine_busy();
    const auto start = std::chrono::steady_clock::now();
    for (;;) {
      if (crowded) {
        yield_cpu();
        if (ready()) return true;
      } else {
        for (int k = 0; k < 16; ++k) {
          pause();
          if (ready()) return true;
        }
      }
      if (std::chrono::steady_clock::now() - start >= std::chrono::nanoseconds(budget_ns_)) return false;
    }
  }

  // Waits under `lk` until pred() holds (true) or the deadline passes (false): first spins while
  // `events` is unchanged — every notifier bumps it, under the lock, whenever pred() may have become
  // true — then sleeps on `cv`, and learns from how long the wait took.
  template <typename Pred>
  bool wait(std::unique_lock<std::mutex>& lk, std::condition_variable& cv, const std::atomic<uint64_t>& events,
            Deadline deadline, Pred pred) {
    if (pred()) return true;
    if (deadline.expired()) return false;  // a poll: nothing to wait for
    const uint64_t seen = events.load(std::memory_order_relaxed);
    lk.unlock();
    const auto t0 = std::chrono::steady_clock::now();
    const bool news = spin([&] { return events.load(std::memory_order_acquire) != seen; });
    lk.lock();
    if (news && pred()) return true;
    if (deadline.is_never()) {
      cv.wait(lk, pred);
    } else if (!cv.wait_until(lk, deadline.at(), pred)) {
      return false;
    }
    record_wait(std::chrono::steady_clock::now() - t0);
    return true;
  }

  // After a spin that failed and a blocking wait: `waited` is the time from the start of the spin
  // to the wake-up.
  void record_wait(std::chrono::nanoseconds waited) {
    const int64_t w = waited.count();
    if (w < max_ns_) {
      budget_ns_ = w * 2 < max_ns_ ? w * 2 : max_ns_;
    } else {
      budget_ns_ /= 2;
      if (budget_ns_ < 500) budget_ns_ = 0;
    }
  }

  std::chrono::nanoseconds budget() const { return std::chrono::nanoseconds(budget_ns_); }
  std::chrono::nanoseconds max() const { return std::chrono::nanoseconds(max_ns_); }

  // A new maximum (the budget starts at it). Nothing changes while spinning is turned off for the
  // process (CML_SPIN_US=0).
  void set_max(std::chrono::nanoseconds max) {
    if (default_max().count() == 0) return;
    max_ns_ = max.count();
    budget_ns_ = max_ns_;
  }

  // True when more threads are runnable than there are CPUs, the caller included (sampled from
  // /proc/loadavg at most every 10 ms): a spinner would then take the CPU from the thread it waits for,
  // so it yields between polls.
  static bool machine_busy();

 private:
  static void pause() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
  }

  static void yield_cpu();

  int64_t max_ns_;
  int64_t budget_ns_;
};

}  // namespace cml
