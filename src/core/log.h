// Levelled logging for the library (STYLE.md #5): a thin layer over spdlog so the sink can be
// replaced (tests capture messages; the CLI prints to stderr). No std::cout in library code.
#pragma once

#include <spdlog/spdlog.h>

#include <string>

namespace yq::log {

// Sets the level by name: trace, debug, info, warn, error, off.
void set_level(const std::string& level);

// The project's logger (created on first use, writes to stderr).
spdlog::logger& logger();

template <class... A>
void debug(fmt::format_string<A...> f, A&&... a) {
  logger().debug(f, std::forward<A>(a)...);
}
template <class... A>
void info(fmt::format_string<A...> f, A&&... a) {
  logger().info(f, std::forward<A>(a)...);
}
template <class... A>
void warn(fmt::format_string<A...> f, A&&... a) {
  logger().warn(f, std::forward<A>(a)...);
}
template <class... A>
void error(fmt::format_string<A...> f, A&&... a) {
  logger().error(f, std::forward<A>(a)...);
}

// True when stderr is a terminal (progress bars redraw in place; otherwise plain lines).
bool stderr_is_tty();

}  // namespace yq::log
