#include "support/test_support.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "base/thread.h"

namespace cml::testing {

int unusable_cpu() {
  const std::vector<int> allowed = this_thread_cpus().value();
  int c = 0;
  while (std::find(allowed.begin(), allowed.end(), c) != allowed.end()) ++c;
  return c;
}

std::optional<std::string> testdata_dir() {
  const char* env = std::getenv("CML_TESTDATA_DIR");
  if (env && *env) {
    if (std::filesystem::is_directory(env)) return std::string(env);
    return std::nullopt;  // an explicit setting wins, even when it names nothing
  }
#ifdef CML_TESTDATA_DIR_DEFAULT
  if (std::filesystem::is_directory(CML_TESTDATA_DIR_DEFAULT)) return std::string(CML_TESTDATA_DIR_DEFAULT);
#endif
  return std::nullopt;
}

std::optional<std::string> testdata_path(const std::string& relative) {
  auto dir = testdata_dir();
  if (!dir) return std::nullopt;
  std::filesystem::path p = std::filesystem::path(*dir) / relative;
  if (!std::filesystem::exists(p)) return std::nullopt;
  return p.string();
}

Bytes read_testdata(const std::string& path) {
  auto r = read_file(path, size_t{1} << 30);
  if (!r.is_ok()) {
    ADD_FAILURE() << r.status().to_string();
    return {};
  }
  return std::move(r).value();
}

bool wait_for(const std::function<bool()>& cond, std::chrono::milliseconds timeout) {
  auto end = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < end) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return cond();
}

}  // namespace cml::testing
