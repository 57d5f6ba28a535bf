#include "tensor/thread_pool.h"

#include <chrono>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace cml::tensor {

namespace {
inline void cpu_relax() {
#if defined(__x86_64__)
  _mm_pause();
#endif
}
}  // namespace

ThreadPool::ThreadPool(int threads) : size_(threads < 1 ? 1 : threads) {
  for (int i = 1; i < size_; ++i) workers_.emplace_back([this] { worker_loop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    generation_.fetch_add(1);
  }
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

void ThreadPool::worker_loop() {
  uint64_t seen = 0;
  for (;;) {
    // Spin for a short while: kernels of one decode step follow each other within microseconds.
    const auto spin_until = std::chrono::steady_clock::now() + std::chrono::microseconds(100);
    int spins = 0;
    while (generation_.load(std::memory_order_acquire) == seen) {
      cpu_relax();
      if (++spins % 64 == 0 && std::chrono::steady_clock::now() > spin_until) {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return generation_.load() != seen; });
        break;
      }
    }
    seen = generation_.load(std::memory_order_acquire);
    if (stop_) return;
    work_on_current();
    pending_workers_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

void ThreadPool::run(int64_t tasks, const std::function<void(int64_t)>& fn) {
  if (tasks <= 0) return;
  if (size_ == 1 || tasks == 1) {
    for (int64_t t = 0; t < tasks; ++t) fn(t);
    return;
  }
  std::lock_guard<std::mutex> call_lock(call_mu_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    job_ = &fn;
    job_tasks_ = tasks;
    next_task_.store(0);
    pending_workers_.store(static_cast<int>(workers_.size()));
    generation_.fetch_add(1, std::memory_order_acq_rel);
  }
  cv_.notify_all();
  work_on_current();
  // Workers that have not started yet find no task left; wait for those still running one. Yield after a
  // short spin: on a loaded machine the worker may be waiting for this very core.
  for (int spins = 0; pending_workers_.load(std::memory_order_acquire) != 0; ++spins) {
    if (spins < 4096) {
      cpu_relax();
    } else {
      std::this_thread::yield();
    }
  }
  job_ = nullptr;
}

void ThreadPool::parallel_for(int64_t n, int64_t align, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  if (align < 1) align = 1;
  const int64_t units = (n + align - 1) / align;
  // More chunks than threads: a thread that starts late (the machine is busy) leaves its share to the
  // others instead of holding everyone up.
  const int64_t parts = std::min<int64_t>(size_ == 1 ? 1 : 4 * size_, units);
  run(parts, [&](int64_t p) {
    const int64_t ub = units * p / parts, ue = units * (p + 1) / parts;
    const int64_t b = ub * align, e = std::min(n, ue * align);
    if (b < e) fn(b, e);
  });
}

}  // namespace cml::tensor
