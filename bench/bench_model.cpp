// Micro-benchmarks of the model module: one decode step of a GPT-2 124M-shaped model (synthetic F32
// weights, all layers and the head) for 1, 4 and 8 sequences at once — what a pipeline stage's batched
// step costs against a single sequence's.
#include <benchmark/benchmark.h>

#include <vector>

#include "model/executor.h"
#include "model/synthetic.h"

namespace {

using cml::model::Executor;
using cml::model::StepInput;

void BM_DecodeStep(benchmark::State& state) {
  const int64_t rows = state.range(0);
  static const std::shared_ptr<const cml::model::WeightFile> file =
      cml::model::make_synthetic_gpt2(cml::model::gpt2_124m_spec(cml::tensor::DType::kF32));
  cml::model::ExecutorOptions eo;
  eo.threads = static_cast<int>(state.range(1));
  eo.max_sequences = rows;
  eo.transpose_head = true;  // as `cml stage` serving several sequences
  eo.max_context = 256;
  auto ex = Executor::create(file, cml::model::LayerRange{}, eo);
  if (!ex.is_ok()) return state.SkipWithError(ex.status().to_string().c_str());
  std::vector<int32_t> tokens(static_cast<size_t>(rows));
  std::vector<float> out;
  int64_t pos = 0;
  auto restart = [&]() {
    for (int64_t s = 0; s < rows; ++s) {
      (void)(*ex)->drop_sequence(static_cast<cml::model::SeqId>(s));
      if (!(*ex)->start_sequence(static_cast<cml::model::SeqId>(s)).is_ok()) return false;
    }
    pos = 0;
    return true;
  };
  if (!restart()) return state.SkipWithError("start_sequence failed");
  for (auto _ : state) {
    if (pos == 128) {  // keep the attention context in the range a short generation sees
      state.PauseTiming();
      if (!restart()) return state.SkipWithError("start_sequence failed");
      state.ResumeTiming();
    }
    std::vector<StepInput> steps(static_cast<size_t>(rows));
    for (int64_t s = 0; s < rows; ++s) {
      tokens[size_t(s)] = static_cast<int32_t>(1 + s + pos);
      steps[size_t(s)].seq = static_cast<cml::model::SeqId>(s);
      steps[size_t(s)].start_pos = pos;
      steps[size_t(s)].tokens = std::span<const int32_t>(&tokens[size_t(s)], 1);
      steps[size_t(s)].n_tokens = 1;
      steps[size_t(s)].last_only = true;
    }
    if (!(*ex)->forward(steps, out).is_ok()) return state.SkipWithError("forward failed");
    ++pos;
  }
  state.counters["tokens_per_s"] = benchmark::Counter(double(rows), benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_DecodeStep)->ArgNames({"rows", "threads"})->Args({1, 1})->Args({4, 1})->Args({8, 1})->UseRealTime();

}  // namespace
