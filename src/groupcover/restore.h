// RestorePlan: the TEE's restore step (see restore_rows in obfuscate.h) laid out for speed.
//
// restore_rows walks the groups in the secrets' order and gathers each group's z and u entries through its
// row indices. A plan is built once per matrix (at finalize) and instead
//   1. de-masks a whole row in W'' row order, d = double(z) − c·double(u), in one sequential pass
//      (z and u stream from memory; d, 8 bytes per output, stays in the cache);
//   2. restores groups of four eight at a time: the row indices, the inverse mixes A_G⁻¹ and the bias are
//      stored interleaved in group order (a group per SIMD lane), so everything but d and y is read
//      sequentially; d is gathered and y scattered through the group's rows.
// Other group sizes (and the few groups of four left over from whole blocks) take a scalar loop.
//
// Results are bit-identical to restore_rows: every output is computed with the same double operations in
// the same order (no fused multiply-add: the file is compiled with -ffp-contract=off). The AVX-512 path
// runs where tensor::cpu_features() reports AVX-512; the portable path computes the same bits elsewhere.
// Nothing about the worker's view changes: z and u stay in W'' row order.
//
// Thread safety: a built plan is immutable; run() may be called from several threads with separate `work`.
#pragma once

#include <cstdint>
#include <vector>

#include "groupcover/obfuscate.h"

namespace cml::groupcover {

class RestorePlan {
 public:
  RestorePlan() = default;
  // `bias` [s.out] in row order, or null. Copies what it needs: `s` and `bias` need not outlive the plan.
  // `s` must be valid (MatrixSecrets::validate).
  RestorePlan(const MatrixSecrets& s, const float* bias);

  int64_t out() const { return out_; }

  // Same contract as restore_rows(s, z2, u, scale, rows, bias, y, y_stride) with the plan's bias. `work` is
  // scratch (grown to out() doubles); afterwards it holds the last row's de-masked values — the caller
  // wipes it when it no longer needs it.
  void run(const float* z2, const float* u, const float* scale, int64_t rows, float* y, int64_t y_stride,
           std::vector<double>& work) const;
  // The portable path, even where AVX-512 is available (tests compare the two).
  void run_portable(const float* z2, const float* u, const float* scale, int64_t rows, float* y, int64_t y_stride,
                    std::vector<double>& work) const;

  static constexpr int kLanes = 8;  // groups of four per block

 private:
  void run_rest(const double* d, float* yr) const;
  // One kernel set (portable or AVX-512) over every row.
  struct Kernels {
    void (*demask)(const float* z, const float* u, double c, int64_t n, double* d);
    void (*blocks)(const int32_t* idx, const double* inv, const float* bias, int64_t n_blocks, const double* d,
                   float* y);
  };
  void run_with(const Kernels& k, const float* z2, const float* u, const float* scale, int64_t rows, float* y,
                int64_t y_stride, std::vector<double>& work) const;

  int64_t out_ = 0;
  int64_t n_blocks_ = 0;
  std::vector<int32_t> idx4_;  // [block][member j][lane]: row of member j of the lane's group
  std::vector<double> inv4_;   // [block][i·4 + j][lane]: A_G⁻¹(i, j) of the lane's group
  std::vector<float> bias4_;   // [block][member i][lane]: bias of that row (empty without bias)
  // Groups that are not in a block, in the secrets' layout (offsets, rows, inverse mixes).
  std::vector<uint32_t> rest_off_, rest_rows_;
  std::vector<double> rest_inv_;
  std::vector<float> rest_bias_;  // [rest rows] in rest_rows_ order (empty without bias)
};

// Masking helpers for the other hot loop of GroupCoverBackend::run (AVX-512 where available; the same
// results as the plain loops on every CPU).
// max over i of |x[i]| (NaNs are skipped, as std::max(m, |x|) skips them; 0 for n = 0).
float max_abs(const float* x, int64_t n);
// z[i] += c·r[i].
void add_scaled(float* z, const float* r, float c, int64_t n);

}  // namespace cml::groupcover
