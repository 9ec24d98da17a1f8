// Error types and checks shared by the whole library.
//
// Two kinds of failure (STYLE.md #3):
//  - yq::UsageError: the user asked for something invalid (unknown key, value out of range, bad
//    dataset.yaml). The CLI maps it to exit code 2.
//  - yq::Error: a runtime failure (file unreadable, training diverged). Exit code 1.
// Library code never exits the process; it throws with context and the CLI reports it.
#pragma once

#include <fmt/format.h>

#include <stdexcept>
#include <string>

namespace yq {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class UsageError : public Error {
 public:
  using Error::Error;
};

// Rethrows `fn`'s exception with `context` prepended ("while reading labels of x.txt: ...").
// Keeps the exception kind (UsageError stays UsageError).
template <class Fn>
auto with_context(const std::string& context, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const UsageError& e) {
    throw UsageError(context + ": " + e.what());
  } catch (const std::exception& e) {
    throw Error(context + ": " + e.what());
  }
}

}  // namespace yq

// User-facing check: throws yq::Error with a formatted message.
#define YQ_CHECK(cond, ...)                                   \
  do {                                                        \
    if (!(cond)) throw ::yq::Error(fmt::format(__VA_ARGS__)); \
  } while (0)

// Configuration / usage check: throws yq::UsageError (exit code 2).
#define YQ_CHECK_USAGE(cond, ...)                                  \
  do {                                                             \
    if (!(cond)) throw ::yq::UsageError(fmt::format(__VA_ARGS__)); \
  } while (0)

// Internal invariant: a failure is a bug in yoloqat, not in the input.
#define YQ_ASSERT(cond)                                                                           \
  do {                                                                                            \
    if (!(cond))                                                                                  \
      throw ::yq::Error(                                                                          \
          fmt::format("internal error: {} at {}:{} (please report)", #cond, __FILE__, __LINE__)); \
  } while (0)
