#include "core/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <unistd.h>

#include <mutex>

#include "core/error.h"

namespace yq::log {

spdlog::logger& logger() {
  static std::shared_ptr<spdlog::logger> l = [] {
    auto lg = spdlog::stderr_color_mt("yoloqat");
    lg->set_pattern("%^%l%$: %v");
    lg->set_level(spdlog::level::info);
    return lg;
  }();
  return *l;
}

void set_level(const std::string& level) {
  auto lv = spdlog::level::from_str(level);
  YQ_CHECK_USAGE(lv != spdlog::level::off || level == "off",
                 "log level '{}' is not one of trace, debug, info, warn, error, off", level);
  logger().set_level(lv);
}

bool stderr_is_tty() {
  return isatty(STDERR_FILENO) != 0;
}

}  // namespace yq::log
