#include "groupcover/obfuscate.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "groupcover/linalg.h"
#include "groupcover/rng.h"
#include "tensor/half.h"

namespace cml::groupcover {
namespace {

constexpr int64_t kMaxDim = int64_t(1) << 24;

void normalize(std::span<float> v) {
  double n = 0.0;
  for (float f : v) n += double(f) * f;
  n = std::sqrt(n);
  if (n < 1e-30) return;
  const float inv = float(1.0 / n);
  for (float& f : v) f *= inv;
}

// One chunk of the paper's procedure: members[i] is the list of original rows of item i, vec its unit
// vector. log2(g) rounds of pairing each item with its most dissimilar remaining partner.
void group_chunk(std::vector<std::vector<uint32_t>>& items, std::vector<float>& vecs, int64_t in, int rounds) {
  for (int round = 0; round < rounds && items.size() >= 2; ++round) {
    const int64_t n = int64_t(items.size());
    std::vector<float> sim(size_t(n) * n);
    gemm_abt(vecs.data(), vecs.data(), sim.data(), n, n, in);
    std::vector<double> mean(size_t(n), 0.0);
    for (int64_t i = 0; i < n; ++i) {
      double acc = 0.0;
      for (int64_t j = 0; j < n; ++j) acc += sim[size_t(i * n + j)];
      mean[size_t(i)] = acc / double(n);
    }
    std::vector<int64_t> order(static_cast<size_t>(n));
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](int64_t a, int64_t b) { return mean[size_t(a)] > mean[size_t(b)]; });
    std::vector<char> taken(size_t(n), 0);
    std::vector<std::vector<uint32_t>> next_items;
    std::vector<float> next_vecs;
    for (int64_t i : order) {
      if (taken[size_t(i)]) continue;
      taken[size_t(i)] = 1;
      int64_t best = -1;
      float best_sim = 0.0f;
      for (int64_t k = 0; k < n; ++k) {
        if (taken[size_t(k)]) continue;
        const float s = sim[size_t(i * n + k)];
        if (best < 0 || s < best_sim) {
          best = k;
          best_sim = s;
        }
      }
      std::vector<uint32_t> merged = std::move(items[size_t(i)]);
      std::vector<float> v(vecs.begin() + i * in, vecs.begin() + (i + 1) * in);
      if (best >= 0) {  // otherwise i is the odd one left over and stays as it is
        taken[size_t(best)] = 1;
        merged.insert(merged.end(), items[size_t(best)].begin(), items[size_t(best)].end());
        for (int64_t c = 0; c < in; ++c) v[size_t(c)] += vecs[size_t(best * in + c)];
        normalize(v);
      }
      next_items.push_back(std::move(merged));
      next_vecs.insert(next_vecs.end(), v.begin(), v.end());
    }
    items = std::move(next_items);
    vecs = std::move(next_vecs);
  }
}

}  // namespace

Status validate(const ObfuscationConfig& c) {
  if (c.group_size < 2 || c.group_size > 16 || (c.group_size & (c.group_size - 1)) != 0)
    return invalid_argument("group size must be a power of two in [2, 16]");
  if (!(c.max_condition >= 1.5) || !std::isfinite(c.max_condition))
    return invalid_argument("max condition number must be a finite value ≥ 1.5");
  if (!(c.max_dominance > 0.0 && c.max_dominance < 1.0)) return invalid_argument("max dominance must be in (0, 1)");
  if (c.max_redraws < 1) return invalid_argument("max redraws must be ≥ 1");
  if (c.chunk_rows < 2 * c.group_size) return invalid_argument("chunk rows must be ≥ 2·group size");
  return ok_status();
}

Status MatrixSecrets::validate() const {
  if (out < 2 || in < 1 || out > kMaxDim || in > kMaxDim) return invalid_argument("matrix dimensions out of range");
  if (perm.size() != size_t(in)) return invalid_argument("permutation size does not match in_features");
  std::vector<char> seen(size_t(in), 0);
  for (uint32_t p : perm) {
    if (p >= uint64_t(in) || seen[p]) return invalid_argument("input permutation is not a permutation");
    seen[p] = 1;
  }
  if (group_offsets.size() < 2 || group_offsets.front() != 0 || group_offsets.back() != uint64_t(out) ||
      group_rows.size() != size_t(out))
    return invalid_argument("groups do not cover the output rows");
  size_t mix = 0;
  for (size_t k = 0; k + 1 < group_offsets.size(); ++k) {
    if (group_offsets[k + 1] <= group_offsets[k]) return invalid_argument("empty group");
    const size_t sz = group_offsets[k + 1] - group_offsets[k];
    if (sz > 64) return invalid_argument("group too large");
    mix += sz * sz;
  }
  if (inv_mix.size() != mix) return invalid_argument("inverse mixing matrices have the wrong size");
  for (double v : inv_mix)
    if (!std::isfinite(v)) return invalid_argument("inverse mixing matrix is not finite");
  std::vector<char> rseen(size_t(out), 0);
  for (uint32_t r : group_rows) {
    if (r >= uint64_t(out) || rseen[r]) return invalid_argument("groups are not a partition of the rows");
    rseen[r] = 1;
  }
  if (!bias.empty() && bias.size() != size_t(out)) return invalid_argument("bias size does not match out_features");
  return ok_status();
}

