#include "base/thread.h"

#include <gtest/gtest.h>
#include <sched.h>

#include <algorithm>
#include <thread>

#include "support/test_support.h"

namespace cml {
namespace {

TEST(ThreadPlacement, ListsTheAllowedCpusInOrder) {
  auto cpus = this_thread_cpus();
  ASSERT_TRUE(cpus.is_ok()) << cpus.status().to_string();
  ASSERT_FALSE(cpus->empty());
  EXPECT_TRUE(std::is_sorted(cpus->begin(), cpus->end()));
  EXPECT_GE(cpus->front(), 0);
}

TEST(ThreadPlacement, PinsAThreadAndRestoresIt) {
  const std::vector<int> all = this_thread_cpus().value();
  // On a thread of its own, so that the test runner's thread keeps its CPUs whatever happens.
  std::thread([&] {
    const int last = all.back();
    ASSERT_TRUE(set_this_thread_cpus({last}).is_ok());
    EXPECT_EQ(this_thread_cpus().value(), std::vector<int>{last});
    EXPECT_EQ(sched_getcpu(), last);  // the kernel moved it before returning
    ASSERT_TRUE(set_this_thread_cpus(all).is_ok());
    EXPECT_EQ(this_thread_cpus().value(), all);
  }).join();
}

TEST(ThreadPlacement, RefusesCpusItCannotUse) {
  const std::vector<int> all = this_thread_cpus().value();
  std::thread([&] {
    EXPECT_FALSE(set_this_thread_cpus({}).is_ok());
    Status neg = set_this_thread_cpus({-1});
    EXPECT_EQ(neg.code(), StatusCode::kInvalidArgument);
    EXPECT_NE(neg.message().find("CPU -1"), std::string::npos) << neg.to_string();
    EXPECT_FALSE(set_this_thread_cpus({CPU_SETSIZE}).is_ok());
    const int bad = testing::unusable_cpu();
    if (bad < CPU_SETSIZE) {
      Status st = set_this_thread_cpus({bad});
      EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
      EXPECT_NE(st.message().find(std::to_string(bad)), std::string::npos) << st.to_string();
    }
    EXPECT_EQ(this_thread_cpus().value(), all);  // a refusal changes nothing
  }).join();
}

TEST(ThreadPlacement, ChecksAConfiguredCpuAndNamesTheSetting) {
  const std::vector<int> all = this_thread_cpus().value();
  EXPECT_TRUE(check_cpu(all.front(), "the setting").is_ok());
  const int bad = testing::unusable_cpu();
  Status st = check_cpu(bad, "stage 3 data thread");
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("stage 3 data thread: CPU " + std::to_string(bad)), std::string::npos) << st.to_string();
  EXPECT_FALSE(check_cpu(-1, "x").is_ok());
}

}  // namespace
}  // namespace cml
