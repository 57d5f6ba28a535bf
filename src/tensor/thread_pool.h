// ThreadPool: a fixed set of worker threads for data-parallel kernels (parallel_for).
//
// The calling thread takes part in the work, so a pool of size 1 has no workers and runs everything
// inline. Between jobs a worker spins for a while and then sleeps on a condition variable, so an idle
// pool costs no CPU. The spin is an AdaptiveSpin (base/spin.h, at most 100 µs here): it covers the gaps
// the worker has seen. Kernels of a local decode step arrive within microseconds of each other (spinning
// saves the wake-up), whereas with the weight products offloaded a job comes once per remote round trip,
// milliseconds apart, and the worker soon does not spin at all.
//
// A worker takes part in a job only if it arrives while the caller is still working on it: the caller
// never waits for a worker that has not started yet (e.g. one still waking up), only for those running
// a task.
//
// Thread safety: parallel_for may be called from any thread; concurrent calls are serialised.
// The callback must not call parallel_for on the same pool.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "base/spin.h"

namespace cml::tensor {

class ThreadPool {
 public:
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return size_; }

  // Calls fn(task) for task in [0, tasks), spread over the pool; returns when all are done.
  void run(int64_t tasks, const std::function<void(int64_t task)>& fn);
  // Splits [0, n) into contiguous chunks (`per_thread` per thread, default a few, so that a thread that
  // starts late leaves its share to the others) whose boundaries are multiples of `align` (except the
  // end) and calls fn(begin, end) for each non-empty chunk, in any order and thread.
  void parallel_for(int64_t n, int64_t align, const std::function<void(int64_t begin, int64_t end)>& fn,
                    int per_thread = 4);

 private:
  // state_: the job generation (bits 33..63), whether the current job is closed to late workers (bit 32)
  // and how many workers are taking part in it (bits 0..31). One word, so that a worker's joining and the
  // caller's closing cannot cross.
  static constexpr uint64_t kClosed = uint64_t(1) << 32;
  static constexpr uint64_t kGeneration = uint64_t(1) << 33;
  static constexpr uint64_t kJoined = kClosed - 1;
  static constexpr int64_t kMaxSpinNs = 100'000;

  void worker_loop();
  void work_on_current();
  // Spins and then sleeps until the generation differs from `seen`; returns the state.
  uint64_t wait_for_job(uint64_t seen, AdaptiveSpin& spin);

  int size_;
  std::vector<std::thread> workers_;
  std::mutex call_mu_;  // serialises callers

  std::mutex mu_;  // with cv_: sleeping workers
  std::condition_variable cv_;
  std::atomic<uint64_t> state_{kClosed};
  std::atomic<int> sleepers_{0};
  std::atomic<bool> stop_{false};
  const std::function<void(int64_t)>* job_ = nullptr;
  int64_t job_tasks_ = 0;
  std::atomic<int64_t> next_task_{0};
  std::atomic<int64_t> posted_ns_{0};  // steady-clock time the current job was posted
};

}  // namespace cml::tensor
