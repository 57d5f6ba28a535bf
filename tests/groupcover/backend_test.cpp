#include "groupcover/backend.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <cstring>
#include <set>
#include <thread>

#include "groupcover/local_worker.h"
#include "support/test_support.h"
#include "test_util.h"

namespace cml::groupcover {
namespace {

using testing::random_matrix;

// A model of a few linear ops with their plaintext weights and obfuscated bundles.
struct Fixture {
  struct Mat {
    std::string name;
    int64_t out, in;
    std::vector<float> w, b;
  };
  std::vector<Mat> mats;
  ObfuscatedModel om;

  explicit Fixture(std::vector<std::tuple<std::string, int64_t, int64_t>> spec, bool with_bias = true,
                   uint64_t seed = 1000) {
    for (auto& [n, out, in] : spec) {
      Mat m{n, out, in, random_matrix(out, in, seed++, 1.0f / std::sqrt(float(in))),
            with_bias ? random_matrix(1, out, seed++) : std::vector<float>{}};
      mats.push_back(std::move(m));
    }
    std::vector<NamedMatrix> nm;
    for (auto& m : mats)
      nm.push_back({m.name, {m.w.data(), tensor::DType::kF32, m.out, m.in, false}, m.b.empty() ? nullptr : m.b.data()});
    auto r = obfuscate_model(nm, {});
    CML_CHECK_MSG(r.is_ok(), r.status().to_string());
    om = *r;
  }
  model::LinearPart part(size_t i) const {
    const Mat& m = mats[i];
    model::LinearPart p;
    p.name = m.name;
    p.out_features = m.out;
    p.in_features = m.in;
    p.weight = m.w.data();
    p.bias = m.b.empty() ? nullptr : m.b.data();
    return p;
  }
  std::unique_ptr<GroupCoverBackend> backend(LocalWorker& w, BackendConfig c = {}) const {
    c.worker_label = "local";
    return std::make_unique<GroupCoverBackend>(c, om.secrets, om.worker, w.factory());
  }
};

// y for an op made of `parts`, in double.
std::vector<double> reference_op(const Fixture& f, const std::vector<size_t>& parts, const float* x, int64_t rows) {
  int64_t total = 0;
  for (size_t p : parts) total += f.mats[p].out;
  std::vector<double> y(size_t(rows * total));
  int64_t off = 0;
  for (size_t p : parts) {
    const auto& m = f.mats[p];
    auto r = testing::reference(m.w, m.b.empty() ? nullptr : m.b.data(), x, rows, m.out, m.in);
    for (int64_t t = 0; t < rows; ++t)
      for (int64_t i = 0; i < m.out; ++i) y[size_t(t * total + off + i)] = r[size_t(t * m.out + i)];
    off += m.out;
  }
  return y;
}

// Activations with a transformer-like profile: mostly small, a few large outlier channels.
std::vector<float> activations(int64_t rows, int64_t in, uint64_t seed) {
  auto x = random_matrix(rows, in, seed);
  for (int64_t t = 0; t < rows; ++t) x[size_t(t * in + (seed % in))] *= 20.0f;
  return x;
}

TEST(Backend, RestoresFusedPartsWithinTolerance) {
  Fixture f({{"q", 64, 96}, {"k", 32, 96}, {"v", 48, 96}, {"o", 96, 64}});
  LocalWorker w;
  auto be = f.backend(w);
  std::vector<model::LinearPart> qkv = {f.part(0), f.part(1), f.part(2)};
  std::vector<model::LinearPart> o = {f.part(3)};
  auto id_qkv = be->add(qkv);
  auto id_o = be->add(o);
  ASSERT_TRUE(id_qkv.is_ok() && id_o.is_ok());
  ASSERT_TRUE(be->finalize().is_ok());
  EXPECT_EQ(be->out_features(*id_qkv), 144);
  double worst = 0;
  for (int iter = 0; iter < 50; ++iter) {
    const int64_t rows = 1 + iter % 9;
    auto x = activations(rows, 96, 500 + iter);
    std::vector<float> y(size_t(rows * 144));
    ASSERT_TRUE(be->run(*id_qkv, x.data(), rows, y.data()).is_ok());
    worst =
        std::max(worst, testing::max_row_rel_error(y.data(), reference_op(f, {0, 1, 2}, x.data(), rows), rows, 144));
    auto x2 = activations(rows, 64, 900 + iter);
    std::vector<float> y2(size_t(rows * 96));
    ASSERT_TRUE(be->run(*id_o, x2.data(), rows, y2.data()).is_ok());
    worst = std::max(worst, testing::max_row_rel_error(y2.data(), reference_op(f, {3}, x2.data(), rows), rows, 96));
  }
  RecordProperty("worst_row_rel_error", std::to_string(worst));
  std::printf("worst row relative restore error: %.3g\n", worst);
  EXPECT_LT(worst, 1e-4);
  auto st = be->stats();
  EXPECT_EQ(st.calls, 100u);
  EXPECT_EQ(st.masks_taken, st.rows * 0 + st.masks_taken);
  EXPECT_EQ(w.service().stats().requests, 100u);
}

TEST(Backend, MasksNeverRepeatOver100000Calls) {
  Fixture f({{"small", 8, 16}}, false);
  LocalWorker w;
  std::set<std::string> seen_masks, seen_inputs;
  size_t observed = 0;
  std::mutex mu;
  w.service().set_observer([&](const ComputeRequest&, std::span<const float> in, std::span<const float>) {
    std::lock_guard lock(mu);
    seen_inputs.emplace(reinterpret_cast<const char*>(in.data()), in.size() * 4);
  });
  BackendConfig c;
  c.pool_capacity = 512;
  c.refill_batch = 128;
  auto be = f.backend(w, c);
  be->set_mask_observer([&](uint32_t, float, std::span<const float> r) {
    seen_masks.emplace(reinterpret_cast<const char*>(r.data()), r.size() * 4);
    ++observed;
  });
  std::vector<model::LinearPart> p = {f.part(0)};
  auto id = be->add(p);
  ASSERT_TRUE(be->finalize().is_ok());
  const auto x = activations(1, 16, 3);  // the same input every call: only the mask changes
  std::vector<float> y(8);
  constexpr int kCalls = 100000;
  for (int i = 0; i < kCalls; ++i) ASSERT_TRUE(be->run(*id, x.data(), 1, y.data()).is_ok());
  EXPECT_EQ(observed, size_t(kCalls));
  EXPECT_EQ(seen_masks.size(), size_t(kCalls)) << "a mask was reused";
  std::lock_guard lock(mu);
  EXPECT_EQ(seen_inputs.size(), size_t(kCalls)) << "the worker saw the same masked input twice";
  auto st = be->stats();
  EXPECT_EQ(st.masks_taken, uint64_t(kCalls));
  EXPECT_GT(st.pool_refills, 0u);
}

TEST(Backend, PoolCountsRefillsAndMisses) {
  Fixture f({{"m", 16, 24}});
  LocalWorker w;
  BackendConfig c;
  c.pool_capacity = 8;
  c.refill_batch = 4;
  auto be = f.backend(w, c);
  std::vector<model::LinearPart> p = {f.part(0)};
  auto id = be->add(p);
  ASSERT_TRUE(be->finalize().is_ok());
  ASSERT_TRUE(cml::testing::wait_for([&] { return be->stats().pool_refills >= 2; }, std::chrono::seconds(10)));
  auto x = activations(40, 24, 5);
  std::vector<float> y(size_t(40 * 16));
  ASSERT_TRUE(be->run(*id, x.data(), 40, y.data()).is_ok());
  auto st = be->stats();
  EXPECT_EQ(st.masks_taken, 40u);
  EXPECT_GE(st.pool_misses, 32u);  // at most 8 came from the pool
  EXPECT_LE(st.pool_misses, 40u);
  EXPECT_LT(testing::max_row_rel_error(y.data(), reference_op(f, {0}, x.data(), 40), 40, 16), 1e-4);
}

TEST(Backend, FreivaldsHasNoFalseAlarmsOnHonestWorker) {
  Fixture f({{"a", 128, 256}, {"b", 256, 128}});
  LocalWorker w;
  BackendConfig c;
  c.freivalds = true;
  auto be = f.backend(w, c);
  std::vector<model::LinearPart> a = {f.part(0)}, b = {f.part(1)};
  auto ia = be->add(a);
  auto ib = be->add(b);
  ASSERT_TRUE(be->finalize().is_ok());
  for (int i = 0; i < 300; ++i) {
    const int64_t rows = 1 + i % 5;
    auto x = activations(rows, 256, 70 + i);
    for (float& v : x) v *= std::ldexp(1.0f, (i % 11) - 5);  // many scales
    std::vector<float> y(size_t(rows * 128));
    ASSERT_TRUE(be->run(*ia, x.data(), rows, y.data()).is_ok()) << i;
    auto x2 = activations(rows, 128, 170 + i);
    std::vector<float> y2(size_t(rows * 256));
    ASSERT_TRUE(be->run(*ib, x2.data(), rows, y2.data()).is_ok()) << i;
  }
  EXPECT_EQ(be->stats().freivalds_failures, 0u);
  EXPECT_EQ(be->stats().freivalds_checks, 600u);
}

// Corrupts one entry of every result by `rel` times the largest |entry| of that result.
void corrupt_one(WorkerService& s, double rel) {
  s.set_corruptor([rel](const ComputeRequest& q, std::span<const float>, std::span<float> out) {
    float m = 0;
    for (float v : out) m = std::max(m, std::fabs(v));
    out[q.id % out.size()] += float(rel) * m;
  });
}

TEST(Backend, CorruptingWorkerIsDetected) {
  Fixture f({{"a", 128, 256}});
  LocalWorker w;
  corrupt_one(w.service(), 1e-3);
  BackendConfig c;
  c.freivalds = true;
  auto be = f.backend(w, c);
  std::vector<model::LinearPart> a = {f.part(0)};
  auto id = be->add(a);
  ASSERT_TRUE(be->finalize().is_ok());
  int detected = 0;
  for (int i = 0; i < 50; ++i) {
    auto x = activations(2, 256, 300 + i);
    std::vector<float> y(256);
    Status st = be->run(*id, x.data(), 2, y.data());
    if (!st.is_ok()) {
      EXPECT_EQ(st.code(), StatusCode::kProtocol);
      EXPECT_NE(st.message().find("Freivalds"), std::string::npos);
      ++detected;
    }
  }
  EXPECT_EQ(detected, 50);
  EXPECT_EQ(be->stats().freivalds_failures, 50u);
}

TEST(Backend, CorruptionFallsBackToLocalWhenConfigured) {
  Fixture f({{"a", 64, 96}});
  LocalWorker w;
  corrupt_one(w.service(), 0.5);
  BackendConfig c;
  c.freivalds = true;
  c.on_mismatch = OnMismatch::kLocal;
  auto be = f.backend(w, c);
  std::vector<model::LinearPart> a = {f.part(0)};
  auto id = be->add(a);
  ASSERT_TRUE(be->finalize().is_ok());
  auto x = activations(3, 96, 8);
  std::vector<float> y(size_t(3 * 64));
  ASSERT_TRUE(be->run(*id, x.data(), 3, y.data()).is_ok());
  EXPECT_LT(testing::max_row_rel_error(y.data(), reference_op(f, {0}, x.data(), 3), 3, 64), 1e-5);
  EXPECT_EQ(be->stats().local_fallbacks, 1u);
}

TEST(Backend, WithoutFreivaldsCorruptionGoesThrough) {
  // The check is what catches it: with it off, the same corruption changes the output.
  Fixture f({{"a", 64, 96}});
  LocalWorker w;
  corrupt_one(w.service(), 0.5);
  auto be = f.backend(w);
  std::vector<model::LinearPart> a = {f.part(0)};
  auto id = be->add(a);
  ASSERT_TRUE(be->finalize().is_ok());
  auto x = activations(1, 96, 9);
  std::vector<float> y(64);
  ASSERT_TRUE(be->run(*id, x.data(), 1, y.data()).is_ok());
  EXPECT_GT(testing::max_row_rel_error(y.data(), reference_op(f, {0}, x.data(), 1), 1, 64), 1e-2);
}

TEST(Backend, TwoStagesShareOneWorkerConcurrently) {
  Fixture f({{"a", 64, 96}, {"b", 96, 64}});
  LocalWorker w;
  auto be1 = f.backend(w);
  auto be2 = f.backend(w);
  std::vector<model::LinearPart> a = {f.part(0)}, b = {f.part(1)};
  auto i1 = be1->add(a);
  auto i2 = be2->add(b);
  ASSERT_TRUE(be1->finalize().is_ok());
  ASSERT_TRUE(be2->finalize().is_ok());
  std::atomic<int> bad{0};
  auto stage = [&](GroupCoverBackend& be, model::LinearId id, size_t part, int64_t in, int64_t out, uint64_t seed) {
    for (int i = 0; i < 200; ++i) {
      auto x = activations(3, in, seed + i);
      std::vector<float> y(size_t(3 * out));
      if (!be.run(id, x.data(), 3, y.data()).is_ok() ||
          testing::max_row_rel_error(y.data(), reference_op(f, {part}, x.data(), 3), 3, out) > 1e-4)
        ++bad;
    }
  };
  std::thread t1(stage, std::ref(*be1), *i1, 0, 96, 64, 10000);
  std::thread t2(stage, std::ref(*be2), *i2, 1, 64, 96, 20000);
  t1.join();
  t2.join();
  EXPECT_EQ(bad.load(), 0);
  auto ws = w.service().stats();
  EXPECT_EQ(ws.uploads, 1u) << "the model must be registered once and shared";
  EXPECT_EQ(ws.connections, 2u);
  EXPECT_EQ(ws.requests, 400u);
}

TEST(Backend, WorkerKilledMidRequestThenBack) {
  Fixture f({{"a", 32, 48}});
  LocalWorker w;
  std::atomic<bool> kill{false};
  w.service().set_on_request([&](const ComputeRequest&) {
    if (kill.exchange(false)) {
      w.set_down(true);
      w.kill_connections();
    }
  });
  auto be = f.backend(w);
  std::vector<model::LinearPart> a = {f.part(0)};
  auto id = be->add(a);
  ASSERT_TRUE(be->finalize().is_ok());
  auto x = activations(2, 48, 1);
  std::vector<float> y(64);
  ASSERT_TRUE(be->run(*id, x.data(), 2, y.data()).is_ok());
  kill = true;
  Status st = be->run(*id, x.data(), 2, y.data());
  EXPECT_EQ(st.code(), StatusCode::kUnavailable) << st.to_string();
  EXPECT_NE(st.message().find("groupcover worker local"), std::string::npos) << st.to_string();
  st = be->run(*id, x.data(), 2, y.data());  // still down
  EXPECT_EQ(st.code(), StatusCode::kUnavailable);
  w.set_down(false);
  ASSERT_TRUE(be->run(*id, x.data(), 2, y.data()).is_ok());
  EXPECT_LT(testing::max_row_rel_error(y.data(), reference_op(f, {0}, x.data(), 2), 2, 32), 1e-4);
  EXPECT_GE(be->stats().reconnects, 1u);
}

TEST(Backend, HungWorkerTimesOut) {
  Fixture f({{"a", 32, 48}});
  LocalWorker w;
  std::mutex mu;
  std::condition_variable cv;
  bool hang = false, release = false;
  w.service().set_on_request([&](const ComputeRequest&) {
    std::unique_lock lock(mu);
    if (hang) cv.wait(lock, [&] { return release; });
  });
  BackendConfig c;
  c.timeout = std::chrono::milliseconds(300);
  auto be = f.backend(w, c);
  std::vector<model::LinearPart> a = {f.part(0)};
  auto id = be->add(a);
  ASSERT_TRUE(be->finalize().is_ok());
  auto x = activations(1, 48, 2);
  std::vector<float> y(32);
  {
    std::lock_guard lock(mu);
    hang = true;
  }
  Status st = be->run(*id, x.data(), 1, y.data());
  EXPECT_EQ(st.code(), StatusCode::kTimeout) << st.to_string();
  {
    std::lock_guard lock(mu);
    hang = false;
    release = true;
  }
  cv.notify_all();
  ASSERT_TRUE(be->run(*id, x.data(), 1, y.data()).is_ok());
}

TEST(Backend, RefusesSecretsOfAnotherModel) {
  Fixture f({{"a", 32, 48}});
  Fixture g({{"a", 32, 48}}, true, 77);  // same names and shapes, other weights
  LocalWorker w;
  auto be = std::make_unique<GroupCoverBackend>(BackendConfig{}, g.om.secrets, g.om.worker, w.factory());
  std::vector<model::LinearPart> a = {f.part(0)};
  ASSERT_TRUE(be->add(a).is_ok());
  Status st = be->finalize();
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  // Worker bundle of another model.
  auto be2 = std::make_unique<GroupCoverBackend>(BackendConfig{}, f.om.secrets, g.om.worker, w.factory());
  ASSERT_TRUE(be2->add(a).is_ok());
  EXPECT_FALSE(be2->finalize().is_ok());
  // Unknown tensor name.
  auto be3 = f.backend(w);
  auto p = f.part(0);
  p.name = "nope";
  std::vector<model::LinearPart> bad = {p};
  EXPECT_EQ(be3->add(bad).status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace cml::groupcover

namespace cml::groupcover {
namespace {

// The documented guarantee: a worker that changes one entry of Z_t by more than 2·τ_t is always caught,
// where the worker itself can upper-bound τ_t from public data (|s_i| < 2 ⇒ q < 2‖W''‖_F). Prints the
// threshold relative to a typical output entry for a GPT-2-sized layer (768 → 2304).
TEST(Backend, FreivaldsDetectionThreshold) {
  Fixture f({{"qkv", 2304, 768}});
  LocalWorker w;
  const WorkerMatrix& w2 = f.om.worker->matrices[0];
  double fro = 0;
  for (size_t i = 0; i < size_t(w2.out) * w2.in; ++i) fro += double(w2.data[i]) * w2.data[i];
  fro = std::sqrt(fro);
  const double kappa = BackendConfig{}.freivalds_kappa;
  double worst_rel = 0;
  BackendConfig c;
  c.freivalds = true;
  auto be = f.backend(w, c);
  std::vector<model::LinearPart> p = {f.part(0)};
  auto id = be->add(p);
  ASSERT_TRUE(be->finalize().is_ok());
  int detected = 0;
  const int kTrials = 40;
  for (int i = 0; i < kTrials; ++i) {
    auto x = activations(1, 768, 4000 + i);
    std::vector<float> y(2304);
    // Corrupt entry i·57 by 2.01·τ_bound with τ_bound = κ·2⁻²⁴·√in·‖z‖·2‖W''‖_F from this request's input.
    w.service().set_corruptor([&, i](const ComputeRequest&, std::span<const float> in, std::span<float> out) {
      double zn = 0;
      for (float v : in) zn += double(v) * v;
      const double tau = freivalds_tolerance(kappa, 768, std::sqrt(zn), 2.0 * fro);
      double typical = 0;
      for (float v : out) typical += double(v) * v;
      typical = std::sqrt(typical / double(out.size()));
      worst_rel = std::max(worst_rel, 2.01 * tau / typical);
      out[size_t(i * 57) % out.size()] += float(2.01 * tau);
    });
    if (!be->run(*id, x.data(), 1, y.data()).is_ok()) ++detected;
  }
  EXPECT_EQ(detected, kTrials);
  std::printf("Freivalds guaranteed-detection threshold for one entry (768→2304): %.3g × RMS of the masked output\n",
              worst_rel);
}

}  // namespace
}  // namespace cml::groupcover
