// Logging setup (spdlog). Library code logs through spdlog's default logger; apps call init_logging.
// Never log secrets, plaintext activations or weights.
#pragma once

#include <string_view>

namespace cml {

// level: "trace", "debug", "info", "warn", "error", "off". Logs go to stderr.
void init_logging(std::string_view level);

}  // namespace cml
