// ThreadPool: a fixed set of worker threads for data-parallel kernels (parallel_for).
//
// The calling thread takes part in the work, so a pool of size 1 has no workers and runs everything
// inline. Workers spin briefly between jobs (kernels arrive back to back during a decode step) and then
// sleep on a condition variable, so an idle pool costs no CPU.
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
  // Splits [0, n) into contiguous chunks (a few per thread) whose boundaries are multiples of `align`
  // (except the end) and calls fn(begin, end) for each non-empty chunk, in any order and thread.
  void parallel_for(int64_t n, int64_t align, const std::function<void(int64_t begin, int64_t end)>& fn);

 private:
  void worker_loop();
  void work_on_current();

  int size_;
  std::vector<std::thread> workers_;
  std::mutex call_mu_;  // serialises callers

  std::mutex mu_;
  std::condition_variable cv_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<bool> stop_{false};
  const std::function<void(int64_t)>* job_ = nullptr;
  int64_t job_tasks_ = 0;
  std::atomic<int64_t> next_task_{0};
  std::atomic<int> pending_workers_{0};
};

}  // namespace cml::tensor