Result<std::vector<float>> to_f32_rows(const MatrixView& w) {
  if (w.data == nullptr || w.out < 1 || w.in < 1 || w.out > kMaxDim || w.in > kMaxDim ||
      w.out * w.in > (int64_t(1) << 34))
    return invalid_argument("weight matrix is empty or too large");
  std::vector<float> rows(static_cast<size_t>(w.out * w.in));
  auto load = [&](int64_t idx) -> float {
    switch (w.dtype) {
      case tensor::DType::kF32:
        return static_cast<const float*>(w.data)[idx];
      case tensor::DType::kF16:
        return tensor::f16_to_f32(static_cast<const uint16_t*>(w.data)[idx]);
      case tensor::DType::kBF16:
        return tensor::bf16_to_f32(static_cast<const uint16_t*>(w.data)[idx]);
      default:
        return 0.0f;
    }
  };
  if (w.dtype != tensor::DType::kF32 && w.dtype != tensor::DType::kF16 && w.dtype != tensor::DType::kBF16)
    return invalid_argument("weight dtype must be F32, F16 or BF16");
  for (int64_t i = 0; i < w.out; ++i)
    for (int64_t j = 0; j < w.in; ++j)
      rows[size_t(i * w.in + j)] = w.transposed ? load(j * w.out + i) : load(i * w.in + j);
  return rows;
}

Status group_rows(std::span<const float> w, int64_t out, int64_t in, const ObfuscationConfig& config,
                  std::vector<uint32_t>& offsets, std::vector<uint32_t>& members) {
  CML_RETURN_IF_ERROR(validate(config));
  if (out < 2) return invalid_argument("GroupCover needs at least two output rows to mix");
  SecureRng rng;
  // Random partition into chunks (a uniform shuffle, then consecutive slices of nearly equal size).
  std::vector<uint32_t> order(static_cast<size_t>(out));
  std::iota(order.begin(), order.end(), 0u);
  for (int64_t i = out - 1; i > 0; --i) std::swap(order[size_t(i)], order[rng.below(uint64_t(i) + 1)]);
  const int64_t n_chunks = (out + config.chunk_rows - 1) / config.chunk_rows;
  int rounds = 0;
  while ((1 << rounds) < config.group_size) ++rounds;
  offsets.assign(1, 0);
  members.clear();
  for (int64_t c = 0; c < n_chunks; ++c) {
    const int64_t lo = out * c / n_chunks, hi = out * (c + 1) / n_chunks;
    std::vector<std::vector<uint32_t>> items;
    std::vector<float> vecs;
    for (int64_t i = lo; i < hi; ++i) {
      const uint32_t r = order[size_t(i)];
      items.push_back({r});
      vecs.insert(vecs.end(), w.begin() + int64_t(r) * in, w.begin() + (int64_t(r) + 1) * in);
      normalize(std::span<float>(vecs).subspan(size_t((i - lo) * in)));
    }
    group_chunk(items, vecs, in, rounds);
    // A singleton group would expose a scaled row of W: fold it into the previous (or next) group.
    std::vector<std::vector<uint32_t>> groups;
    for (auto& g : items) {
      if (g.size() == 1 && !groups.empty()) {
        groups.back().push_back(g[0]);
      } else {
        groups.push_back(std::move(g));
      }
    }
    if (groups.size() > 1 && groups.front().size() == 1) {
      groups[1].push_back(groups[0][0]);
      groups.erase(groups.begin());
    }
    for (auto& g : groups) {
      members.insert(members.end(), g.begin(), g.end());
      offsets.push_back(uint32_t(members.size()));
    }
  }
  // A chunk of a single row (out = 2k+1 split badly) cannot happen: chunks have ≥ chunk_rows/2 ≥ g rows.
  return ok_status();
}

