// Offline GroupCover obfuscation of one weight matrix W [out, in] (docs/notes/gcover.md, §math):
//
//   1. group the output rows into groups of about g mutually dissimilar rows (the paper's pairing by
//      most-negative cosine, log2(g) rounds);
//   2. mix each group G with a fresh random signed matrix A_G (entries N(0,1)), redrawn until
//      cond₂(A_G) ≤ max_condition and no mixed row keeps |cos| > max_dominance to one of its own source
//      rows:  W'[G] = A_G · W[G];
//   3. permute input columns with a uniform random π:  W''[:, j] = W'[:, π(j)].
//
// The worker gets only W''. The TEE keeps π, the groups and A_G⁻¹ (and the bias); it restores
//   y = W x  as  y[G] = A_G⁻¹ · (W'' x̃)[G]   with   x̃_j = x_{π(j)}.
// All randomness comes from the CSPRNG; every call draws fresh groups' mixes and a fresh permutation.
//
// Thread safety: pure functions (each call owns its RNG).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "base/status.h"
#include "tensor/dtype.h"

namespace cml::groupcover {

struct ObfuscationConfig {
  int group_size = 4;           // g: a power of two, 2..16
  double max_condition = 16.0;  // reject-and-redraw bound on cond₂(A_G)
  double max_dominance = 0.75;  // bound on |cos(W'_i, W_j)| for j in i's own group
  int max_redraws = 2000;       // per group; then the least dominant draw within the condition bound is kept
  int64_t chunk_rows = 1024;    // rows are grouped within random chunks of this size (O(chunk²) memory)
};
Status validate(const ObfuscationConfig& c);

// A weight matrix as the model file stores it.
struct MatrixView {
  const void* data = nullptr;
  tensor::DType dtype = tensor::DType::kF32;  // F32, F16 or BF16
  int64_t out = 0, in = 0;
  bool transposed = false;  // data laid out [in, out]
};
// W as row-major float32 [out, in].
Result<std::vector<float>> to_f32_rows(const MatrixView& w);

// The secret half of one obfuscated matrix (kept in the TEE).
struct MatrixSecrets {
  int64_t out = 0, in = 0;
  std::vector<uint32_t> perm;           // [in]: x̃_j = x_{perm[j]}
  std::vector<uint32_t> group_offsets;  // [n_groups + 1] into group_rows
  std::vector<uint32_t> group_rows;     // [out]: rows of group k = group_rows[off[k] .. off[k+1])
  std::vector<double> inv_mix;          // A_k⁻¹ row-major, concatenated (Σ size_k²)
  std::vector<float> bias;              // [out] or empty

  size_t n_groups() const { return group_offsets.empty() ? 0 : group_offsets.size() - 1; }
  // Structural validation (a permutation, a partition of the rows, sizes consistent).
  Status validate() const;
};

struct ObfuscationStats {
  double max_condition = 0.0;     // worst cond₂(A_G) kept
  double max_self_cos = 0.0;      // worst |cos(W'_i, W_j)|, j in i's group
  int64_t redraws = 0;            // rejected draws
  int64_t over_bound_groups = 0;  // groups where no draw met both bounds (best kept)
};

struct ObfuscatedMatrix {
  std::vector<float> w2;  // W'' [out, in], row-major (the worker's half)
  MatrixSecrets secrets;
  ObfuscationStats stats;
};

// Groups rows [0, out) of `w` (row-major [out, in]) by the dissimilarity pairing. Returns the groups
// as offsets + members. INVALID_ARGUMENT if out < 2.
Status group_rows(std::span<const float> w, int64_t out, int64_t in, const ObfuscationConfig& config,
                  std::vector<uint32_t>& offsets, std::vector<uint32_t>& members);

Result<ObfuscatedMatrix> obfuscate_matrix(const MatrixView& w, const float* bias, const ObfuscationConfig& config);

// y[rows, out] = restore(z2[rows, out] − scale[t]·u[rows, out]) where z2 = W''(x̃ + scale·r) and
// u = W''r (pass u = scale = nullptr for an unmasked z2), plus `bias` if not null. Arithmetic in double.
// `y_stride` is the row stride of y (for writing one part of a fused op).
void restore_rows(const MatrixSecrets& s, const float* z2, const float* u, const float* scale, int64_t rows,
                  const float* bias, float* y, int64_t y_stride);
// x̃[rows, in] = x[:, perm].
void permute_rows(const MatrixSecrets& s, const float* x, int64_t rows, float* xt);

}  // namespace cml::groupcover
