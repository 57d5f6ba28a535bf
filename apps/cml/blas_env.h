// Re-runs the current process with OPENBLAS_CORETYPE set when OpenBLAS fell back to generic kernels on a
// CPU it does not recognise (see tensor::blas_core_is_fallback). Call first thing in a command callback
// that does heavy linear algebra; returns only if no re-run was needed or it failed.
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "tensor/linear.h"

namespace cml::app {

inline void reexec_with_blas_core_if_needed() {
  if (!tensor::blas_core_is_fallback()) return;
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  const std::string all((std::istreambuf_iterator<char>(in)), {});
  std::vector<std::string> args;
  for (size_t b = 0; b < all.size();) {
    const size_t e = all.find('\0', b);
    args.push_back(all.substr(b, e == std::string::npos ? std::string::npos : e - b));
    if (e == std::string::npos) break;
    b = e + 1;
  }
  if (args.empty()) return;
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  ::setenv("OPENBLAS_CORETYPE", tensor::blas_core_override(), 1);
  ::execv("/proc/self/exe", argv.data());  // returns only on failure: carry on with the slow kernels
}

}  // namespace cml::app
