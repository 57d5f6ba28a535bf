#include "groupcover/audit.h"

#include <algorithm>
#include <cmath>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <unordered_set>

#include "groupcover/backend.h"
#include "groupcover/linalg.h"
#include "groupcover/local_worker.h"
#include "groupcover/rng.h"

namespace cml::groupcover {
namespace {

// Rows normalised to unit length (zero rows stay zero).
std::vector<float> unit_rows(const float* m, int64_t rows, int64_t cols) {
  std::vector<float> u(m, m + rows * cols);
  for (int64_t i = 0; i < rows; ++i) {
    double n = 0;
    for (int64_t j = 0; j < cols; ++j) n += double(u[size_t(i * cols + j)]) * u[size_t(i * cols + j)];
    if (n > 0)
      for (int64_t j = 0; j < cols; ++j) u[size_t(i * cols + j)] = float(u[size_t(i * cols + j)] / std::sqrt(n));
  }
  return u;
}

// For each row of a [na, k], the largest |cos| to any row of b [nb, k] and its index (blocked GEMM).
void best_matches(const std::vector<float>& a, int64_t na, const std::vector<float>& b, int64_t nb, int64_t k,
                  std::vector<double>& best, std::vector<int64_t>& arg) {
  best.assign(size_t(na), 0.0);
  arg.assign(size_t(na), -1);
  const int64_t block = 256;
  std::vector<float> s;
  for (int64_t i0 = 0; i0 < na; i0 += block) {
    const int64_t n = std::min(block, na - i0);
    s.resize(size_t(n * nb));
    gemm_abt(a.data() + i0 * k, b.data(), s.data(), n, nb, k);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < nb; ++j) {
        const double v = std::fabs(s[size_t(i * nb + j)]);
        if (v > best[size_t(i0 + i)]) {
          best[size_t(i0 + i)] = v;
          arg[size_t(i0 + i)] = j;
        }
      }
  }
}

double cosine(const float* a, const float* b, int64_t n) {
  double ab = 0, aa = 0, bb = 0;
  for (int64_t i = 0; i < n; ++i) {
    ab += double(a[i]) * b[i];
    aa += double(a[i]) * a[i];
    bb += double(b[i]) * b[i];
  }
  return (aa == 0 || bb == 0) ? 0.0 : std::fabs(ab) / std::sqrt(aa * bb);
}

}  // namespace

