#include "tensor/membw.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <vector>

#include "tensor/half.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace cml::tensor {

namespace {

#if defined(__x86_64__)
__attribute__((target("avx512f"))) double sum_avx512(const uint8_t* p, size_t n) {
  __m512i a0 = _mm512_setzero_si512(), a1 = _mm512_setzero_si512(), a2 = _mm512_setzero_si512(),
          a3 = _mm512_setzero_si512();
  size_t i = 0;
  for (; i + 256 <= n; i += 256) {
    a0 = _mm512_xor_si512(a0, _mm512_loadu_si512(p + i));
    a1 = _mm512_xor_si512(a1, _mm512_loadu_si512(p + i + 64));
    a2 = _mm512_xor_si512(a2, _mm512_loadu_si512(p + i + 128));
    a3 = _mm512_xor_si512(a3, _mm512_loadu_si512(p + i + 192));
  }
  const __m512i x = _mm512_xor_si512(_mm512_xor_si512(a0, a1), _mm512_xor_si512(a2, a3));
  uint64_t r = static_cast<uint64_t>(_mm512_reduce_add_epi64(x));
  for (; i < n; ++i) r += p[i];
  return static_cast<double>(r & 0xffff);
}
#endif

double sum_portable(const uint8_t* p, size_t n) {
  uint64_t a = 0, b = 0;
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    uint64_t u, v;
    __builtin_memcpy(&u, p + i, 8);
    __builtin_memcpy(&v, p + i + 8, 8);
    a ^= u;
    b ^= v;
  }
  for (; i < n; ++i) a += p[i];
  return static_cast<double>((a ^ b) & 0xffff);
}

double sum_bytes(const uint8_t* p, size_t n) {
#if defined(__x86_64__)
  if (cpu_features().avx512) return sum_avx512(p, n);
#endif
  return sum_portable(p, n);
}

}  // namespace

double stream_read_seconds(std::span<const MemRegion> regions, ThreadPool* pool, double* checksum) {
  const auto t0 = std::chrono::steady_clock::now();
  std::atomic<uint64_t> acc{0};
  for (const MemRegion& r : regions) {
    const auto* p = static_cast<const uint8_t*>(r.data);
    auto work = [&](int64_t b, int64_t e) {
      acc.fetch_add(static_cast<uint64_t>(sum_bytes(p + b, static_cast<size_t>(e - b))), std::memory_order_relaxed);
    };
    if (pool == nullptr || r.bytes < (1u << 16)) {
      work(0, static_cast<int64_t>(r.bytes));
    } else {
      pool->parallel_for(static_cast<int64_t>(r.bytes), 4096, work);
    }
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (checksum) *checksum = static_cast<double>(acc.load());
  return s;
}

double stream_read_gbps(std::span<const MemRegion> regions, ThreadPool* pool, int repeats) {
  size_t bytes = 0;
  for (const auto& r : regions) bytes += r.bytes;
  double best = 1e300, sink = 0;
  for (int i = 0; i < std::max(1, repeats); ++i) {
    double c = 0;
    best = std::min(best, stream_read_seconds(regions, pool, &c));
    sink += c;
  }
  if (sink < 0) return 0;  // never: keeps the checksum alive
  return static_cast<double>(bytes) / best / 1e9;
}

}  // namespace cml::tensor
