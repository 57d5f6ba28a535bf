#include "base/spin.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

namespace cml {
namespace {

using std::chrono::microseconds;

TEST(AdaptiveSpin, ReadyAtOnceNeedsNoBudget) {
  AdaptiveSpin s(microseconds(0));
  int calls = 0;
  EXPECT_TRUE(s.spin([&] { return ++calls > 0; }));
  EXPECT_EQ(calls, 1);
  EXPECT_FALSE(s.spin([] { return false; }));  // no budget: one look, then the caller blocks
}

TEST(AdaptiveSpin, SeesAnotherThreadsNews) {
  std::atomic<bool> flag{false};
  AdaptiveSpin s(std::chrono::milliseconds(10));  // a long budget, so the spin cannot run out first
  std::thread t([&] { flag.store(true, std::memory_order_release); });
  // (On a busy machine spin() only looks once per call, hence the loop.)
  bool got = false;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!got && std::chrono::steady_clock::now() < until) {
    got = s.spin([&] { return flag.load(std::memory_order_acquire); });
    if (!got) std::this_thread::yield();
  }
  t.join();
  EXPECT_TRUE(got);
}

TEST(AdaptiveSpin, LongWaitsTurnSpinningOffAndShortWaitsTurnItBackOn) {
  AdaptiveSpin s(microseconds(50));
  EXPECT_EQ(s.budget(), microseconds(50));
  for (int k = 0; k < 8; ++k) s.record_wait(std::chrono::milliseconds(2));  // data took milliseconds
  EXPECT_EQ(s.budget().count(), 0);
  s.record_wait(microseconds(10));  // the next wait was short: spin long enough to cover it
  EXPECT_EQ(s.budget(), microseconds(20));
  s.record_wait(microseconds(40));  // never beyond the maximum
  EXPECT_EQ(s.budget(), microseconds(50));
}

TEST(AdaptiveSpin, NewMaximumStartsAFreshBudget) {
  AdaptiveSpin s(microseconds(300));
  for (int k = 0; k < 12; ++k) s.record_wait(std::chrono::milliseconds(2));
  ASSERT_EQ(s.budget().count(), 0);
  s.set_max(microseconds(50));
  if (AdaptiveSpin::default_max().count() == 0) {  // CML_SPIN_US=0: spinning stays off
    EXPECT_EQ(s.budget().count(), 0);
    return;
  }
  EXPECT_EQ(s.max(), microseconds(50));
  EXPECT_EQ(s.budget(), microseconds(50));
  s.record_wait(microseconds(40));  // adapts within the new maximum
  EXPECT_EQ(s.budget(), microseconds(50));
  s.record_wait(microseconds(10));
  EXPECT_EQ(s.budget(), microseconds(20));
}

TEST(AdaptiveSpin, DefaultMaximumIsBounded) {
  EXPECT_GE(AdaptiveSpin::default_max().count(), 0);
  EXPECT_LE(AdaptiveSpin::default_max(), std::chrono::milliseconds(10));
}

}  // namespace
}  // namespace cml
