#include "model/sampler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>

namespace cml::model {
namespace {

TEST(Sampler, GreedyIsFirstArgmax) {
  auto s = Sampler::create({});
  ASSERT_TRUE(s.is_ok());
  std::vector<float> l{0.1f, 3.0f, -1.0f, 3.0f};
  EXPECT_EQ(s->sample(l), 1);
  EXPECT_EQ(argmax(l), 1);
}

TEST(Sampler, SeedReproducesAndDiffers) {
  std::vector<float> l(50);
  for (size_t i = 0; i < l.size(); ++i) l[i] = std::sin(static_cast<float>(i));
  auto run = [&](uint64_t seed) {
    auto s = Sampler::create({1.0f, 0, 1.0f, seed});
    std::vector<int32_t> out;
    for (int i = 0; i < 64; ++i) out.push_back(s->sample(l));
    return out;
  };
  EXPECT_EQ(run(42), run(42));
  EXPECT_NE(run(42), run(43));
}

TEST(Sampler, TopKAndTopPRestrictTheSupport) {
  std::vector<float> l{5.0f, 4.0f, 3.0f, 0.0f, -2.0f};
  auto k2 = Sampler::create({2.0f, 2, 1.0f, 1});
  for (int i = 0; i < 500; ++i) EXPECT_LT(k2->sample(l), 2);
  auto k1 = Sampler::create({2.0f, 1, 1.0f, 1});
  for (int i = 0; i < 50; ++i) EXPECT_EQ(k1->sample(l), 0);
  // p(0) = e^5 / (e^5 + e^4 + e^3 + 1 + e^-2) ≈ 0.66; top-p 0.5 keeps token 0 only, 0.8 keeps 0 and 1.
  auto p5 = Sampler::create({1.0f, 0, 0.5f, 1});
  for (int i = 0; i < 50; ++i) EXPECT_EQ(p5->sample(l), 0);
  auto p8 = Sampler::create({1.0f, 0, 0.8f, 1});
  std::map<int32_t, int> seen;
  for (int i = 0; i < 500; ++i) seen[p8->sample(l)]++;
  EXPECT_EQ(seen.size(), 2u);
  EXPECT_GT(seen[1], 0);
}

TEST(Sampler, FrequenciesFollowTheSoftmax) {
  std::vector<float> l{1.0f, 2.0f, 0.0f};
  auto s = Sampler::create({1.0f, 0, 1.0f, 7});
  std::vector<int> n(3);
  const int draws = 30000;
  for (int i = 0; i < draws; ++i) n[static_cast<size_t>(s->sample(l))]++;
  const double z = std::exp(1.0) + std::exp(2.0) + 1.0;
  EXPECT_NEAR(n[0] / double(draws), std::exp(1.0) / z, 0.015);
  EXPECT_NEAR(n[1] / double(draws), std::exp(2.0) / z, 0.015);
  EXPECT_NEAR(n[2] / double(draws), 1.0 / z, 0.015);
}

TEST(Sampler, RejectsBadOptions) {
  EXPECT_FALSE(Sampler::create({-1.0f, 0, 1.0f, 0}).is_ok());
  EXPECT_FALSE(Sampler::create({1.0f, -1, 1.0f, 0}).is_ok());
  EXPECT_FALSE(Sampler::create({1.0f, 0, 0.0f, 0}).is_ok());
  EXPECT_FALSE(Sampler::create({1.0f, 0, 1.5f, 0}).is_ok());
  EXPECT_FALSE(Sampler::create({NAN, 0, 1.0f, 0}).is_ok());
}

}  // namespace
}  // namespace cml::model
