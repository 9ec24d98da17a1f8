// QAT training-step cost: one optimizer step (forward, loss, backward, SGD) of the fp32 model and of
// the same model prepared for QAT (fake-quantized folded weights and activations, observers on),
// alternated in one run; prints the medians, the spread and the ratio QAT / fp32 (target <= 1.3).
//
// usage: bench_qat_step [model=yolov8n] [imgsz=256] [batch=4] [steps=6] [qconfig=quantization.yaml]
//                       [profile=0]
// profile=1 also runs one more step of each under LibTorch's (legacy CPU) profiler and prints the ops
// by self time, fp32 next to QAT: where the extra QAT time goes.
#include <torch/csrc/autograd/profiler_legacy.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "core/log.h"
#include "model/yolov8.h"
#include "quant/prepare.h"

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Self time (ms) per op name of the events recorded in all threads.
std::map<std::string, double> self_times(const torch::autograd::profiler::thread_event_lists& lists) {
  using torch::autograd::profiler::EventKind;
  using torch::autograd::profiler::LegacyEvent;
  std::map<std::string, double> self;
  for (const auto& events : lists) {
    std::vector<std::pair<const LegacyEvent*, double>> stack;  // push event, time of its children
    for (const auto& e : events) {
      if (e.kind() == EventKind::PushRange) {
        stack.emplace_back(&e, 0.0);
      } else if (e.kind() == EventKind::PopRange && !stack.empty()) {
        auto [push, children] = stack.back();
        stack.pop_back();
        const double incl = push->cpuElapsedUs(e) / 1000.0;
        self[push->name()] += incl - children;
        if (!stack.empty()) stack.back().second += incl;
      }
    }
  }
  return self;
}

template <class F>
std::map<std::string, double> profile_step(F&& f) {
  namespace prof = torch::autograd::profiler;
  prof::enableProfilerLegacy(
      torch::profiler::impl::ProfilerConfig(torch::profiler::impl::ProfilerState::CPU));
  f();
  return self_times(prof::disableProfilerLegacy());
}

}  // namespace

int main(int argc, char** argv) {
  using namespace yq;
  const std::string name = argc > 1 ? argv[1] : "yolov8n";
  const int64_t imgsz = argc > 2 ? std::stoi(argv[2]) : 256;
  const int64_t batch = argc > 3 ? std::stoi(argv[3]) : 4;
  const int steps = argc > 4 ? std::stoi(argv[4]) : 6;
  const std::string qconfig = argc > 5 ? argv[5] : "quantization.yaml";
  const bool profile = argc > 6 && std::string(argv[6]) == "1";
  log::set_level("warn");
  const int threads = int(std::max(1u, std::thread::hardware_concurrency()));
  at::set_num_threads(threads);
  torch::manual_seed(0);
  model::ModelSpec spec = model::parse_model_name(name, 7);
  model::YoloV8 fp(spec);
  model::YoloV8 qat = model::copy_model(*fp);
  quant::prepare(*qat, quant::QConfigMapping::load(qconfig));
  fp->train();
  qat->train();
  torch::optim::SGD opt_fp(fp->parameters(), torch::optim::SGDOptions(1e-4).momentum(0.9));
  torch::optim::SGD opt_q(qat->parameters(), torch::optim::SGDOptions(1e-4).momentum(0.9));
  auto x = torch::rand({batch, 3, imgsz, imgsz});
  auto step = [&](model::YoloV8& m, torch::optim::SGD& opt) {
    const auto t0 = std::chrono::steady_clock::now();
    opt.zero_grad();
    torch::Tensor loss = torch::zeros({});
    for (const auto& r : m->forward_raw(x)) loss = loss + r.pow(2).mean();
    loss.backward();
    opt.step();
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  };
  step(fp, opt_fp);  // warm-up
  step(qat, opt_q);
  std::vector<double> tf, tq;
  for (int i = 0; i < steps; ++i) {
    tf.push_back(step(fp, opt_fp));
    tq.push_back(step(qat, opt_q));
  }
  std::printf(
      "machine: %u hardware threads, LibTorch threads %d; %s (%lld classes), batch %lld at %lldx%lld\n",
      std::thread::hardware_concurrency(), threads, spec.name.c_str(), (long long)spec.nc, (long long)batch,
      (long long)imgsz, (long long)imgsz);
  auto [fmin, fmax] = std::minmax_element(tf.begin(), tf.end());
  auto [qmin, qmax] = std::minmax_element(tq.begin(), tq.end());
  std::printf("fp32 step: median %.1f ms (min %.1f, max %.1f) over %d steps\n", median(tf), *fmin, *fmax,
              steps);
  std::printf("QAT  step: median %.1f ms (min %.1f, max %.1f), qconfig %s\n", median(tq), *qmin, *qmax,
              qconfig.c_str());
  std::printf("ratio QAT / fp32: %.2f\n", median(tq) / median(tf));
  if (profile) {
    auto pf = profile_step([&] { step(fp, opt_fp); });
    auto pq = profile_step([&] { step(qat, opt_q); });
    std::vector<std::pair<double, std::string>> rows;
    double sf = 0, sq = 0;
    for (auto& [k, v] : pq) rows.emplace_back(v, k), sq += v;
    for (auto& [k, v] : pf) {
      sf += v;
      if (!pq.count(k)) rows.emplace_back(0.0, k);
    }
    std::sort(rows.rbegin(), rows.rend());
    std::printf("\nprofiled step, self time by op (ms): total fp32 %.1f, QAT %.1f\n", sf, sq);
    std::printf("%-48s %10s %10s %10s\n", "op", "fp32", "QAT", "QAT-fp32");
    for (size_t i = 0; i < rows.size() && i < 25; ++i) {
      const double f = pf.count(rows[i].second) ? pf[rows[i].second] : 0.0;
      std::printf("%-48s %10.1f %10.1f %10.1f\n", rows[i].second.substr(0, 48).c_str(), f, rows[i].first,
                  rows[i].first - f);
    }
  }
  return 0;
}
