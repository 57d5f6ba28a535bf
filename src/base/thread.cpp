#include "base/thread.h"

#include <pthread.h>
#include <sched.h>

#include <algorithm>

namespace cml {

void name_this_thread(const std::string& name) {
  const std::string cut = name.substr(0, 15);
  (void)pthread_setname_np(pthread_self(), cut.c_str());
}

namespace {

std::string list(const std::vector<int>& cpus) {
  std::string s;
  for (int c : cpus) s += (s.empty() ? "" : ",") + std::to_string(c);
  return s;
}

}  // namespace

Result<std::vector<int>> this_thread_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return internal_error("sched_getaffinity failed");
  std::vector<int> cpus;
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &set)) cpus.push_back(c);
  if (cpus.empty()) return internal_error("sched_getaffinity returned no CPUs");
  return cpus;
}

Status set_this_thread_cpus(const std::vector<int>& cpus) {
  if (cpus.empty()) return invalid_argument("no CPUs to run on");
  cpu_set_t set;
  CPU_ZERO(&set);
  for (int c : cpus) {
    if (c < 0 || c >= CPU_SETSIZE) return invalid_argument("CPU " + std::to_string(c) + " out of range");
    CPU_SET(c, &set);
  }
  if (sched_setaffinity(0, sizeof(set), &set) != 0)
    return invalid_argument("cannot run on CPU(s) " + list(cpus) + ": not present or not allowed for this process");
  return Status::ok();
}

Status check_cpu(int cpu, const std::string& what) {
  CML_ASSIGN_OR_RETURN(auto allowed, this_thread_cpus());
  if (std::find(allowed.begin(), allowed.end(), cpu) == allowed.end()) {
    return invalid_argument(what + ": CPU " + std::to_string(cpu) + " is not one this process may use (" +
                            list(allowed) + ")");
  }
  return Status::ok();
}

}  // namespace cml
