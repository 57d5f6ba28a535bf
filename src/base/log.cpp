#include "base/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <string>

namespace cml {

void init_logging(std::string_view level) {
  auto logger = spdlog::stderr_color_mt("cml");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(std::string(level)));
  spdlog::set_pattern("%H:%M:%S.%e %^%l%$ [%P] %v");
}

}  // namespace cml