Result<ObfuscatedMatrix> obfuscate_matrix(const MatrixView& wv, const float* bias, const ObfuscationConfig& config) {
  CML_RETURN_IF_ERROR(validate(config));
  CML_ASSIGN_OR_RETURN(std::vector<float> w, to_f32_rows(wv));
  for (float f : w)
    if (!std::isfinite(f)) return invalid_argument("weight matrix contains a non-finite value");
  const int64_t out = wv.out, in = wv.in;
  ObfuscatedMatrix r;
  MatrixSecrets& s = r.secrets;
  s.out = out;
  s.in = in;
  CML_RETURN_IF_ERROR(group_rows(w, out, in, config, s.group_offsets, s.group_rows));
  SecureRng rng;
  std::vector<double> mixed(static_cast<size_t>(out * in));  // W' in double, row-major
  std::vector<double> a, best_a, inv;
  for (size_t k = 0; k + 1 < s.group_offsets.size(); ++k) {
    const uint32_t* rows = s.group_rows.data() + s.group_offsets[k];
    const int sz = int(s.group_offsets[k + 1] - s.group_offsets[k]);
    double best_score = INFINITY, best_cond = 0, best_cos = 0;
    bool ok = false;
    // Gram matrix of the group's rows: cos(W'_i, W_j) = (A·G)_ij / sqrt((a_iᵀ G a_i) · G_jj), so each
    // draw is checked in O(g³) without forming W'.
    std::vector<double> gram(size_t(sz) * sz);
    for (int i = 0; i < sz; ++i)
      for (int j = 0; j < sz; ++j) {
        const float* wi = w.data() + int64_t(rows[i]) * in;
        const float* wj = w.data() + int64_t(rows[j]) * in;
        double acc = 0;
        for (int64_t c = 0; c < in; ++c) acc += double(wi[c]) * wj[c];
        gram[size_t(i * sz + j)] = acc;
      }
    std::vector<double> ag(size_t(sz) * sz);
    for (int attempt = 0; attempt < config.max_redraws; ++attempt) {
      a.resize(size_t(sz) * sz);
      for (double& v : a) v = rng.normal();
      const double cond = condition_number(a, sz);
      if (!std::isfinite(cond)) {
        ++r.stats.redraws;
        continue;
      }
      for (int i = 0; i < sz; ++i)
        for (int j = 0; j < sz; ++j) {
          double acc = 0;
          for (int k2 = 0; k2 < sz; ++k2) acc += a[size_t(i * sz + k2)] * gram[size_t(k2 * sz + j)];
          ag[size_t(i * sz + j)] = acc;
        }
      double worst_cos = 0.0;
      for (int i = 0; i < sz; ++i) {
        double nn = 0;  // ‖W'_i‖² = a_iᵀ G a_i
        for (int j = 0; j < sz; ++j) nn += ag[size_t(i * sz + j)] * a[size_t(i * sz + j)];
        for (int j = 0; j < sz; ++j) {
          const double d = nn * gram[size_t(j * sz + j)];
          if (d > 1e-300) worst_cos = std::max(worst_cos, std::fabs(ag[size_t(i * sz + j)]) / std::sqrt(d));
        }
      }
      const bool meets = cond <= config.max_condition && worst_cos <= config.max_dominance;
      // Fallback when no draw meets both bounds: the least dominant draw among those within the
      // condition bound (the condition bound is never relaxed: it is what bounds the restore error).
      const double score = cond <= config.max_condition ? worst_cos : INFINITY;
      if (score < best_score) {
        best_score = score;
        best_a = a;
        best_cond = cond;
        best_cos = worst_cos;
      }
      if (meets) {
        ok = true;
        break;
      }
      ++r.stats.redraws;
    }
    if (best_a.empty())
      return internal_error("no mixing matrix within the condition bound in " + std::to_string(config.max_redraws) +
                            " draws");
    if (!ok) ++r.stats.over_bound_groups;
    if (!invert_small(best_a, sz, inv)) return internal_error("mixing matrix inversion failed");
    s.inv_mix.insert(s.inv_mix.end(), inv.begin(), inv.end());
    for (int i = 0; i < sz; ++i) {
      double* dst = mixed.data() + int64_t(rows[i]) * in;
      for (int j = 0; j < sz; ++j) {
        const double aij = best_a[size_t(i * sz + j)];
        const float* src = w.data() + int64_t(rows[j]) * in;
        for (int64_t c = 0; c < in; ++c) dst[c] += aij * src[c];
      }
    }
    r.stats.max_condition = std::max(r.stats.max_condition, best_cond);
    r.stats.max_self_cos = std::max(r.stats.max_self_cos, best_cos);
    std::fill(a.begin(), a.end(), 0.0);
    std::fill(best_a.begin(), best_a.end(), 0.0);
  }
  // Input permutation (Fisher–Yates over the CSPRNG).
  s.perm.resize(size_t(in));
  std::iota(s.perm.begin(), s.perm.end(), 0u);
  for (int64_t i = in - 1; i > 0; --i) std::swap(s.perm[size_t(i)], s.perm[rng.below(uint64_t(i) + 1)]);
  r.w2.resize(size_t(out * in));
  for (int64_t i = 0; i < out; ++i)
    for (int64_t j = 0; j < in; ++j) r.w2[size_t(i * in + j)] = float(mixed[size_t(i * in + s.perm[size_t(j)])]);
  if (bias) s.bias.assign(bias, bias + out);
  return r;
}

