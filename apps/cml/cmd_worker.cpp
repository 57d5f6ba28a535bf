// `cml worker --listen ADDR [--threads N]`: the untrusted GroupCover worker (see src/groupcover/worker.h).
#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <memory>
#include <thread>

#include "apps/cml/blas_env.h"
#include "apps/cml/commands.h"
#include "groupcover/net_link.h"
#include "groupcover/offload.h"
#include "groupcover/worker.h"

#if defined(CML_WITH_CUDA)
#include "groupcover/cuda_gemm.h"
#endif

namespace cml::app {
namespace {

struct WorkerFlags {
  std::string listen;
  int threads = 2;
  double max_model_gib = 8;
  bool cuda = false;
};

sigset_t block_stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return set;
}

void run_worker(const WorkerFlags& f) {
  std::string listen = f.listen;
  if (listen.empty()) {
    auto env = groupcover::worker_listen_from_env(groupcover::process_env());
    if (!env.is_ok()) {
      std::fprintf(stderr, "cml worker: give --listen ADDR or RANK/WORLD_SIZE: %s\n", env.status().to_string().c_str());
      set_exit_code(2);
      return;
    }
    listen = *env;
  }
  if (f.threads < 1 || f.threads > 1024 || !(f.max_model_gib > 0)) {
    std::fprintf(stderr, "cml worker: --threads must be in [1, 1024] and --max-model-gib positive\n");
    set_exit_code(2);
    return;
  }
#if !defined(CML_WITH_CUDA)
  if (f.cuda) {
    std::fprintf(stderr, "cml worker: --cuda needs a build with -DCML_WITH_CUDA=ON\n");
    set_exit_code(2);
    return;
  }
#else
  if (f.cuda) {
    const Status dev = groupcover::cuda_device_status();
    if (!dev.is_ok()) {
      std::fprintf(stderr, "cml worker: --cuda: %s\n", dev.to_string().c_str());
      set_exit_code(1);
      return;
    }
  }
#endif
  groupcover::set_blas_threads(f.threads);
  groupcover::WorkerOptions opt;
  opt.max_model_bytes = uint64_t(f.max_model_gib * double(1ull << 30));
  opt.use_cuda = f.cuda;
  groupcover::WorkerService service(opt);
  const sigset_t stop_signals = block_stop_signals();  // before any thread starts
  auto server = groupcover::WorkerServer::start(listen, service);
  if (!server.is_ok()) {
    std::fprintf(stderr, "cml worker: %s\n", server.status().to_string().c_str());
    set_exit_code(1);
    return;
  }
  std::printf("groupcover worker listening on %s (%d BLAS threads%s); untrusted: holds only obfuscated weights\n",
              (*server)->local_endpoint().c_str(), f.threads, f.cuda ? ", CUDA" : "");
  std::fflush(stdout);
  int sig = 0;
  sigwait(&stop_signals, &sig);
  (*server)->stop();
  const auto st = service.stats();
  std::printf("worker stopped: %llu connections, %llu requests, %llu rows, %llu models\n",
              (unsigned long long)st.connections, (unsigned long long)st.requests, (unsigned long long)st.rows,
              (unsigned long long)st.models);
}

const CommandRegistrar kWorker("worker", [](CLI::App& root) {
  auto* cmd = root.add_subcommand("worker", "Untrusted GroupCover worker: computes obfuscated weight products");
  auto f = std::make_shared<WorkerFlags>();
  cmd->add_option("--listen", f->listen, "Address to listen on (host:port); or RANK/WORLD_SIZE/MASTER_* env");
  cmd->add_option("--threads", f->threads, "BLAS threads")->capture_default_str();
  cmd->add_option("--max-model-gib", f->max_model_gib, "Largest model a client may upload")->capture_default_str();
  cmd->add_flag("--cuda", f->cuda, "Compute with cuBLAS (CML_WITH_CUDA builds)");
  cmd->callback([f] {
    reexec_with_blas_core_if_needed();  // before any BLAS call: the worker does all the heavy products
    run_worker(*f);
  });
});

}  // namespace
}  // namespace cml::app
