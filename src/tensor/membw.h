// Streaming read bandwidth: how fast this machine reads a set of memory regions (e.g. a model's weights)
// with the given threads. The bound that decode speed is measured against (decode streams every weight
// once per token).
//
// Thread safety: any thread; uses the pool.
#pragma once

#include <cstddef>
#include <span>
#include <utility>

#include "tensor/thread_pool.h"

namespace cml::tensor {

struct MemRegion {
  const void* data = nullptr;
  size_t bytes = 0;
};

// Reads every byte of the regions once (vector loads, summed so the reads cannot be optimised away) and
// returns the elapsed seconds. `checksum` receives the sum (any value; it only defeats the optimiser).
double stream_read_seconds(std::span<const MemRegion> regions, ThreadPool* pool, double* checksum = nullptr);

// Best of `repeats` passes, in GB/s (1e9 bytes per second).
double stream_read_gbps(std::span<const MemRegion> regions, ThreadPool* pool, int repeats = 3);

}  // namespace cml::tensor
