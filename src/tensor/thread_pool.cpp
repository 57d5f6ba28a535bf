#include "tensor/thread_pool.h"

#include <algorithm>
#include <chrono>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace cml::tensor {

namespace {

using Clock = std::chrono::steady_clock;

inline void cpu_relax() {
#if defined(__x86_64__)
  _mm_pause();
#endif
}

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
}

}  // namespace

ThreadPool::ThreadPool(int threads) : size_(threads < 1 ? 1 : threads) {
  for (int i = 1; i < size_; ++i) workers_.emplace_back([this] { worker_loop(); });
}

ThreadPool::~ThreadPool() {
  stop_ = true;
  state_.fetch_add(kGeneration);
  { std::lock_guard<std::mutex> lock(mu_); }  // a worker is either before its check or waiting
  cv_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::work_on_current() {
  const auto& fn = *job_;
  for (;;) {
    const int64_t t = next_task_.fetch_add(1);
    if (t >= job_tasks_) break;
    fn(t);
  }
}

uint64_t ThreadPool::wait_for_job(uint64_t seen, AdaptiveSpin& spin) {
  const int64_t idle_from = now_ns();
  uint64_t s = 0;
  if (spin.spin([&] {
        s = state_.load(std::memory_order_acquire);
        return s / kGeneration != seen;
      }))
    return s;
  {
    std::unique_lock<std::mutex> lock(mu_);
    // sleepers_ and state_ are both sequentially consistent: either run() sees this worker counted and
    // notifies (under mu_), or this check sees run()'s new generation.
    sleepers_.fetch_add(1);
    cv_.wait(lock, [&] { return state_.load() / kGeneration != seen; });
    sleepers_.fetch_sub(1);
  }
  // The gap counts to when the job was posted, not to when this worker noticed it (a sleeper notices
  // late), so that short gaps are recognised as such after a sleep too.
  const int64_t gap = posted_ns_.load(std::memory_order_relaxed) - idle_from;
  spin.record_wait(std::chrono::nanoseconds(std::max<int64_t>(gap, 0)));
  return state_.load(std::memory_order_acquire);
}

void ThreadPool::worker_loop() {
  uint64_t seen = 0;
  AdaptiveSpin spin{std::chrono::nanoseconds(kMaxSpinNs)};
  for (;;) {
    uint64_t s = wait_for_job(seen, spin);
    if (stop_) return;
    seen = s / kGeneration;
    // Join unless the caller has finished (closed) this job or a newer one has started: then the next
    // round of the loop looks at the newer one.
    bool joined = false;
    while (s / kGeneration == seen && (s & kClosed) == 0) {
      if (state_.compare_exchange_weak(s, s + 1, std::memory_order_acq_rel, std::memory_order_acquire)) {
        joined = true;
        break;
      }
    }
    if (!joined) continue;
    work_on_current();
    state_.fetch_sub(1, std::memory_order_release);
  }
}

void ThreadPool::run(int64_t tasks, const std::function<void(int64_t)>& fn) {
  if (tasks <= 0) return;
  if (size_ == 1 || tasks == 1) {
    for (int64_t t = 0; t < tasks; ++t) fn(t);
    return;
  }
  std::lock_guard<std::mutex> call_lock(call_mu_);
  job_ = &fn;
  job_tasks_ = tasks;
  next_task_.store(0, std::memory_order_relaxed);
  posted_ns_.store(now_ns(), std::memory_order_relaxed);
  // A new generation, open, no worker joined yet (the previous job's workers have all left).
  state_.store((state_.load(std::memory_order_relaxed) / kGeneration + 1) * kGeneration);
  if (sleepers_.load() > 0) {
    { std::lock_guard<std::mutex> lock(mu_); }  // a sleeper is either before its check or waiting
    cv_.notify_all();
  }
  work_on_current();
  // Close the job to workers that have not joined yet and wait for those running a task. Yield after a
  // short spin: on a loaded machine a joined worker may be waiting for this very core.
  state_.fetch_or(kClosed, std::memory_order_acq_rel);
  for (int spins = 0; (state_.load(std::memory_order_acquire) & kJoined) != 0; ++spins) {
    if (spins < 4096) {
      cpu_relax();
    } else {
      std::this_thread::yield();
    }
  }
  job_ = nullptr;
}

void ThreadPool::parallel_for(int64_t n, int64_t align, const std::function<void(int64_t, int64_t)>& fn,
                              int per_thread) {
  if (n <= 0) return;
  if (align < 1) align = 1;
  const int64_t units = (n + align - 1) / align;
  // More chunks than threads (by default): a thread that starts late (the machine is busy) leaves its
  // share to the others instead of holding everyone up.
  const int64_t parts = std::min<int64_t>(size_ == 1 ? 1 : std::max(1, per_thread) * size_, units);
  run(parts, [&](int64_t p) {
    const int64_t ub = units * p / parts, ue = units * (p + 1) / parts;
    const int64_t b = ub * align, e = std::min(n, ue * align);
    if (b < e) fn(b, e);
  });
}

}  // namespace cml::tensor
