// `cml bench groupcover --json`: GPT-2-124M-shaped synthetic model, decode and 128-token prefill, with
// the weight products computed (a) locally, (b) by a worker process with no protection ("plain
// offload"), (c) with GroupCover, (d) with GroupCover + Freivalds. The worker is a separate `cml worker`
// process on loopback, started here. Figures sit beside bounds measured in the same run: single-thread
// SGEMM throughput and memory copy bandwidth of this machine.
//
// TEE CPU time is this process's user+system time (all threads: kernels, masking, restore, the mask
// pool's refill GEMMs, the channel's AEAD); for GroupCover runs it is measured until the mask pools are
// full again, so the masks a window consumed are paid for inside that window.
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "apps/cml/blas_env.h"
#include "apps/cml/commands.h"
#include "groupcover/backend.h"
#include "groupcover/linalg.h"
#include "groupcover/net_link.h"
#include "model/executor.h"
#include "model/synthetic.h"
#include "tensor/linear.h"

namespace cml::app {
namespace {

double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + 1e-6 * double(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}
double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// A `cml worker` child process on 127.0.0.1:<ephemeral>.
struct WorkerProcess {
  pid_t pid = -1;
  std::string endpoint;
  ~WorkerProcess() {
    if (pid > 0) {
      kill(pid, SIGTERM);
      int status = 0;
      waitpid(pid, &status, 0);
    }
  }
};

Result<std::unique_ptr<WorkerProcess>> start_worker(int threads) {
  int fds[2];
  if (pipe(fds) != 0) return unavailable("pipe failed");
  auto w = std::make_unique<WorkerProcess>();
  const std::string th = std::to_string(threads);
  w->pid = fork();
  if (w->pid < 0) return unavailable("fork failed");
  if (w->pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    close(fds[0]);
    close(fds[1]);
    execl("/proc/self/exe", "cml", "worker", "--listen", "127.0.0.1:0", "--threads", th.c_str(), (char*)nullptr);
    _exit(127);
  }
  close(fds[1]);
  std::string line;
  char c;
  while (read(fds[0], &c, 1) == 1 && c != '\n') line.push_back(c);
  close(fds[0]);
  const auto at = line.find("tcp://");
  if (at == std::string::npos) return unavailable("worker did not start: " + line);
  w->endpoint = line.substr(at, line.find(' ', at) - at);
  return w;
}

struct Figures {
  double decode_ms = 0, decode_cpu_ms = 0, prefill_ms = 0, prefill_cpu_ms = 0;
  groupcover::BackendStats stats;
};

Result<Figures> measure(std::shared_ptr<const model::WeightFile> file, model::LinearBackend* backend,
                        groupcover::GroupCoverBackend* gc, int threads, int decode_tokens, int prefill_tokens) {
  model::ExecutorOptions opt;
  opt.threads = threads;
  opt.backend = backend;
  CML_ASSIGN_OR_RETURN(auto ex, model::Executor::create(file, {}, opt));
  auto settle = [&] {
    if (gc && !gc->wait_pools_full(std::chrono::minutes(5))) return false;
    return true;
  };
  Figures f;
  std::vector<float> out;
  const int64_t spec_vocab = ex->config().vocab;
  // Prefill: one forward over prefill_tokens tokens.
  std::vector<int32_t> prompt(static_cast<size_t>(prefill_tokens));
  for (int i = 0; i < prefill_tokens; ++i) prompt[size_t(i)] = int32_t((i * 7919 + 13) % spec_vocab);
  CML_RETURN_IF_ERROR(ex->start_sequence(1));
  CML_RETURN_IF_ERROR(ex->forward(1, 0, std::span<const int32_t>(prompt.data(), 4), out, true));  // warm-up
  CML_RETURN_IF_ERROR(ex->drop_sequence(1));
  CML_RETURN_IF_ERROR(ex->start_sequence(1));
  if (!settle()) return timeout_error("mask pools did not fill");
  double t0 = now_s(), c0 = cpu_seconds();
  CML_RETURN_IF_ERROR(ex->forward(1, 0, prompt, out, true));
  const double t1 = now_s();
  if (!settle()) return timeout_error("mask pools did not fill");
  const double c1 = cpu_seconds();
  f.prefill_ms = 1e3 * (t1 - t0) / prefill_tokens;
  f.prefill_cpu_ms = 1e3 * (c1 - c0) / prefill_tokens;
  // Decode: decode_tokens single-token steps after the prompt.
  int64_t pos = prefill_tokens;
  int32_t tok = int32_t(std::max_element(out.begin(), out.end()) - out.begin());
  t0 = now_s();
  c0 = cpu_seconds();
  for (int s = 0; s < decode_tokens; ++s) {
    const int32_t in[1] = {tok};
    CML_RETURN_IF_ERROR(ex->forward(1, pos++, in, out, true));
    tok = int32_t(std::max_element(out.begin(), out.end()) - out.begin());
  }
  const double t2 = now_s();
  if (!settle()) return timeout_error("mask pools did not fill");
  const double c2 = cpu_seconds();
  f.decode_ms = 1e3 * (t2 - t0) / decode_tokens;
  f.decode_cpu_ms = 1e3 * (c2 - c0) / decode_tokens;
  if (gc) f.stats = gc->stats();
  return f;
}

double sgemm_gflops() {
  groupcover::set_blas_threads(1);
  const int64_t n = 512;
  std::vector<float> a(static_cast<size_t>(n * n), 0.5f), b(a), c(a);
  groupcover::gemm_abt(a.data(), b.data(), c.data(), n, n, n);
  const double t0 = now_s();
  int reps = 0;
  while (now_s() - t0 < 0.3) {
    groupcover::gemm_abt(a.data(), b.data(), c.data(), n, n, n);
    ++reps;
  }
  return 2.0 * double(n * n * n) * reps / (now_s() - t0) / 1e9;
}

double copy_gbps() {
  std::vector<char> a(size_t(128) << 20, 1), b(a.size());
  std::memcpy(b.data(), a.data(), a.size());
  const double t0 = now_s();
  int reps = 0;
  while (now_s() - t0 < 0.3) {
    std::memcpy(b.data(), a.data(), a.size());
    ++reps;
  }
  return double(a.size()) * reps / (now_s() - t0) / 1e9;
}

// Masks per refill GEMM: W'' is read once per batch, so decode pays 1/64 of a weight pass per token.
constexpr int64_t kRefillBatch = 64;

std::string run_bench(const BenchOptions& o, nlohmann::json& j) {
  // Before any BLAS call: OpenBLAS picks its kernels when it loads; the worker child inherits the variable.
  reexec_with_blas_core_if_needed();
  model::SyntheticSpec spec = model::gpt2_124m_spec(tensor::DType::kF32);
  int decode_tokens = 64, prefill_tokens = 128;
  if (o.quick) {
    spec.vocab = 2048;
    spec.dim = 128;
    spec.n_layers = 2;
    spec.n_heads = 4;
    spec.ffn_dim = 512;
    spec.max_context = 256;
    decode_tokens = 16;
    prefill_tokens = 32;
  }
  std::shared_ptr<const model::WeightFile> file = model::make_synthetic_gpt2(spec);
  j["blas_core"] = tensor::blas_core();
  j["machine_bounds"] = {{"sgemm_1thread_gflops", sgemm_gflops()}, {"memcpy_gbps", copy_gbps()}};
  auto worker = start_worker(o.threads);
  if (!worker.is_ok()) return worker.status().to_string();
  auto connect = groupcover::worker_connector((*worker)->endpoint);
  if (!connect.is_ok()) return connect.status().to_string();

  groupcover::set_blas_threads(1);  // the TEE side: kernels run on the executor's pool
  auto local = measure(file, nullptr, nullptr, o.threads, decode_tokens, prefill_tokens);
  if (!local.is_ok()) return "local: " + local.status().to_string();

  auto run_offload = [&](bool baseline, bool freivalds) -> Result<Figures> {
    groupcover::BackendConfig c;
    c.unprotected_baseline = baseline;
    c.freivalds = freivalds;
    c.worker_label = (*worker)->endpoint;
    c.timeout = std::chrono::seconds(120);
    c.pool_capacity = std::max(prefill_tokens, decode_tokens) + kRefillBatch;
    c.refill_batch = kRefillBatch;
    groupcover::GroupCoverBackend be(c, groupcover::ObfuscationConfig{}, *connect);
    return measure(file, &be, baseline ? nullptr : &be, o.threads, decode_tokens, prefill_tokens);
  };
  auto plain = run_offload(true, false);
  if (!plain.is_ok()) return "plain offload: " + plain.status().to_string();
  auto gc = run_offload(false, false);
  if (!gc.is_ok()) return "groupcover: " + gc.status().to_string();
  auto gcf = run_offload(false, true);
  if (!gcf.is_ok()) return "groupcover+freivalds: " + gcf.status().to_string();

  auto pct = [](double a, double b) { return 100.0 * (a - b) / b; };
  j["model"] = o.quick ? "gpt2-shaped (quick, small)" : "gpt2-124M-shaped synthetic f32";
  j["threads"] = o.threads;
  j["worker"] = "separate process on loopback, SecureChannel (AES-256-GCM)";
  j["thread_config"] = {
      {"tee_executor_threads", o.threads}, {"tee_blas_threads", 1},
      {"tee_refill_threads", 1},           {"worker_blas_threads", o.threads},
      {"refill_batch", kRefillBatch},      {"pool_capacity", std::max(prefill_tokens, decode_tokens) + kRefillBatch}};
  j["decode_tokens"] = decode_tokens;
  j["local_ms_per_token"] = local->decode_ms;
  j["plain_offload_ms_per_token"] = plain->decode_ms;
  j["groupcover_ms_per_token"] = gc->decode_ms;
  j["groupcover_freivalds_ms_per_token"] = gcf->decode_ms;
  j["overhead_pct"] = pct(gc->decode_ms, plain->decode_ms);
  j["freivalds_extra_pct"] = pct(gcf->decode_ms, gc->decode_ms);
  j["tee_cpu_ms_per_token"] = {{"local", local->decode_cpu_ms},
                               {"plain_offload", plain->decode_cpu_ms},
                               {"groupcover", gc->decode_cpu_ms},
                               {"groupcover_freivalds", gcf->decode_cpu_ms}};
  j["tee_cpu_fraction"] = gc->decode_cpu_ms / local->decode_cpu_ms;
  j["prefill"] = {{"tokens", prefill_tokens},
                  {"local_ms_per_token", local->prefill_ms},
                  {"plain_offload_ms_per_token", plain->prefill_ms},
                  {"groupcover_ms_per_token", gc->prefill_ms},
                  {"groupcover_freivalds_ms_per_token", gcf->prefill_ms},
                  {"overhead_pct", pct(gc->prefill_ms, plain->prefill_ms)},
                  {"freivalds_extra_pct", pct(gcf->prefill_ms, gc->prefill_ms)},
                  {"tee_cpu_fraction", gc->prefill_cpu_ms / local->prefill_cpu_ms}};
  j["groupcover_pool"] = {{"masks", gc->stats.masks_taken},
                          {"misses", gc->stats.pool_misses},
                          {"refills", gc->stats.pool_refills},
                          {"freivalds_checks", gcf->stats.freivalds_checks},
                          {"freivalds_failures", gcf->stats.freivalds_failures}};
  j["note"] =
      "worker and TEE process share this machine's cores; the TEE process also pays for fresh masks (one GEMM "
      "per batch of masks, as many FLOPs as the layer per mask)";
  return {};
}

const BenchRegistrar kBench("groupcover", "GroupCover offload vs local and plain offload (GPT-2-124M shape)",
                            run_bench);

}  // namespace
}  // namespace cml::app
