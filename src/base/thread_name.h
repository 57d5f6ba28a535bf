// Names the calling thread for `top -H`, `perf sched` and debuggers (Linux keeps 15 characters; a longer
// name is cut). Best effort: a failure changes nothing else.
#pragma once

#include <string>

namespace cml {

void name_this_thread(const std::string& name);

}  // namespace cml
