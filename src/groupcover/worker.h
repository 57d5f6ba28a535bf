// WorkerService: the untrusted side of GroupCover. It holds obfuscated matrices W'' (registered once
// per model, shared by every connection that names the same model digest) and answers COMPUTE
// requests with Z = Zin · W''ᵀ through OpenBLAS (or cuBLAS when built with CML_WITH_CUDA and enabled).
// It never sees a secret: only W'' and masked, permuted inputs.
//
// Thread safety: serve() is called from one thread per connection; any number of connections may be
// served concurrently. Hooks must be set before the first serve().
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <span>

#include "groupcover/bundle.h"
#include "groupcover/link.h"
#include "groupcover/protocol.h"

namespace cml::groupcover {

struct WorkerOptions {
  uint64_t max_model_bytes = uint64_t(8) << 30;    // a client cannot make the worker allocate more
  Duration idle_timeout = std::chrono::hours(24);  // a connection silent this long is dropped
  bool use_cuda = false;                           // only honoured in CML_WITH_CUDA builds
};

struct WorkerStats {
  uint64_t connections = 0, requests = 0, rows = 0, uploads = 0, models = 0, errors = 0;
};

class WorkerService {
 public:
  explicit WorkerService(WorkerOptions options = {});
  ~WorkerService();

  // Serves one connection until the peer closes (OK) or fails (its status).
  Status serve(MessageLink& link);

  WorkerStats stats() const;

  // ---- hooks for tests and the audit (never set in production) ----
  // Sees every compute request's input payload and the result about to be sent.
  using Observer = std::function<void(const ComputeRequest&, std::span<const float> in, std::span<const float> out)>;
  void set_observer(Observer o) { observer_ = std::move(o); }
  // May modify a result before it is sent (a corrupting worker).
  using Corruptor = std::function<void(const ComputeRequest&, std::span<const float> in, std::span<float> out)>;
  void set_corruptor(Corruptor c) { corruptor_ = std::move(c); }
  // Called when a compute request arrives, before computing (to kill a worker mid-request in tests).
  using OnRequest = std::function<void(const ComputeRequest&)>;
  void set_on_request(OnRequest f) { on_request_ = std::move(f); }

 private:
  struct Model;
  Result<std::shared_ptr<const Model>> find(const crypto::Digest256& d) const;
  Status compute(const Model& m, const ComputeRequest& q, std::span<const float> in, std::vector<float>& out);

  WorkerOptions options_;
  mutable std::mutex mu_;
  std::map<crypto::Digest256, std::shared_ptr<const Model>> models_;
  std::atomic<uint64_t> connections_{0}, requests_{0}, rows_{0}, uploads_{0}, errors_{0};
  Observer observer_;
  Corruptor corruptor_;
  OnRequest on_request_;
};

// Sets the BLAS thread count of this process (OpenBLAS).
void set_blas_threads(int n);

}  // namespace cml::groupcover
