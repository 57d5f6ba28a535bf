// GroupCoverBackend: the TEE side. A model::LinearBackend that computes y = x·Wᵀ + b by sending masked,
// permuted inputs to an untrusted worker holding W'' and restoring the result locally:
//
//   per part p, per row t:   x̃ = x[π]            (secret input permutation)
//                            c = 2^⌈log2(β·max|x̃|)⌉ (mask amplitude; power of two so c·r, c·u are exact)
//                            z = x̃ + c·r          (r fresh from the MaskPool, never reused)
//   one request per run():   Z = W''·z for every part and row (worker)
//   optional Freivalds:      |sᵀZ − (W''ᵀs)ᵀz| ≤ τ for a secret s (see freivalds_tolerance())
//   restore:                 y' = Z − c·u ;  y[G] = A_G⁻¹ y'[G] ;  y += b
//
// A background thread refills every part's MaskPool (one GEMM per batch). The worker link is opened
// through a LinkFactory on first use and again after any link failure, so a restarted worker is picked
// up by the next run(); the failed run() returns UNAVAILABLE/TIMEOUT with the worker's address.
//
// Thread safety: add()/finalize() from one thread first; run() from any thread (requests are serialised
// on the one link, so concurrent callers queue); stats() from any thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "groupcover/bundle.h"
#include "groupcover/link.h"
#include "groupcover/mask_pool.h"
#include "groupcover/protocol.h"
#include "model/linear_backend.h"

namespace cml::groupcover {

enum class OnMismatch { kError, kLocal };

struct BackendConfig {
  double mask_scale = 4.0;                      // β ≥ 1: mask amplitude relative to the largest |x̃| of the row
  int64_t pool_capacity = 256;                  // masks held per matrix
  int64_t refill_batch = 64;                    // masks per refill GEMM
  bool freivalds = false;                       // check every worker result
  double freivalds_kappa = 8.0;                 // tolerance multiplier (see freivalds_tolerance)
  OnMismatch on_mismatch = OnMismatch::kError;  // what a failed check does
  Duration timeout = std::chrono::seconds(10);  // per request (connect + register + compute)
  std::string worker_label = "worker";          // for error messages (the address)
  bool verify_against_model = true;             // finalize(): check restore(W'') against the part's weights
  // BENCHMARK BASELINE ONLY — NO PROTECTION: session mode sends the plain weights to the worker and
  // plain inputs (no permutation, no mixing, no mask). `cml bench groupcover` uses it as "plain offload".
  bool unprotected_baseline = false;
};

struct BackendStats {
  uint64_t calls = 0, rows = 0, masks_taken = 0, pool_misses = 0, pool_refills = 0, pool_storage = 0;
  uint64_t freivalds_checks = 0, freivalds_failures = 0, local_fallbacks = 0, reconnects = 0;
  uint64_t bytes_sent = 0, bytes_received = 0;
};

class GroupCoverBackend final : public model::LinearBackend {
 public:
  // Offline mode: secrets from `cml groupcover obfuscate`. `worker` must be the bundle whose digest the
  // secrets name (checked in finalize()); parts are looked up by tensor name.
  GroupCoverBackend(BackendConfig config, std::shared_ptr<const TeeSecrets> secrets,
                    std::shared_ptr<const WorkerBundle> worker, LinkFactory connect);
  // Session mode: finalize() obfuscates every registered part itself, with fresh randomness, inside the
  // TEE (no bundle files; the worker receives W'' at registration). Parts with a single output row get
  // one random decoy row so that they can be mixed too.
  GroupCoverBackend(BackendConfig config, ObfuscationConfig obfuscation, LinkFactory connect);
  ~GroupCoverBackend() override;

  std::string name() const override { return "groupcover"; }
  Result<model::LinearId> add(std::span<const model::LinearPart> parts) override;
  Status finalize() override;
  Status run(model::LinearId id, const float* x, int64_t rows, float* y) override;
  int64_t out_features(model::LinearId id) const override;

  BackendStats stats() const;

  // Blocks until every mask pool is full (benchmarks use it to account for refill CPU time).
  bool wait_pools_full(Duration timeout);
  // Brings every mask pool to exactly its capacity on the calling thread (waiting for refills in progress)
  // and returns the number of masks produced. A benchmark calls it before and after a measured window so
  // that the window pays for exactly the masks it consumed, whatever the refill batch size.
  int64_t fill_pools();

  // Test hook: sees each (part matrix index, row) mask amplitude and mask as sent (never in production).
  using MaskObserver = std::function<void(uint32_t matrix, float scale, std::span<const float> r)>;
  void set_mask_observer(MaskObserver o) { mask_observer_ = std::move(o); }

 private:
  struct Part;
  struct Op;
  Status ensure_link(Deadline deadline);
  Status exchange(const Op& op, int64_t rows, Deadline deadline);
  void refill_loop();
  bool check_freivalds(const Part& p, const float* z, const float* zz, int64_t rows);
  void run_local(const Op& op, const float* x, int64_t rows, float* y);

  Status obfuscate_parts();

  BackendConfig config_;
  ObfuscationConfig obfuscation_;
  bool session_mode_ = false;
  std::vector<std::vector<float>> padded_;  // session mode: f32 copies of single-row parts plus a decoy
  std::vector<float> restore_tmp_;
  std::vector<double> restore_work_;  // RestorePlan scratch (de-masked values); wiped by the destructor
  std::shared_ptr<const TeeSecrets> secrets_;
  std::shared_ptr<const WorkerBundle> worker_;
  LinkFactory connect_;
  ModelShapes shapes_;
  std::vector<std::unique_ptr<Part>> parts_;
  std::vector<Op> ops_;
  bool finalized_ = false;

  std::mutex link_mu_;
  std::unique_ptr<MessageLink> link_;
  uint64_t next_id_ = 1;
  std::vector<float> send_buf_, scale_buf_, mask_r_, mask_u_;  // mask_r_/mask_u_: masks copied out of a pool
  std::vector<const float*> part_u_;                           // per part of the current op: its u rows
  std::vector<std::pair<MaskPool*, MaskPool::Lease>> leases_;  // masks used in place, released by run()
  LinkMessage reply_;

  std::mutex refill_mu_;
  std::condition_variable refill_cv_;
  bool stop_ = false;
  std::thread refill_thread_;

  std::atomic<uint64_t> calls_{0}, rows_{0}, fchecks_{0}, ffail_{0}, fallbacks_{0}, reconnects_{0};
  std::atomic<uint64_t> bytes_sent_{0}, bytes_received_{0};
  MaskObserver mask_observer_;
};

// Freivalds tolerance for one row: κ · 2⁻²⁴ · √in · ‖z‖₂ · √(Σ_i s_i² ‖W''_i‖²) + 2⁻⁴⁰.
double freivalds_tolerance(double kappa, int64_t in, double z_norm, double s_weighted_norm);

}  // namespace cml::groupcover
