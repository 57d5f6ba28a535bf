// cml bench model: GPT-2 124M-shaped model with synthetic weights (F32 and BF16), prefill and decode
// speed beside the memory-bandwidth bound measured in the same run, and peak memory beside weights + KV.
#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "apps/cml/blas_env.h"
#include "apps/cml/commands.h"
#include "model/executor.h"
#include "model/linear_backend_blas.h"
#include "model/sampler.h"
#include "model/synthetic.h"
#include "tensor/linear.h"
#include "tensor/membw.h"

namespace cml::app {
namespace {

using Clock = std::chrono::steady_clock;

// VmHWM / VmRSS from /proc/self/status, bytes (0 if unavailable).
size_t proc_status_kb(const char* key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  const std::string k = std::string(key) + ":";
  while (std::getline(in, line)) {
    if (line.rfind(k, 0) == 0) return static_cast<size_t>(std::stoull(line.substr(k.size()))) * 1024;
  }
  return 0;
}

// Resets the RSS high-water mark (Linux >= 4.0); false if not possible.
bool reset_peak_rss() {
  std::ofstream f("/proc/self/clear_refs");
  if (!f) return false;
  f << "5";
  return static_cast<bool>(f);
}

std::string run_variant(const BenchOptions& opts, tensor::DType dtype, nlohmann::json& out) {
  const bool peak_reset = reset_peak_rss();
  const size_t rss_before = proc_status_kb("VmRSS");
  model::SyntheticSpec spec = model::gpt2_124m_spec(dtype);
  const int64_t prompt_len = opts.quick ? 32 : 128;
  const int64_t decode_tokens = opts.quick ? 8 : 64;
  if (opts.quick) {
    spec.n_layers = 2;
    spec.vocab = 5000;
  }
  std::shared_ptr<const model::WeightFile> file = model::make_synthetic_gpt2(spec);
  model::ExecutorOptions eo;
  eo.threads = opts.threads;
  eo.max_sequences = 4;
  eo.max_context = prompt_len + decode_tokens + 8;
  auto ex_or = model::Executor::create(file, {}, eo);
  if (!ex_or.is_ok()) return ex_or.status().to_string();
  auto& ex = **ex_or;
  const auto* blas = dynamic_cast<const model::BlasLinearBackend*>(&ex.backend());
  const size_t stream_bytes = blas ? blas->weight_bytes() : 0;
  size_t file_bytes = 0;
  std::vector<tensor::MemRegion> regions;
  for (const auto& t : file->tensors()) {
    file_bytes += t.nbytes;
    regions.push_back({t.data, t.nbytes});
  }

  tensor::ThreadPool pool(opts.threads);

  // Prefill: fresh sequence per repetition, logits of the last token only (as generation needs).
  std::vector<int32_t> prompt(static_cast<size_t>(prompt_len));
  for (size_t i = 0; i < prompt.size(); ++i) {
    prompt[i] = static_cast<int32_t>((i * 7919 + 13) % static_cast<size_t>(spec.vocab));
  }
  std::vector<float> logits;
  double prefill_best = 1e300;
  const int prefill_reps = opts.quick ? 1 : 3;
  for (int r = 0; r < prefill_reps; ++r) {
    if (!ex.start_sequence(100 + r).is_ok()) return "start_sequence failed";
    const auto t0 = Clock::now();
    const Status s = ex.forward(100 + r, 0, prompt, logits, true);
    const double dt = std::chrono::duration<double>(Clock::now() - t0).count();
    if (!s.is_ok()) return s.to_string();
    prefill_best = std::min(prefill_best, dt);
    if (r + 1 < prefill_reps) ex.drop_sequence(100 + r).ignore_error();
  }
  const model::SeqId seq = 100 + prefill_reps - 1;

  // Decode in rounds, each preceded by a streaming read of the same weights with the same threads (the
  // bound), so that bound and speed see the same machine load; greedy tokens, one warm-up token.
  const int rounds = opts.quick ? 2 : 6;
  const int64_t per_round = decode_tokens / rounds;
  int64_t pos = prompt_len;
  std::vector<double> times, bws, ratios;
  for (int r = 0; r <= rounds; ++r) {
    const double bw = tensor::stream_read_gbps(regions, &pool, 1);
    double sum = 0;
    const int64_t n = r == 0 ? 1 : per_round;  // round 0: warm-up
    for (int64_t i = 0; i < n; ++i) {
      const int32_t tok[1] = {model::argmax(logits)};
      const auto t0 = Clock::now();
      const Status s = ex.forward(seq, pos, tok, logits, true);
      const double dt = std::chrono::duration<double>(Clock::now() - t0).count();
      if (!s.is_ok()) return s.to_string();
      ++pos;
      if (r > 0) {
        times.push_back(dt);
        sum += dt;
      }
    }
    if (r == 0) continue;
    bws.push_back(bw);
    ratios.push_back(sum / static_cast<double>(n) / (static_cast<double>(stream_bytes) / (bw * 1e9)));
  }
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
  };
  double mean = 0;
  for (double t : times) mean += t;
  mean /= static_cast<double>(times.size());
  const double membw = median(bws);
  const double bound_s = static_cast<double>(stream_bytes) / (membw * 1e9);
  const size_t kv_bytes =
      static_cast<size_t>(pos) * static_cast<size_t>(spec.n_layers) * 2 * static_cast<size_t>(spec.dim) * 4;
  const size_t peak = proc_status_kb("VmHWM");