Result<AuditReport> run_audit(std::span<const NamedMatrix> matrices, const ObfuscationConfig& config,
                              const AuditOptions& options) {
  if (options.calls < 1 || options.sample_rows < 1) return invalid_argument("audit: calls and sample rows must be ≥ 1");
  CML_ASSIGN_OR_RETURN(ObfuscatedModel om, obfuscate_model(matrices, config));
  AuditReport rep;
  rep.obfuscation = om.stats;
  std::vector<std::vector<float>> plain;
  for (const auto& nm : matrices) {
    CML_ASSIGN_OR_RETURN(std::vector<float> w, to_f32_rows(nm.w));
    plain.push_back(std::move(w));
  }
  std::mt19937_64 pick(0x5eed);
  // ---- static view: W'' against W ----
  for (size_t m = 0; m < matrices.size(); ++m) {
    const auto& e = om.secrets->entries[m];
    const WorkerMatrix& w2 = om.worker->matrices[e.index];
    const int64_t out = w2.out, in = w2.in;
    MatrixAudit a;
    a.name = e.name;
    a.out = out;
    a.in = in;
    a.chance_fraction = 1.0 / double(in);
    std::vector<int64_t> rows(static_cast<size_t>(out));
    for (int64_t i = 0; i < out; ++i) rows[size_t(i)] = i;
    std::shuffle(rows.begin(), rows.end(), pick);
    rows.resize(size_t(std::min(out, options.sample_rows)));
    const int64_t ns = int64_t(rows.size());
    std::vector<float> sample_unknown(static_cast<size_t>(ns * in)), sample_known(size_t(ns * in));
    for (int64_t r = 0; r < ns; ++r)
      for (int64_t j = 0; j < in; ++j) {
        const float v = w2.data[rows[size_t(r)] * in + j];
        sample_unknown[size_t(r * in + j)] = v;
        sample_known[size_t(r * in + e.secrets.perm[size_t(j)])] = v;
      }
    auto truth = unit_rows(plain[m].data(), out, in);
    std::vector<double> best;
    std::vector<int64_t> arg;
    best_matches(unit_rows(sample_known.data(), ns, in), ns, truth, out, in, best, arg);
    a.best_cos_perm_known_max = *std::max_element(best.begin(), best.end());
    std::nth_element(best.begin(), best.begin() + ns / 2, best.end());
    a.best_cos_perm_known_median = best[size_t(ns / 2)];
    best_matches(unit_rows(sample_unknown.data(), ns, in), ns, truth, out, in, best, arg);
    a.best_cos_perm_unknown_max = *std::max_element(best.begin(), best.end());
    // Column matching: columns of W'' (over a sample of rows) against columns of W.
    const int64_t cr = std::min(out, options.sample_cols_rows);
    std::vector<float> c2(static_cast<size_t>(in * cr)), c1(size_t(in * cr));
    for (int64_t j = 0; j < in; ++j)
      for (int64_t i = 0; i < cr; ++i) {
        c2[size_t(j * cr + i)] = w2.data[i * in + j];
        c1[size_t(j * cr + i)] = plain[m][size_t(i * in + j)];
      }
    best_matches(unit_rows(c2.data(), in, cr), in, unit_rows(c1.data(), in, cr), in, cr, best, arg);
    int64_t hit = 0;
    for (int64_t j = 0; j < in; ++j) hit += arg[size_t(j)] == int64_t(e.secrets.perm[size_t(j)]);
    a.perm_recovered_fraction = double(hit) / double(in);
    rep.matrices.push_back(a);
  }
  // ---- dynamic view: a recorded masked session ----
  LocalWorker worker;
  struct Seen {
    uint32_t matrix;
    std::vector<float> z, zz;
  };
  std::mutex mu;
  std::vector<Seen> transcript;
  std::unordered_set<std::string> inputs_seen;
  worker.service().set_observer([&](const ComputeRequest& q, std::span<const float> in, std::span<const float> out) {
    std::lock_guard lock(mu);
    transcript.push_back({q.parts[0], {in.begin(), in.end()}, {out.begin(), out.end()}});
    if (!inputs_seen.emplace(reinterpret_cast<const char*>(in.data()), in.size() * 4).second) ++rep.input_duplicates;
  });
  BackendConfig bc;
  bc.mask_scale = options.mask_scale;
  bc.worker_label = "audit";
  GroupCoverBackend backend(bc, om.secrets, om.worker, worker.factory());
  std::unordered_set<std::string> masks;
  backend.set_mask_observer([&](uint32_t, float, std::span<const float> r) {
    ++rep.masks_drawn;
    if (!masks.emplace(reinterpret_cast<const char*>(r.data()), r.size() * 4).second) ++rep.mask_duplicates;
  });
  std::vector<model::LinearId> ids;
  for (const auto& nm : matrices) {
    model::LinearPart p;
    p.name = nm.name;
    p.out_features = nm.w.out;
    p.in_features = nm.w.in;
    p.dtype = nm.w.dtype;
    p.weight = nm.w.data;
    p.transposed = nm.w.transposed;
    CML_ASSIGN_OR_RETURN(model::LinearId id, backend.add(std::span<const model::LinearPart>(&p, 1)));
    ids.push_back(id);
  }
  CML_RETURN_IF_ERROR(backend.finalize());
  SecureRng rng;
  std::vector<std::vector<float>> xs;
  std::vector<size_t> which;
  for (int64_t c = 0; c < options.calls; ++c) {
    const size_t m = size_t(c) % matrices.size();
    const int64_t in = matrices[m].w.in, out = matrices[m].w.out;
    // Transformer-like activation: Gaussian with a few outlier channels.
    std::vector<float> x(static_cast<size_t>(in));
    for (float& v : x) v = float(rng.normal());
    for (int k = 0; k < 3; ++k) x[rng.below(uint64_t(in))] *= 20.0f;
    std::vector<float> y(static_cast<size_t>(out));
    CML_RETURN_IF_ERROR(backend.run(ids[m], x.data(), 1, y.data()));
    xs.push_back(std::move(x));
    which.push_back(m);
  }
  rep.requests = int64_t(transcript.size());
  rep.rows = rep.requests;
  for (size_t c = 0; c < transcript.size() && c < xs.size(); ++c) {
    const size_t m = which[c];
    const auto& e = om.secrets->entries[m];
    const int64_t in = e.secrets.in, out = e.secrets.out;
    const auto& s = transcript[c];
    std::vector<float> xt(static_cast<size_t>(in));
    permute_rows(e.secrets, xs[c].data(), 1, xt.data());
    rep.max_cos_input_vs_activation = std::max(rep.max_cos_input_vs_activation, cosine(s.z.data(), xt.data(), in));
    rep.max_cos_input_vs_unpermuted = std::max(rep.max_cos_input_vs_unpermuted, cosine(s.z.data(), xs[c].data(), in));
    std::vector<float> y(static_cast<size_t>(out));
    gemm_abt(xs[c].data(), plain[m].data(), y.data(), 1, out, in);
    rep.max_cos_output_vs_true_output = std::max(rep.max_cos_output_vs_true_output, cosine(s.zz.data(), y.data(), out));
    std::vector<float> ctl_in(static_cast<size_t>(in)), ctl_out(static_cast<size_t>(out));
    rng.fill_mask(ctl_in);
    rng.fill_mask(ctl_out);
    rep.control_max_cos_random_vs_activation =
        std::max(rep.control_max_cos_random_vs_activation, cosine(ctl_in.data(), xt.data(), in));
    rep.control_max_cos_random_vs_output =
        std::max(rep.control_max_cos_random_vs_output, cosine(ctl_out.data(), y.data(), out));
    if (c < 256) {  // any true weight row among the inputs the worker received
      for (int64_t i = 0; i < out; ++i)
        rep.max_cos_input_vs_weight_row =
            std::max(rep.max_cos_input_vs_weight_row, cosine(s.z.data(), plain[m].data() + i * in, in));
    }
  }
  return rep;
}

