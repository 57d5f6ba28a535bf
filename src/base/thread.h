// Thread identity and placement.
//
// Names show in `top -H`, `perf sched` and debuggers. Placement matters where the threads of one
// pipeline share a few CPUs (in-process pipelines, stage processes on one host): a thread that waits for
// its neighbour's data by spinning on the neighbour's CPU only gets that CPU once the neighbour stops,
// so a hop whose receiver could open one chunk while the sender seals the next runs serially instead.
// The scheduler does not avoid this for threads that spin (they look equally busy wherever they are);
// placing neighbours on different CPUs does.
#pragma once

#include <string>
#include <vector>

#include "base/status.h"

namespace cml {

// Names the calling thread (Linux keeps 15 characters; a longer name is cut). Best effort: a failure
// changes nothing else.
void name_this_thread(const std::string& name);

// The CPUs (Linux numbers, as `taskset` uses) the calling thread may run on, ascending; an error if the
// kernel does not say.
Result<std::vector<int>> this_thread_cpus();

// Restricts the calling thread to `cpus` (not empty). An error names the CPUs when the kernel refuses
// them (no such CPU, or none the process may use).
Status set_this_thread_cpus(const std::vector<int>& cpus);

// Checks a configured CPU for a thread before the thread starts: one the calling thread may run on (the
// process's CPUs unless that thread was placed). `what` names the setting in the error.
Status check_cpu(int cpu, const std::string& what);

}  // namespace cml