  out["prefill_tok_s"] = static_cast<double>(prompt_len) / prefill_best;
  out["prefill_ms"] = prefill_best * 1e3;
  out["decode_ms_per_token"] = mean * 1e3;
  out["decode_ms_per_token_median"] = median(times) * 1e3;
  out["decode_ms_per_token_min"] = *std::min_element(times.begin(), times.end()) * 1e3;
  out["decode_tokens"] = times.size();
  out["weight_bytes"] = stream_bytes;
  out["file_tensor_bytes"] = file_bytes;
  out["membw_gbps"] = membw;  // median over the rounds
  out["membw_gbps_best"] = *std::max_element(bws.begin(), bws.end());
  out["decode_bound_ms"] = bound_s * 1e3;
  out["decode_bound_ratio"] = median(ratios);  // median over rounds of (round decode time / round bound)
  out["decode_bound_ratio_rounds"] = ratios;
  out["kv_cache_bytes"] = kv_bytes;
  out["peak_rss_bytes"] = peak;
  out["rss_before_bytes"] = rss_before;
  out["peak_rss_reset"] = peak_reset;
  // Peak of the whole process against the model's own memory (what the process needs beyond it: code,
  // libraries, scratch, the BLAS packing buffers).
  out["peak_over_weights_kv"] = static_cast<double>(peak) / static_cast<double>(file_bytes + kv_bytes);
  out["peak_growth_over_weights_kv"] =
      static_cast<double>(peak - std::min(peak, rss_before)) / static_cast<double>(file_bytes + kv_bytes);
  return {};
}

std::string bench_model(const BenchOptions& opts, nlohmann::json& out) {
  reexec_with_blas_core_if_needed();
  out["model"] = opts.quick ? "gpt2-124m-shape (quick: 2 layers, vocab 5000)" : "gpt2-124m-shape synthetic";
  out["threads"] = opts.threads;
  out["kernel_isa"] = tensor::linear_isa();
  out["blas"] = openblas_get_config();
  out["blas_core"] = tensor::blas_core();
  out["prompt_tokens"] = opts.quick ? 32 : 128;
  nlohmann::json f32, bf16;
  if (auto e = run_variant(opts, tensor::DType::kF32, f32); !e.empty()) return "f32: " + e;
  if (auto e = run_variant(opts, tensor::DType::kBF16, bf16); !e.empty()) return "bf16: " + e;
  // Top-level figures are the F32 run's; the BF16 run is reported beside them.
  for (auto it = f32.begin(); it != f32.end(); ++it) out[it.key()] = it.value();
  out["bf16"] = bf16;
  out["bf16_decode_over_f32"] = bf16["decode_ms_per_token"].get<double>() / f32["decode_ms_per_token"].get<double>();
  // The same ratio with each variant's time taken at its own measured bandwidth (the machine is shared:
  // the two variants run seconds apart under different load).
  out["bf16_decode_over_f32_at_equal_bandwidth"] =
      (bf16["decode_ms_per_token"].get<double>() * bf16["membw_gbps"].get<double>()) /
      (f32["decode_ms_per_token"].get<double>() * f32["membw_gbps"].get<double>());
  return {};
}

const BenchRegistrar kBench("model",
                            "GPT-2 124M-shaped model (synthetic weights): prefill/decode speed, memory-bandwidth "
                            "bound, peak memory; F32 and BF16",
                            bench_model);

}  // namespace
}  // namespace cml::app