void to_json(nlohmann::json& j, const AuditReport& r) {
  j = nlohmann::json::object();
  auto& ms = j["matrices"] = nlohmann::json::array();
  for (const auto& m : r.matrices)
    ms.push_back({{"name", m.name},
                  {"out", m.out},
                  {"in", m.in},
                  {"best_cos_perm_known_max", m.best_cos_perm_known_max},
                  {"best_cos_perm_known_median", m.best_cos_perm_known_median},
                  {"best_cos_perm_unknown_max", m.best_cos_perm_unknown_max},
                  {"perm_recovered_fraction", m.perm_recovered_fraction},
                  {"perm_chance_fraction", m.chance_fraction}});
  j["transcript"] = {{"requests", r.requests},
                     {"max_cos_masked_input_vs_permuted_activation", r.max_cos_input_vs_activation},
                     {"max_cos_masked_input_vs_activation", r.max_cos_input_vs_unpermuted},
                     {"max_cos_masked_input_vs_weight_row", r.max_cos_input_vs_weight_row},
                     {"max_cos_mixed_output_vs_true_output", r.max_cos_output_vs_true_output},
                     {"control_max_cos_uniform_vs_activation", r.control_max_cos_random_vs_activation},
                     {"control_max_cos_uniform_vs_true_output", r.control_max_cos_random_vs_output}};
  j["masks"] = {
      {"drawn", r.masks_drawn}, {"duplicates", r.mask_duplicates}, {"duplicate_worker_inputs", r.input_duplicates}};
  j["obfuscation"] = {{"max_condition", r.obfuscation.max_condition},
                      {"max_self_cos", r.obfuscation.max_self_cos},
                      {"redraws", r.obfuscation.redraws},
                      {"groups_over_bound", r.obfuscation.over_bound_groups}};
}

}  // namespace cml::groupcover