namespace {

#if defined(__x86_64__)
// o[j] = xr[p[j]], sixteen lanes per gather (indices < in ≤ 2^31).
__attribute__((target("avx512f"))) void permute_row_avx512(const float* xr, const uint32_t* p, int64_t in, float* o) {
  int64_t j = 0;
  for (; j + 16 <= in; j += 16) {
    const __m512i idx = _mm512_loadu_si512(p + j);
    _mm512_storeu_ps(o + j, _mm512_i32gather_ps(idx, xr, 4));
  }
  for (; j < in; ++j) o[j] = xr[p[j]];
}
// The same, eight lanes per gather.
__attribute__((target("avx2"))) void permute_row_avx2(const float* xr, const uint32_t* p, int64_t in, float* o) {
  int64_t j = 0;
  for (; j + 8 <= in; j += 8) {
    const __m256i idx = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + j));
    _mm256_storeu_ps(o + j, _mm256_i32gather_ps(xr, idx, 4));
  }
  for (; j < in; ++j) o[j] = xr[p[j]];
}
#endif

}  // namespace

void permute_rows(const MatrixSecrets& s, const float* x, int64_t rows, float* xt) {
  const int64_t in = s.in;
  const uint32_t* p = s.perm.data();
#if defined(__x86_64__)
  if (tensor::cpu_features().avx512 && in <= INT32_MAX) {
    for (int64_t t = 0; t < rows; ++t) permute_row_avx512(x + t * in, p, in, xt + t * in);
    return;
  }
  if (tensor::cpu_features().avx2 && in <= INT32_MAX) {
    for (int64_t t = 0; t < rows; ++t) permute_row_avx2(x + t * in, p, in, xt + t * in);
    return;
  }
#endif
  for (int64_t t = 0; t < rows; ++t) {
    const float* xr = x + t * in;
    float* o = xt + t * in;
    for (int64_t j = 0; j < in; ++j) o[j] = xr[p[j]];
  }
}

namespace {

// One group of one row: d = the group's unmasked entries (gathered once), y[g[i]] = Σ_j inv[i,j]·d[j] + b.
// Same operations in the same order as the straightforward double loop, so results are bit-identical.
template <int kSize>
inline void restore_group(const double* inv, const uint32_t* g, int sz, const float* zr, const float* ur, double c,
                          const float* bias, float* yr) {
  const int n = kSize > 0 ? kSize : sz;
  double d[64];
  if (ur) {
    for (int j = 0; j < n; ++j) d[j] = double(zr[g[j]]) - c * double(ur[g[j]]);
  } else {
    for (int j = 0; j < n; ++j) d[j] = double(zr[g[j]]);
  }
  double acc[64];
  for (int i = 0; i < n; ++i) {
    double v = 0.0;
    for (int j = 0; j < n; ++j) v += inv[i * n + j] * d[j];
    acc[i] = v;
  }
  for (int i = 0; i < n; ++i) yr[g[i]] = float(acc[i] + (bias ? double(bias[g[i]]) : 0.0));
}

}  // namespace

void restore_rows(const MatrixSecrets& s, const float* z2, const float* u, const float* scale, int64_t rows,
                  const float* bias, float* y, int64_t y_stride) {
  const int64_t out = s.out;
  const size_t ng = s.n_groups();
  const uint32_t* offs = s.group_offsets.data();
  for (int64_t t = 0; t < rows; ++t) {
    const float* zr = z2 + t * out;
    const float* ur = u ? u + t * out : nullptr;
    const double c = scale ? double(scale[t]) : 0.0;
    float* yr = y + t * y_stride;
    const double* inv = s.inv_mix.data();
    for (size_t k = 0; k < ng; ++k) {
      const uint32_t* g = s.group_rows.data() + offs[k];
      const int sz = int(offs[k + 1] - offs[k]);
      switch (sz) {  // the common sizes get fixed-size loops the compiler unrolls
        case 1:
          restore_group<1>(inv, g, sz, zr, ur, c, bias, yr);
          break;
        case 2:
          restore_group<2>(inv, g, sz, zr, ur, c, bias, yr);
          break;
        case 4:
          restore_group<4>(inv, g, sz, zr, ur, c, bias, yr);
          break;
        case 5:
          restore_group<5>(inv, g, sz, zr, ur, c, bias, yr);
          break;
        case 8:
          restore_group<8>(inv, g, sz, zr, ur, c, bias, yr);
          break;
        default:
          restore_group<0>(inv, g, sz, zr, ur, c, bias, yr);
      }
      inv += sz * sz;
    }
  }
}

}  // namespace cml::groupcover
