// Per-op self times from LibTorch's legacy CPU profiler, shared by the bench programs that print where a
// step's time goes.
#pragma once

#include <torch/csrc/autograd/profiler_legacy.h>
#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace yq::bench {

struct OpTime {
  double ms = 0;  // self time
  int64_t calls = 0;
};

// Self time (ms) and calls per op name of the events recorded in all threads.
inline std::map<std::string, OpTime> self_times(const torch::autograd::profiler::thread_event_lists& lists) {
  using torch::autograd::profiler::EventKind;
  using torch::autograd::profiler::LegacyEvent;
  std::map<std::string, OpTime> self;
  for (const auto& events : lists) {
    std::vector<std::pair<const LegacyEvent*, double>> stack;  // push event, time of its children
    for (const auto& e : events) {
      if (e.kind() == EventKind::PushRange) {
        stack.emplace_back(&e, 0.0);
      } else if (e.kind() == EventKind::PopRange && !stack.empty()) {
        auto [push, children] = stack.back();
        stack.pop_back();
        const double incl = push->cpuElapsedUs(e) / 1000.0;
        auto& t = self[push->name()];
        t.ms += incl - children;
        ++t.calls;
        if (!stack.empty()) stack.back().second += incl;
      }
    }
  }
  return self;
}

// Runs f once under the profiler and returns its ops' self times.
template <class F>
std::map<std::string, OpTime> profile_ops(F&& f) {
  namespace prof = torch::autograd::profiler;
  prof::enableProfilerLegacy(
      torch::profiler::impl::ProfilerConfig(torch::profiler::impl::ProfilerState::CPU));
  f();
  return self_times(prof::disableProfilerLegacy());
}

}  // namespace yq::bench
