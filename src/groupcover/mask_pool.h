// MaskPool: one-time additive masks for one obfuscated matrix, with their products precomputed.
//
// Each mask r (in floats, uniform on a 2^-23 grid in [−1, 1), fresh CSPRNG output) is paired with
// u = W''·r. Masks are produced in batches — R[batch, in] drawn, U = R·W''ᵀ computed as ONE GEMM — by
// refill(), which the backend's background thread calls when the pool runs low. take() hands out masks
// exactly once: consumed entries are wiped and never handed out again. When the pool cannot cover a
// request, take() draws the missing masks synchronously (a "miss", counted) rather than reuse one.
// top_up() brings the pool to exactly `capacity` masks (a partial batch if needed), so that a caller can
// pay, inside a measured window, for exactly the masks the window consumed.
//
// Thread safety: take(), refill() and the accessors may be called from different threads.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <vector>

#include "groupcover/bundle.h"

namespace cml::groupcover {

struct MaskPoolStats {
  uint64_t taken = 0;      // masks handed out
  uint64_t misses = 0;     // of those, drawn synchronously because the pool was empty
  uint64_t refills = 0;    // batch GEMMs run by refill()
  uint64_t generated = 0;  // masks produced (pool + misses)
  uint64_t storage = 0;    // batch storages allocated (the rest of the batches reuse used-up ones)
};

class MaskPool {
 public:
  MaskPool(const WorkerMatrix& w2, int64_t capacity, int64_t batch);
  ~MaskPool();

  // Writes n masks to r[n, in] and their products to u[n, out]. Returns wants_refill() after the take, so
  // that the caller wakes the refill thread only when there is a batch to make (a wake-up per call costs
  // more TEE CPU than the masking itself).
  bool take(int64_t n, float* r, float* u);
  // In-place take: when the next n masks lie in one batch, points r[n, in] and u[n, out] into the pool's
  // storage (no copy) and counts them as taken; they stay valid until release(), which wipes them. When
  // they do not (n == 0 or they span batches), r == u == nullptr and nothing is taken: use take().
  // One consumer at a time: release a lease before the next lease() or take().
  struct Lease {
    const float* r = nullptr;
    const float* u = nullptr;
    int64_t n = 0;
    bool wants_refill = false;  // as take() returns
  };
  Lease lease(int64_t n);
  void release(const Lease& l);
  // True when the pool, counting masks being produced, has room for a whole batch.
  bool wants_refill() const;
  // Produces one batch (one GEMM) and appends it; returns false if the pool has no room for it.
  bool refill();
  // Produces the masks missing to `capacity` (one GEMM on the calling thread), then waits for any refill
  // in progress on another thread: on return the pool holds exactly `capacity` masks (unless take() ran
  // meanwhile). Returns the number of masks this call produced.
  int64_t top_up();
  int64_t available() const;
  int64_t capacity() const { return capacity_; }
  MaskPoolStats stats() const;
  int64_t in() const { return w2_.in; }
  int64_t out() const { return w2_.out; }

 private:
  struct Batch {
    std::vector<float> r, u;
    int64_t n = 0, next = 0;
  };
  void generate(int64_t n, std::vector<float>& r, std::vector<float>& u);
  // A batch with storage from a used-up batch when there is one (already wiped, already paged in: fresh
  // allocations of this size are fresh mmap()s whose page faults cost more than the masks' arithmetic).
  Batch new_batch(int64_t n);
  void append(Batch b);

  WorkerMatrix w2_;
  int64_t capacity_, batch_;
  mutable std::mutex mu_;
  std::condition_variable produced_;
  std::deque<Batch> batches_;
  std::vector<Batch> spare_;  // used-up batches (wiped) whose storage refill() reuses
  int64_t available_ = 0;
  int64_t in_flight_ = 0;  // masks being produced outside the lock (counted against capacity)
  std::atomic<uint64_t> taken_{0}, misses_{0}, refills_{0}, generated_{0}, storage_{0};
};

}  // namespace cml::groupcover
