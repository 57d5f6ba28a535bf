// MaskPool: one-time additive masks for one obfuscated matrix, with their products precomputed.
//
// Each mask r (in floats, uniform on a 2^-23 grid in [−1, 1), fresh CSPRNG output) is paired with
// u = W''·r. Masks are produced in batches — R[batch, in] drawn, U = R·W''ᵀ computed as ONE GEMM — by
// refill(), which the backend's background thread calls when the pool runs low. take() hands out masks
// exactly once: consumed entries are wiped and never handed out again. When the pool cannot cover a
// request, take() draws the missing masks synchronously (a "miss", counted) rather than reuse one.
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
};

class MaskPool {
 public:
  MaskPool(const WorkerMatrix& w2, int64_t capacity, int64_t batch);
  ~MaskPool();

  // Writes n masks to r[n, in] and their products to u[n, out].
  void take(int64_t n, float* r, float* u);
  // True when the pool holds fewer than capacity − batch masks (room for a whole batch).
  bool wants_refill() const;
  // Produces one batch (one GEMM) and appends it; returns false if the pool is full.
  bool refill();
  int64_t available() const;
  MaskPoolStats stats() const;
  int64_t in() const { return w2_.in; }
  int64_t out() const { return w2_.out; }

 private:
  struct Batch {
    std::vector<float> r, u;
    int64_t n = 0, next = 0;
  };
  void generate(int64_t n, std::vector<float>& r, std::vector<float>& u);

  WorkerMatrix w2_;
  int64_t capacity_, batch_;
  mutable std::mutex mu_;
  std::deque<Batch> batches_;
  int64_t available_ = 0;
  std::atomic<uint64_t> taken_{0}, misses_{0}, refills_{0}, generated_{0};
};

}  // namespace cml::groupcover
