// SecureRng::fill_mask: every value on the 2^-23 grid in [−1, 1), fresh on every call, for any span length,
// and uniform enough that no bit of the grid index is stuck.
#include "groupcover/rng.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

namespace cml::groupcover {
namespace {

TEST(SecureRng, FillMaskGivesFreshValuesOnTheGrid) {
  SecureRng rng;
  for (size_t n : {size_t(1), size_t(3), size_t(1001), size_t(1) << 18}) {
    std::vector<float> a(n), b(n);
    rng.fill_mask(a);
    rng.fill_mask(b);
    size_t same = 0;
    for (size_t i = 0; i < n; ++i) {
      ASSERT_GE(a[i], -1.0f) << i;
      ASSERT_LT(a[i], 1.0f) << i;
      const double k = double(a[i]) * 0x1.0p23;
      ASSERT_EQ(k, std::floor(k)) << "off the 2^-23 grid at " << i;
      same += a[i] == b[i];
    }
    // Two draws agree at a given place with probability 2^-24.
    EXPECT_LE(same, n / 1000 + 1) << n;
  }
}

TEST(SecureRng, FillMaskUsesEveryBitOfTheGridIndex) {
  SecureRng rng;
  std::vector<float> v(size_t(1) << 16);
  rng.fill_mask(v);
  std::vector<int> ones(24, 0);
  double sum = 0;
  for (float x : v) {
    const auto k = uint32_t(int64_t(double(x) * 0x1.0p23) + (int64_t(1) << 23));  // 0 .. 2^24 − 1
    for (int bit = 0; bit < 24; ++bit) ones[size_t(bit)] += int((k >> bit) & 1u);
    sum += x;
  }
  const double n = double(v.size());
  for (int bit = 0; bit < 24; ++bit) {
    // Binomial(65536, 1/2): a standard deviation is 128; 8 of them is never reached by chance.
    EXPECT_NEAR(ones[size_t(bit)], n / 2, 8 * 128) << "bit " << bit;
  }
  EXPECT_NEAR(sum / n, 0.0, 8 * std::sqrt(1.0 / 3.0 / n));  // uniform on [−1, 1): variance 1/3
}

}  // namespace
}  // namespace cml::groupcover
