// GroupCover TEE-side micro-benchmarks: the restore step for GPT-2-shaped parts (the 50257-row output head
// and the layer products: 2304 = fused Q/K/V, 3072 = MLP up, 768 = attention out / MLP down), one decode row,
// masked, with bias. The secrets are synthetic (random groups of four, the leftover folded into the last
// group, random inverse mixes): restore does not depend on the input width.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <numeric>
#include <random>

#include "groupcover/obfuscate.h"
#include "groupcover/restore.h"
#include "groupcover/rng.h"

namespace {

using cml::groupcover::MatrixSecrets;
using cml::groupcover::RestorePlan;

struct Fixture {
  MatrixSecrets s;
  std::vector<float> z, u, bias, scale, y;
};

Fixture make(int64_t out, int64_t rows) {
  std::mt19937_64 rng(1);
  Fixture f;
  f.s.out = out;
  f.s.in = 1;
  f.s.perm = {0};
  f.s.group_rows.resize(size_t(out));
  std::iota(f.s.group_rows.begin(), f.s.group_rows.end(), 0u);
  std::shuffle(f.s.group_rows.begin(), f.s.group_rows.end(), rng);
  const int64_t ng = out / 4;
  for (int64_t k = 0; k < ng; ++k) f.s.group_offsets.push_back(uint32_t(4 * k));
  f.s.group_offsets.push_back(uint32_t(out));
  std::normal_distribution<double> nd;
  for (int64_t k = 0; k < ng; ++k) {
    const size_t sz = f.s.group_offsets[size_t(k) + 1] - f.s.group_offsets[size_t(k)];
    for (size_t e = 0; e < sz * sz; ++e) f.s.inv_mix.push_back(nd(rng));
  }
  std::uniform_real_distribution<float> uf(-1.0f, 1.0f);
  f.z.resize(size_t(out * rows));
  f.u.resize(f.z.size());
  f.y.resize(f.z.size());
  f.bias.resize(size_t(out));
  f.scale.assign(size_t(rows), 8.0f);
  for (float& v : f.z) v = uf(rng);
  for (float& v : f.u) v = uf(rng);
  for (float& v : f.bias) v = uf(rng);
  return f;
}

void BM_RestoreRows(benchmark::State& state) {
  const int64_t out = state.range(0), rows = state.range(1);
  Fixture f = make(out, rows);
  for (auto _ : state) {
    cml::groupcover::restore_rows(f.s, f.z.data(), f.u.data(), f.scale.data(), rows, f.bias.data(), f.y.data(), out);
    benchmark::DoNotOptimize(f.y.data());
  }
  state.SetItemsProcessed(state.iterations() * out * rows);
}

// `portable`: the plan's portable path even where AVX-512 is available.
template <bool portable>
void BM_RestorePlan(benchmark::State& state) {
  const int64_t out = state.range(0), rows = state.range(1);
  Fixture f = make(out, rows);
  const RestorePlan plan(f.s, f.bias.data());
  std::vector<double> work;
  for (auto _ : state) {
    if (portable) {
      plan.run_portable(f.z.data(), f.u.data(), f.scale.data(), rows, f.y.data(), out, work);
    } else {
      plan.run(f.z.data(), f.u.data(), f.scale.data(), rows, f.y.data(), out, work);
    }
    benchmark::DoNotOptimize(f.y.data());
  }
  state.SetItemsProcessed(state.iterations() * out * rows);
}

void shapes(benchmark::internal::Benchmark* b) {
  for (int64_t out : {50257, 3072, 2304, 768}) b->Args({out, 1});
  b->Args({50257, 8});
}

// Drawing one refill batch of masks (128 rows of a GPT-2 layer's input width) from the CSPRNG.
void BM_FillMask(benchmark::State& state) {
  cml::groupcover::SecureRng rng;
  std::vector<float> r(size_t(128 * state.range(0)));
  for (auto _ : state) {
    rng.fill_mask(r);
    benchmark::DoNotOptimize(r.data());
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(r.size() * sizeof(float)));
}
BENCHMARK(BM_FillMask)->Arg(768)->Arg(3072);

BENCHMARK(BM_RestoreRows)->Apply(shapes);
BENCHMARK(BM_RestorePlan<false>)->Name("BM_RestorePlan")->Apply(shapes);
BENCHMARK(BM_RestorePlan<true>)->Name("BM_RestorePlanPortable")->Apply(shapes);

}  // namespace
