// Micro-benchmarks of the tensor kernels on GPT-2 124M shapes: decode GEMV (F32/BF16/F16, both weight
// layouts) and prefill GEMM, reported as bytes of weights streamed per second beside a plain streaming
// read of the same bytes (the bound).
#include <benchmark/benchmark.h>

#include <vector>

#include "tensor/half.h"
#include "tensor/linear.h"
#include "tensor/membw.h"
#include "tensor/tensor.h"
#include "tensor/thread_pool.h"

namespace cml::tensor {
namespace {

// The weights in a Tensor's 64-byte aligned storage, as a model holds them (a std::vector of this size
// would start 16 bytes into a cache line: glibc's header in front of an mmap'd block).
struct Weights {
  Tensor storage;
  WeightView view;
  size_t nbytes() const { return storage.nbytes(); }
};

Weights make(DType dt, int64_t out, int64_t in, bool transposed) {
  Weights w;
  w.storage = Tensor::uninitialized(dt, {out, in});
  std::vector<float> f(static_cast<size_t>(out * in));  // normal floats (denormals would cost microcode assists)
  for (size_t i = 0; i < f.size(); ++i)
    f[i] = 0.02f * (static_cast<float>((i * 2654435761u) >> 22 & 1023) / 512.0f - 1.0f) + 1e-3f;
  convert_from_f32(f.data(), dt, w.storage.mutable_raw(), static_cast<int64_t>(f.size()));
  w.view = WeightView{dt, w.storage.raw(), out, in, transposed};
  return w;
}

void BM_Gemv(benchmark::State& st) {
  const DType dt = static_cast<DType>(st.range(0));
  const bool transposed = st.range(1) != 0;
  const int64_t rows = st.range(2);
  const int threads = static_cast<int>(st.range(3));
  // The four GPT-2 block matrices, 7.1M weights: larger than L2, read like a decode step reads them.
  std::vector<Weights> ws;
  for (auto [o, i] : {std::pair<int64_t, int64_t>{2304, 768}, {768, 768}, {3072, 768}, {768, 3072}}) {
    for (int rep = 0; rep < 4; ++rep) ws.push_back(make(dt, o, i, transposed));
  }
  ThreadPool pool(threads);
  std::vector<float> x(static_cast<size_t>(rows * 3072), 0.5f), y(static_cast<size_t>(rows * 3072));
  size_t bytes = 0;
  for (const auto& w : ws) bytes += w.nbytes();
  for (auto _ : st) {
    for (const auto& w : ws) linear_gemv(w.view, x.data(), w.view.in, rows, y.data(), w.view.out, &pool);
    benchmark::ClobberMemory();
  }
  st.SetBytesProcessed(static_cast<int64_t>(st.iterations() * bytes));
}
BENCHMARK(BM_Gemv)
    ->ArgNames({"dtype", "transposed", "rows", "threads"})
    ->Args({0, 0, 1, 1})
    ->Args({0, 1, 1, 1})
    ->Args({2, 0, 1, 1})
    ->Args({2, 1, 1, 1})
    ->Args({1, 0, 1, 1})
    ->Args({0, 0, 1, 2})
    ->Args({0, 1, 1, 2})
    ->Args({2, 0, 1, 2})
    ->Args({2, 1, 1, 2})
    ->Args({0, 1, 4, 2})
    ->Args({2, 1, 4, 2})
    ->Args({0, 1, 8, 2})
    ->Args({0, 1, 4, 1})
    ->Args({0, 1, 8, 1})
    ->Args({0, 0, 8, 1})
    ->UseRealTime();

// The output head of GPT-2 124M (the token embedding, tied: [50257, 768], dot form), which the last
// stage multiplies once per decode step for every sequence it batches.
void BM_GemvHead(benchmark::State& st) {
  const DType dt = static_cast<DType>(st.range(0));
  const int64_t rows = st.range(1);
  Weights w = make(dt, 50257, 768, false);
  ThreadPool pool(1);
  std::vector<float> x(static_cast<size_t>(rows * 768), 0.5f), y(static_cast<size_t>(rows * 50257));
  for (auto _ : st) {
    linear_gemv(w.view, x.data(), 768, rows, y.data(), 50257, &pool);
    benchmark::ClobberMemory();
  }
  st.SetBytesProcessed(static_cast<int64_t>(st.iterations() * w.nbytes()));
}
BENCHMARK(BM_GemvHead)
    ->ArgNames({"dtype", "rows"})
    ->Args({0, 1})
    ->Args({0, 4})
    ->Args({0, 8})
    ->Args({2, 4})
    ->UseRealTime();

void BM_StreamRead(benchmark::State& st) {
  const int threads = static_cast<int>(st.range(0));
  std::vector<uint8_t> buf(static_cast<size_t>(st.range(1)) << 20, 1);
  MemRegion r{buf.data(), buf.size()};
  ThreadPool pool(threads);
  for (auto _ : st) benchmark::DoNotOptimize(stream_read_seconds(std::span(&r, 1), &pool));
  st.SetBytesProcessed(static_cast<int64_t>(st.iterations() * buf.size()));
}
BENCHMARK(BM_StreamRead)->ArgNames({"threads", "MiB"})->Args({1, 56})->Args({2, 56})->Args({2, 512})->UseRealTime();

void BM_PrefillGemm(benchmark::State& st) {
  const DType dt = static_cast<DType>(st.range(0));
  const int threads = static_cast<int>(st.range(1));
  Weights w = make(dt, 3072, 768, true);
  ThreadPool pool(threads);
  std::vector<float> x(128 * 768, 0.5f), y(128 * 3072);
  for (auto _ : st) linear_blas(w.view, x.data(), 768, 128, y.data(), 3072, &pool);
  st.counters["GFLOPS"] = benchmark::Counter(2.0 * 128 * 768 * 3072, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_PrefillGemm)->ArgNames({"dtype", "threads"})->Args({0, 1})->Args({0, 2})->Args({2, 2})->UseRealTime();

}  // namespace
}  // namespace cml::tensor
