#include "groupcover/backend.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>

#include "crypto/secret.h"
#include "groupcover/linalg.h"
#include "groupcover/model_bundle.h"
#include "groupcover/restore.h"
#include "groupcover/rng.h"
#include "tensor/half.h"

namespace cml::groupcover {
namespace {

void wipe(std::vector<float>& v) {
  crypto::secure_wipe({reinterpret_cast<uint8_t*>(v.data()), v.size() * sizeof(float)});
}

// Smallest power of two ≥ v (v > 0); 1 for v == 0.
float pow2_at_least(double v) {
  if (!(v > 0.0)) return 1.0f;
  int e = 0;
  const double f = std::frexp(v, &e);  // v = f·2^e, f in [0.5, 1)
  return std::ldexp(1.0f, f == 0.5 ? e - 1 : e);
}

float load_weight(const model::LinearPart& p, int64_t row, int64_t col) {
  const int64_t idx = p.transposed ? col * p.out_features + row : row * p.in_features + col;
  switch (p.dtype) {
    case tensor::DType::kF16:
      return tensor::f16_to_f32(static_cast<const uint16_t*>(p.weight)[idx]);
    case tensor::DType::kBF16:
      return tensor::bf16_to_f32(static_cast<const uint16_t*>(p.weight)[idx]);
    default:
      return static_cast<const float*>(p.weight)[idx];
  }
}

}  // namespace

double freivalds_tolerance(double kappa, int64_t in, double z_norm, double s_weighted_norm) {
  return kappa * 0x1.0p-24 * std::sqrt(double(in)) * z_norm * s_weighted_norm + 0x1.0p-40;
}

struct GroupCoverBackend::Part {
  model::LinearPart lp;
  const TeeEntry* entry = nullptr;
  const WorkerMatrix* w2 = nullptr;
  std::unique_ptr<MaskPool> pool;
  std::vector<double> s, v;  // Freivalds secret and W''ᵀs
  double s_wnorm = 0.0;
  std::vector<float> local_w;  // W as f32 rows, for the local fallback
  RestorePlan plan;            // restore laid out in group order (with the part's bias unless decoy-padded)
};

struct GroupCoverBackend::Op {
  std::vector<size_t> parts;
  int64_t in = 0, out = 0;
  std::vector<int64_t> col_off;
};

GroupCoverBackend::GroupCoverBackend(BackendConfig config, std::shared_ptr<const TeeSecrets> secrets,
                                     std::shared_ptr<const WorkerBundle> worker, LinkFactory connect)
    : config_(std::move(config)),
      secrets_(std::move(secrets)),
      worker_(std::move(worker)),
      connect_(std::move(connect)) {}

GroupCoverBackend::GroupCoverBackend(BackendConfig config, ObfuscationConfig obfuscation, LinkFactory connect)
    : config_(std::move(config)), obfuscation_(obfuscation), session_mode_(true), connect_(std::move(connect)) {}

GroupCoverBackend::~GroupCoverBackend() {
  {
    std::lock_guard lock(refill_mu_);
    stop_ = true;
  }
  refill_cv_.notify_all();
  if (refill_thread_.joinable()) refill_thread_.join();
  if (link_) link_->abort();
  crypto::secure_wipe({reinterpret_cast<uint8_t*>(restore_work_.data()), restore_work_.size() * sizeof(double)});
}

Result<model::LinearId> GroupCoverBackend::add(std::span<const model::LinearPart> parts) {
  if (finalized_) return invalid_argument("groupcover backend: add() after finalize()");
  if (parts.empty() || parts.size() > kMaxRequestParts) return invalid_argument("groupcover backend: bad part count");
  std::map<std::string, size_t> names;
  if (!session_mode_) names = secrets_->by_name();
  Op op;
  op.in = parts[0].in_features;
  for (const auto& lp : parts) {
    if (lp.in_features != op.in) return invalid_argument("groupcover backend: parts of one op differ in in_features");
    if (lp.weight == nullptr || lp.out_features < 1 || lp.in_features < 1 || lp.out_features > kMaxBundleDim ||
        lp.in_features > kMaxBundleDim)
      return invalid_argument("groupcover backend: part '" + lp.name + "' has no weights or bad dimensions");
    if (lp.dtype != tensor::DType::kF32 && lp.dtype != tensor::DType::kF16 && lp.dtype != tensor::DType::kBF16)
      return invalid_argument("groupcover backend: part '" + lp.name + "' must be F32, F16 or BF16");
    if (session_mode_) {
      auto part = std::make_unique<Part>();
      part->lp = lp;
      op.col_off.push_back(op.out);
      op.out += lp.out_features;
      op.parts.push_back(parts_.size());
      parts_.push_back(std::move(part));
      continue;
    }
    auto it = names.find(lp.name);
    if (it == names.end())
      return not_found("groupcover: no obfuscation secrets for tensor '" + lp.name + "' (obfuscate this model first)");
    const TeeEntry& e = secrets_->entries[it->second];
    if (e.secrets.out != lp.out_features || e.secrets.in != lp.in_features)
      return invalid_argument("groupcover: secrets for '" + lp.name + "' have another shape than the model");
    if (e.index >= worker_->matrices.size()) return invalid_argument("groupcover: secrets name a missing matrix");
    const WorkerMatrix& w = worker_->matrices[e.index];
    if (w.out != uint32_t(lp.out_features) || w.in != uint32_t(lp.in_features))
      return invalid_argument("groupcover: worker bundle matrix for '" + lp.name + "' has another shape");
    auto part = std::make_unique<Part>();
    part->lp = lp;
    part->entry = &e;
    part->w2 = &w;
    op.col_off.push_back(op.out);
    op.out += lp.out_features;
    op.parts.push_back(parts_.size());
    parts_.push_back(std::move(part));
  }
  ops_.push_back(std::move(op));
  return model::LinearId(ops_.size() - 1);
}

int64_t GroupCoverBackend::out_features(model::LinearId id) const {
  CML_CHECK(id < ops_.size());
  return ops_[id].out;
}

Status GroupCoverBackend::obfuscate_parts() {
  if (config_.unprotected_baseline) {
    // Identity "obfuscation": W'' = W, π = id, one-row groups with A = 1. No protection at all.
    auto secrets = std::make_shared<TeeSecrets>();
    std::vector<std::vector<float>> ws;
    std::vector<MatrixRef> refs;
    for (auto& p : parts_) {
      MatrixView v{p->lp.weight, p->lp.dtype, p->lp.out_features, p->lp.in_features, p->lp.transposed};
      CML_ASSIGN_OR_RETURN(std::vector<float> w, to_f32_rows(v));
      ws.push_back(std::move(w));
      MatrixSecrets m;
      m.out = p->lp.out_features;
      m.in = p->lp.in_features;
      for (int64_t j = 0; j < m.in; ++j) m.perm.push_back(uint32_t(j));
      for (int64_t i = 0; i <= m.out; ++i) m.group_offsets.push_back(uint32_t(i));
      for (int64_t i = 0; i < m.out; ++i) m.group_rows.push_back(uint32_t(i));
      m.inv_mix.assign(size_t(m.out), 1.0);
      secrets->entries.push_back({p->lp.name, uint32_t(secrets->entries.size()), std::move(m)});
    }
    for (size_t i = 0; i < ws.size(); ++i)
      refs.push_back({uint32_t(parts_[i]->lp.out_features), uint32_t(parts_[i]->lp.in_features), ws[i].data()});
    auto worker = std::make_shared<WorkerBundle>(make_worker_bundle(refs));
    secrets->worker_digest = worker->digest;
    secrets_ = secrets;
    worker_ = worker;
    for (size_t i = 0; i < parts_.size(); ++i) {
      parts_[i]->entry = &secrets_->entries[i];
      parts_[i]->w2 = &worker_->matrices[i];
    }
    return ok_status();
  }
  std::vector<NamedMatrix> named;
  for (auto& p : parts_) {
    NamedMatrix m;
    m.name = p->lp.name;
    m.w = {p->lp.weight, p->lp.dtype, p->lp.out_features, p->lp.in_features, p->lp.transposed};
    if (p->lp.out_features == 1) {
      // One output row cannot be mixed with anything: add a random decoy row of the same norm.
      CML_ASSIGN_OR_RETURN(std::vector<float> row, to_f32_rows(m.w));
      SecureRng rng;
      double norm = 0;
      for (float f : row) norm += double(f) * f;
      std::vector<float> decoy(row.size());
      double dn = 0;
      for (float& f : decoy) {
        f = float(rng.normal());
        dn += double(f) * f;
      }
      const double k = norm > 0 ? std::sqrt(norm / dn) : 1.0;
      for (float& f : decoy) f = float(f * k);
      row.insert(row.end(), decoy.begin(), decoy.end());
      padded_.push_back(std::move(row));
      m.w = {padded_.back().data(), tensor::DType::kF32, 2, p->lp.in_features, false};
    }
    named.push_back(m);
  }
  CML_ASSIGN_OR_RETURN(ObfuscatedModel om, obfuscate_model(named, obfuscation_));
  secrets_ = om.secrets;
  worker_ = om.worker;
  for (size_t i = 0; i < parts_.size(); ++i) {
    parts_[i]->entry = &secrets_->entries[i];
    parts_[i]->w2 = &worker_->matrices[i];
  }
  return ok_status();
}

Status GroupCoverBackend::finalize() {
  if (finalized_) return ok_status();
  if (session_mode_) CML_RETURN_IF_ERROR(obfuscate_parts());
  if (secrets_->worker_digest != worker_->digest)
    return invalid_argument("groupcover: worker bundle does not match the TEE bundle (digest differs)");
  if (!(config_.mask_scale >= 1.0)) return invalid_argument("groupcover: mask scale must be ≥ 1");
  for (const auto& m : worker_->matrices) shapes_.shapes.emplace_back(m.out, m.in);
  SecureRng rng;
  for (auto& p : parts_) {
    const int64_t out = p->w2->out, in = p->lp.in_features;  // out > lp.out_features for a decoy-padded part
    const MatrixSecrets& sec = p->entry->secrets;
    if (config_.verify_against_model && p->lp.weight) {
      // restore(W''·x̃) must equal W·x for a random x: catches secrets of another model.
      std::vector<float> x(static_cast<size_t>(in)), xt(x.size()), z(static_cast<size_t>(out)), y(z.size());
      rng.fill_mask(x);
      permute_rows(sec, x.data(), 1, xt.data());
      gemm_abt(xt.data(), p->w2->data, z.data(), 1, out, in);
      restore_rows(sec, z.data(), nullptr, nullptr, 1, nullptr, y.data(), out);
      double num = 0, den = 0;
      for (int64_t i = 0; i < p->lp.out_features; ++i) {
        double ref = 0;
        for (int64_t j = 0; j < in; ++j) ref += double(load_weight(p->lp, i, j)) * x[size_t(j)];
        num += (ref - y[size_t(i)]) * (ref - y[size_t(i)]);
        den += ref * ref;
      }
      if (!(num <= 1e-6 * den + 1e-30))
        return invalid_argument("groupcover: TEE bundle does not restore the model's weight '" + p->lp.name +
                                "' (bundle made for another model?)");
    }
    if (config_.freivalds) {
      p->s.resize(size_t(out));
      for (double& v : p->s) v = (1.0 + rng.uniform()) * ((rng.next_u64() & 1) ? 1.0 : -1.0);
      p->v.assign(size_t(in), 0.0);
      double acc = 0;
      for (int64_t i = 0; i < out; ++i) {
        const float* row = p->w2->data + i * in;
        double rn = 0;
        for (int64_t j = 0; j < in; ++j) {
          p->v[size_t(j)] += p->s[size_t(i)] * row[j];
          rn += double(row[j]) * row[j];
        }
        acc += p->s[size_t(i)] * p->s[size_t(i)] * rn;
      }
      p->s_wnorm = std::sqrt(acc);
    }
    if (config_.on_mismatch == OnMismatch::kLocal) {
      if (!p->lp.weight) return invalid_argument("groupcover: local fallback needs the model's weights");
      p->local_w.resize(size_t(p->lp.out_features * in));
      for (int64_t i = 0; i < p->lp.out_features; ++i)
        for (int64_t j = 0; j < in; ++j) p->local_w[size_t(i * in + j)] = load_weight(p->lp, i, j);
    }
    {
      const MatrixSecrets& ms = p->entry->secrets;
      const float* bias = p->lp.bias ? p->lp.bias : (ms.bias.empty() ? nullptr : ms.bias.data());
      p->plan = RestorePlan(ms, out == p->lp.out_features ? bias : nullptr);
    }
    if (!config_.unprotected_baseline)
      p->pool = std::make_unique<MaskPool>(*p->w2, config_.pool_capacity, config_.refill_batch);
  }
  finalized_ = true;
  if (parts_.empty()) return ok_status();
  if (!config_.unprotected_baseline) refill_thread_ = std::thread([this] { refill_loop(); });
  std::lock_guard lock(link_mu_);
  return ensure_link(Deadline::after(std::max<Duration>(config_.timeout, std::chrono::minutes(5))));
}

void GroupCoverBackend::refill_loop() {
  for (;;) {
    bool did = false;
    for (auto& p : parts_) {
      {
        std::lock_guard lock(refill_mu_);
        if (stop_) return;
      }
      if (p->pool->refill()) did = true;
    }
    if (did) continue;
    std::unique_lock lock(refill_mu_);
    refill_cv_.wait_for(lock, std::chrono::milliseconds(200), [&] {
      if (stop_) return true;
      for (auto& p : parts_)
        if (p->pool->wants_refill()) return true;
      return false;
    });
    if (stop_) return;
  }
}

Status GroupCoverBackend::ensure_link(Deadline deadline) {
  if (link_) return ok_status();
  auto fail = [&](const Status& st) {
    if (link_) link_->abort();
    link_.reset();
    return st.with_context("groupcover worker " + config_.worker_label);
  };
  auto l = connect_(deadline);
  if (!l.is_ok()) return fail(l.status());
  link_ = std::move(l).value();
  if (next_id_ > 1) ++reconnects_;
  Hello h;
  h.digest = worker_->digest;
  h.model = shapes_;
  Status st = link_->send(encode_hello(h), {}, deadline);
  if (!st.is_ok()) return fail(st);
  auto expect = [&](MsgType t) -> Status {
    CML_RETURN_IF_ERROR(link_->recv(reply_, 0, deadline));
    auto type = peek_type(reply_.header);
    if (!type.is_ok()) return type.status();
    if (*type == MsgType::kError) {
      auto text = decode_error(reply_.header);
      return unavailable("worker refused: " + (text.is_ok() ? *text : std::string("(unreadable error)")));
    }
    if (*type != t) return protocol_error("unexpected message from the worker");
    return ok_status();
  };
  st = expect(MsgType::kHelloOk);
  if (!st.is_ok()) return fail(st);
  auto need = decode_hello_ok(reply_.header);
  if (!need.is_ok()) return fail(need.status());
  if (*need) {
    for (uint32_t m = 0; m < worker_->matrices.size(); ++m) {
      const WorkerMatrix& w = worker_->matrices[m];
      const uint32_t step = std::max<uint32_t>(1, kMaxUploadFloats / w.in);
      for (uint32_t r0 = 0; r0 < w.out; r0 += step) {
        const uint32_t rows = std::min(step, w.out - r0);
        st = link_->send(encode_upload({m, r0, rows}), {w.data + size_t(r0) * w.in, size_t(rows) * w.in}, deadline);
        if (!st.is_ok()) return fail(st);
        bytes_sent_ += uint64_t(rows) * w.in * 4;
      }
    }
    st = link_->send(encode_simple(MsgType::kUploadDone), {}, deadline);
    if (!st.is_ok()) return fail(st);
    st = expect(MsgType::kReady);
    if (!st.is_ok()) return fail(st);
  }
  return ok_status();
}

Status GroupCoverBackend::exchange(const Op& op, int64_t rows, Deadline deadline) {
  ComputeRequest req;
  req.id = next_id_++;
  req.rows = uint32_t(rows);
  uint64_t out_total = 0;
  for (size_t pi : op.parts) {
    req.parts.push_back(parts_[pi]->entry->index);
    out_total += parts_[pi]->w2->out;
  }
  CML_RETURN_IF_ERROR(link_->send(encode_compute(req), send_buf_, deadline));
  bytes_sent_ += send_buf_.size() * 4;
  CML_RETURN_IF_ERROR(link_->recv(reply_, uint64_t(rows) * out_total, deadline));
  auto type = peek_type(reply_.header);
  if (!type.is_ok()) return type.status();
  if (*type == MsgType::kError) {
    auto text = decode_error(reply_.header);
    return unavailable("worker error: " + (text.is_ok() ? *text : std::string("(unreadable)")));
  }
  auto res = decode_result(reply_.header, req, shapes_, reply_.payload.size());
  if (!res.is_ok()) return res.status();
  bytes_received_ += reply_.payload.size() * 4;
  return ok_status();
}

bool GroupCoverBackend::check_freivalds(const Part& p, const float* z, const float* zz, int64_t rows) {
  const int64_t in = p.lp.in_features, out = p.w2->out;
  bool ok = true;
  for (int64_t t = 0; t < rows; ++t) {
    const float* zi = z + t * in;
    const float* zo = zz + t * out;
    double lhs = 0, rhs = 0, zn = 0;
    for (int64_t i = 0; i < out; ++i) lhs += p.s[size_t(i)] * zo[i];
    for (int64_t j = 0; j < in; ++j) {
      rhs += p.v[size_t(j)] * zi[j];
      zn += double(zi[j]) * zi[j];
    }
    const double tol = freivalds_tolerance(config_.freivalds_kappa, in, std::sqrt(zn), p.s_wnorm);
    if (!(std::fabs(lhs - rhs) <= tol)) ok = false;  // NaN fails too
  }
  ++fchecks_;
  return ok;
}

void GroupCoverBackend::run_local(const Op& op, const float* x, int64_t rows, float* y) {
  std::vector<float> tmp;
  for (size_t k = 0; k < op.parts.size(); ++k) {
    const Part& p = *parts_[op.parts[k]];
    const int64_t out = p.lp.out_features;
    tmp.resize(size_t(rows * out));
    gemm_abt(x, p.local_w.data(), tmp.data(), rows, out, p.lp.in_features);
    for (int64_t t = 0; t < rows; ++t)
      for (int64_t i = 0; i < out; ++i)
        y[t * op.out + op.col_off[k] + i] = tmp[size_t(t * out + i)] + (p.lp.bias ? p.lp.bias[i] : 0.0f);
  }
}

Status GroupCoverBackend::run(model::LinearId id, const float* x, int64_t rows, float* y) {
  if (!finalized_) return invalid_argument("groupcover backend: run() before finalize()");
  if (id >= ops_.size()) return invalid_argument("groupcover backend: unknown op");
  if (rows < 1 || rows > kMaxRequestRows) return invalid_argument("groupcover backend: row count out of range");
  const Op& op = ops_[id];
  std::lock_guard lock(link_mu_);
  const Deadline deadline = Deadline::after(config_.timeout);
  int64_t total_in = 0, total_out = 0;
  for (size_t pi : op.parts) {
    total_in += rows * parts_[pi]->lp.in_features;
    total_out += rows * parts_[pi]->w2->out;
  }
  send_buf_.resize(size_t(total_in));
  scale_buf_.resize(size_t(rows) * op.parts.size());
  part_u_.assign(op.parts.size(), nullptr);
  // Masks are used in place in the pool when they lie in one batch (decode: always), else copied out.
  // Either way they are wiped when run() returns, on every path.
  struct MaskScope {
    GroupCoverBackend& be;
    bool copied = false;
    ~MaskScope() {
      for (auto& [pool, l] : be.leases_) pool->release(l);
      be.leases_.clear();
      if (copied) {
        wipe(be.mask_r_);
        wipe(be.mask_u_);
      }
    }
  } scope{*this};
  // Mask every part's permuted input.
  int64_t off_in = 0, off_out = 0;
  bool wake_refill = false;
  for (size_t k = 0; k < op.parts.size(); ++k) {
    Part& p = *parts_[op.parts[k]];
    const int64_t in = p.lp.in_features, out = p.w2->out;
    float* z = send_buf_.data() + off_in;
    if (config_.unprotected_baseline) {  // no mask: restore gets u = scale = null
      std::memcpy(z, x, size_t(rows * in) * sizeof(float));
      off_in += rows * in;
      off_out += rows * out;
      continue;
    }
    permute_rows(p.entry->secrets, x, rows, z);
    const float* r = nullptr;
    MaskPool::Lease l = p.pool->lease(rows);
    if (l.r) {
      leases_.emplace_back(p.pool.get(), l);
      r = l.r;
      part_u_[k] = l.u;
      wake_refill = wake_refill || l.wants_refill;
    } else {
      if (!scope.copied) {
        mask_r_.resize(size_t(rows * op.in));
        mask_u_.resize(size_t(total_out));
        scope.copied = true;
      }
      if (p.pool->take(rows, mask_r_.data(), mask_u_.data() + off_out)) wake_refill = true;
      r = mask_r_.data();
      part_u_[k] = mask_u_.data() + off_out;
    }
    for (int64_t t = 0; t < rows; ++t) {
      float* zr = z + t * in;
      const float* rr = r + t * in;
      const float m = max_abs(zr, in);
      if (!std::isfinite(m)) return invalid_argument("groupcover backend: input is not finite");
      const float c = pow2_at_least(double(m) * config_.mask_scale);
      scale_buf_[k * size_t(rows) + size_t(t)] = c;
      add_scaled(zr, rr, c, in);
      if (mask_observer_) mask_observer_(p.entry->index, c, {rr, size_t(in)});
    }
    off_in += rows * in;
    off_out += rows * out;
  }
  if (wake_refill) {
    { std::lock_guard wake(refill_mu_); }  // the refill thread is either before its check or waiting
    refill_cv_.notify_one();
  }
  ++calls_;
  rows_ += uint64_t(rows);
  // One round trip.
  Status st = ensure_link(deadline);
  if (st.is_ok()) {
    st = exchange(op, rows, deadline);
    if (!st.is_ok()) {
      link_->abort();
      link_.reset();
      st = st.with_context("groupcover worker " + config_.worker_label);
    }
  }
  if (!st.is_ok()) return st;
  // Integrity.
  if (config_.freivalds) {
    bool ok = true;
    off_in = off_out = 0;
    for (size_t k = 0; k < op.parts.size(); ++k) {
      const Part& p = *parts_[op.parts[k]];
      ok = check_freivalds(p, send_buf_.data() + off_in, reply_.payload.data() + off_out, rows) && ok;
      off_in += rows * p.lp.in_features;
      off_out += rows * p.w2->out;
    }
    if (!ok) {
      ++ffail_;
      if (config_.on_mismatch == OnMismatch::kLocal) {
        ++fallbacks_;
        run_local(op, x, rows, y);
        return ok_status();
      }
      return protocol_error("groupcover worker " + config_.worker_label +
                            " returned a result that failed the Freivalds integrity check (worker is faulty or "
                            "malicious)");
    }
  }
  // Unmask and restore each part into its columns of y.
  off_out = 0;
  for (size_t k = 0; k < op.parts.size(); ++k) {
    const Part& p = *parts_[op.parts[k]];
    const float* bias =
        p.lp.bias ? p.lp.bias : (p.entry->secrets.bias.empty() ? nullptr : p.entry->secrets.bias.data());
    const int64_t w_out = p.w2->out, out = p.lp.out_features;
    const float* u = part_u_[k];
    const float* scale = config_.unprotected_baseline ? nullptr : scale_buf_.data() + k * size_t(rows);
    if (w_out == out) {
      p.plan.run(reply_.payload.data() + off_out, u, scale, rows, y + op.col_off[k], op.out, restore_work_);
    } else {  // decoy-padded part: restore all rows (the plan has no bias), keep the real ones
      restore_tmp_.resize(size_t(rows * w_out));
      p.plan.run(reply_.payload.data() + off_out, u, scale, rows, restore_tmp_.data(), w_out, restore_work_);
      for (int64_t t = 0; t < rows; ++t)
        for (int64_t i = 0; i < out; ++i)
          y[t * op.out + op.col_off[k] + i] = restore_tmp_[size_t(t * w_out + i)] + (bias ? bias[i] : 0.0f);
    }
    off_out += rows * w_out;
  }
  return ok_status();
}

bool GroupCoverBackend::wait_pools_full(Duration timeout) {
  const Deadline d = Deadline::after(timeout);
  for (;;) {
    bool full = true;
    for (auto& p : parts_)
      if (p->pool && p->pool->wants_refill()) full = false;
    if (full) return true;
    if (d.expired()) return false;
    refill_cv_.notify_one();
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

int64_t GroupCoverBackend::fill_pools() {
  int64_t n = 0;
  for (auto& p : parts_)
    if (p->pool) n += p->pool->top_up();
  return n;
}

BackendStats GroupCoverBackend::stats() const {
  BackendStats s;
  s.calls = calls_;
  s.rows = rows_;
  for (const auto& p : parts_) {
    if (!p->pool) continue;
    auto ps = p->pool->stats();
    s.masks_taken += ps.taken;
    s.pool_misses += ps.misses;
    s.pool_refills += ps.refills;
    s.pool_storage += ps.storage;
  }
  s.freivalds_checks = fchecks_;
  s.freivalds_failures = ffail_;
  s.local_fallbacks = fallbacks_;
  s.reconnects = reconnects_;
  s.bytes_sent = bytes_sent_;
  s.bytes_received = bytes_received_;
  return s;
}

}  // namespace cml::groupcover
