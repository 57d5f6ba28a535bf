// MaskPool and the backend's pool accounting: exact top-up to capacity, recycled batch storage that still
// yields fresh, correct masks, and the refill hint returned by take().
#include "groupcover/mask_pool.h"

#include <gtest/gtest.h>

#include <cmath>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "groupcover/backend.h"
#include "groupcover/local_worker.h"
#include "groupcover/test_util.h"

namespace cml::groupcover {
namespace {

using testing::random_matrix;

// u must equal W''·r (float GEMM against a double reference).
void expect_product(const std::vector<float>& w, const float* r, const float* u, int64_t out, int64_t in) {
  for (int64_t i = 0; i < out; ++i) {
    double ref = 0, mag = 0;
    for (int64_t j = 0; j < in; ++j) {
      ref += double(w[size_t(i * in + j)]) * r[j];
      mag += std::fabs(double(w[size_t(i * in + j)]) * r[j]);
    }
    ASSERT_NEAR(u[i], ref, 1e-5 * mag + 1e-30) << "row " << i;
  }
}

TEST(MaskPool, TopUpFillsToExactlyCapacity) {
  const int64_t out = 12, in = 20;
  auto w = random_matrix(out, in, 1);
  MaskPool pool(WorkerMatrix{uint32_t(out), uint32_t(in), w.data()}, 10, 4);
  EXPECT_EQ(pool.available(), 0);
  EXPECT_EQ(pool.top_up(), 10);
  EXPECT_EQ(pool.available(), 10);
  EXPECT_FALSE(pool.wants_refill());
  EXPECT_FALSE(pool.refill());  // no room for a batch
  EXPECT_EQ(pool.top_up(), 0);
  std::vector<float> r(size_t(3 * in)), u(size_t(3 * out));
  EXPECT_FALSE(pool.take(3, r.data(), u.data()));  // 7 left: 7 + 4 > 10, no batch fits
  EXPECT_EQ(pool.available(), 7);
  EXPECT_TRUE(pool.take(1, r.data(), u.data()));  // 6 left: a batch of 4 fits
  EXPECT_EQ(pool.top_up(), 4);                    // a partial batch: exactly what is missing
  EXPECT_EQ(pool.available(), 10);
  EXPECT_TRUE(pool.refill() == false);
  const auto st = pool.stats();
  EXPECT_EQ(st.taken, 4u);
  EXPECT_EQ(st.misses, 0u);
  EXPECT_EQ(st.generated, 14u);
}

TEST(MaskPool, RecycledStorageGivesFreshCorrectMasks) {
  const int64_t out = 24, in = 16;
  auto w = random_matrix(out, in, 2);
  MaskPool pool(WorkerMatrix{uint32_t(out), uint32_t(in), w.data()}, 16, 8);
  std::set<std::string> seen;
  std::vector<float> r(size_t(5 * in)), u(size_t(5 * out));
  int64_t taken = 0;
  for (int round = 0; round < 200; ++round) {
    while (pool.refill()) {
    }
    if (round % 3 == 0) pool.top_up();
    const int64_t n = 1 + round % 5;
    pool.take(n, r.data(), u.data());
    for (int64_t t = 0; t < n; ++t) {
      seen.emplace(reinterpret_cast<const char*>(r.data() + t * in), size_t(in) * sizeof(float));
      expect_product(w, r.data() + t * in, u.data() + t * out, out, in);
    }
    taken += n;
  }
  EXPECT_EQ(seen.size(), size_t(taken)) << "a mask was handed out twice";
  EXPECT_EQ(pool.stats().misses, 0u);
  // Partial top-ups and full refills share storage: after 200 rounds no more storages exist than can be
  // alive at once (the batches in the pool, one being filled, and three spares), so a steady state
  // faults in no fresh pages.
  EXPECT_LE(pool.stats().storage, 7u);
}

// The pattern of a measured run (cml bench groupcover: pools topped up to capacity between windows of
// one-mask requests, the refill thread adding whole batches when there is room): the top-ups make
// partial batches, and since every storage is sized for a whole batch, a partial batch's storage serves
// the next refill; nothing new is allocated once the pool runs.
TEST(MaskPool, PartialTopUpsAndRefillsReuseStorage) {
  const int64_t out = 40, in = 8;
  auto w = random_matrix(out, in, 3);
  MaskPool pool(WorkerMatrix{uint32_t(out), uint32_t(in), w.data()}, 32, 16);
  std::vector<float> r(static_cast<size_t>(in)), u(static_cast<size_t>(out));
  uint64_t after_warm_up = 0;
  for (int window = 0; window < 60; ++window) {
    if (window == 5) after_warm_up = pool.stats().storage;
    pool.top_up();
    const int tokens = 3 + (window * 7) % 17;  // windows of 3..19 requests
    for (int t = 0; t < tokens; ++t) {
      if (pool.take(1, r.data(), u.data())) pool.refill();
      expect_product(w, r.data(), u.data(), out, in);
    }
  }
  EXPECT_EQ(pool.stats().misses, 0u);
  EXPECT_EQ(pool.stats().storage, after_warm_up) << "storage allocated after the warm-up";
}

TEST(MaskPool, TopUpWaitsForARefillInProgress) {
  const int64_t out = 512, in = 512;
  auto w = random_matrix(out, in, 3);
  MaskPool pool(WorkerMatrix{uint32_t(out), uint32_t(in), w.data()}, 96, 64);
  for (int i = 0; i < 20; ++i) {
    std::thread t([&] { pool.refill(); });
    pool.top_up();
    t.join();
    EXPECT_EQ(pool.available(), 96);
    std::vector<float> r(size_t(70 * in)), u(size_t(70 * out));
    pool.take(70, r.data(), u.data());
  }
  EXPECT_EQ(pool.stats().misses, 0u);
}

TEST(MaskPool, LeaseInPlaceWipesOnReleaseAndFallsBackAcrossBatches) {
  const int64_t out = 10, in = 6;
  auto w = random_matrix(out, in, 6);
  MaskPool pool(WorkerMatrix{uint32_t(out), uint32_t(in), w.data()}, 8, 4);
  ASSERT_TRUE(pool.refill());
  ASSERT_TRUE(pool.refill());
  MaskPool::Lease l = pool.lease(3);
  ASSERT_NE(l.r, nullptr);
  ASSERT_NE(l.u, nullptr);
  EXPECT_EQ(pool.available(), 5);
  EXPECT_FALSE(l.wants_refill);  // 5 + 4 > 8
  for (int64_t t = 0; t < 3; ++t) expect_product(w, l.r + t * in, l.u + t * out, out, in);
  const float* r = l.r;
  const float* u = l.u;
  pool.release(l);
  for (int64_t i = 0; i < 3 * in; ++i) EXPECT_EQ(r[i], 0.0f);  // the batch still holds one mask: not freed
  for (int64_t i = 0; i < 3 * out; ++i) EXPECT_EQ(u[i], 0.0f);
  MaskPool::Lease span = pool.lease(2);  // one mask left in the first batch: would span two
  EXPECT_EQ(span.r, nullptr);
  EXPECT_EQ(pool.available(), 5);
  std::vector<float> rr(size_t(2 * in)), uu(size_t(2 * out));
  EXPECT_TRUE(pool.take(2, rr.data(), uu.data()));  // 3 + 4 <= 8
  for (int64_t t = 0; t < 2; ++t) expect_product(w, rr.data() + t * in, uu.data() + t * out, out, in);
  MaskPool::Lease rest = pool.lease(3);
  ASSERT_NE(rest.r, nullptr);
  pool.release(rest);
  EXPECT_EQ(pool.available(), 0);
  EXPECT_EQ(pool.stats().taken, 8u);
  EXPECT_EQ(pool.stats().misses, 0u);
  EXPECT_EQ(pool.lease(1).r, nullptr);  // empty
}

TEST(Backend, FillPoolsPaysForExactlyTheConsumedMasks) {
  const int64_t out = 32, in = 48;
  auto w = random_matrix(out, in, 4);
  auto wf = std::make_shared<std::vector<float>>(w);
  BackendConfig c;
  c.pool_capacity = 40;
  c.refill_batch = 16;
  LocalWorker worker;
  GroupCoverBackend be(c, ObfuscationConfig{}, worker.factory());
  model::LinearPart p;
  p.name = "w";
  p.out_features = out;
  p.in_features = in;
  p.weight = wf->data();
  std::vector<model::LinearPart> parts = {p};
  auto id = be.add(parts);
  ASSERT_TRUE(id.is_ok());
  ASSERT_TRUE(be.finalize().is_ok());
  be.fill_pools();
  const auto before = be.stats();
  auto x = random_matrix(7, in, 5);
  std::vector<float> y(size_t(7 * out));
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(be.run(*id, x.data(), 7, y.data()).is_ok());
  const int64_t made = be.fill_pools();
  const auto after = be.stats();
  EXPECT_EQ(after.masks_taken - before.masks_taken, 21u);
  // What the window consumed was produced again, by the refill thread or by fill_pools().
  EXPECT_LE(made, 21);
  EXPECT_EQ(after.pool_misses, 0u);
  EXPECT_EQ(be.fill_pools(), 0);
  EXPECT_LT(testing::max_row_rel_error(y.data(), testing::reference(w, nullptr, x.data(), 7, out, in), 7, out), 1e-4);
}

}  // namespace
}  // namespace cml::groupcover
