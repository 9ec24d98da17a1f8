// Cost of `yoloqat sensitivity metric=sqnr`: a model with random weights is prepared with a qconfig and
// calibrated on `batches` batches of random uint8-grid images, then the per-layer analysis runs (2 x
// layers + 2 SQNR evaluations over the cached batches). Prints the layer count, the analysis time, the
// time per evaluation, its ratio to one fp32 pass over the same batches (median of 3, measured in the
// same run), and the five most sensitive layers.
//
// usage: bench_sensitivity [model=yolov8n] [imgsz=320] [batch=8] [batches=4] [qconfig=quantization.yaml]
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "core/log.h"
#include "model/yolov8.h"
#include "quant/prepare.h"
#include "quant/sensitivity.h"

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  using namespace yq;
  const std::string name = argc > 1 ? argv[1] : "yolov8n";
  const int64_t imgsz = argc > 2 ? std::stoi(argv[2]) : 320;
  const int64_t batch = argc > 3 ? std::stoi(argv[3]) : 8;
  const int64_t batches = argc > 4 ? std::stoi(argv[4]) : 4;
  const std::string qconfig = argc > 5 ? argv[5] : "quantization.yaml";
  log::set_level("warn");
  const int threads = int(std::max(1u, std::thread::hardware_concurrency()));
  at::set_num_threads(threads);
  torch::manual_seed(0);
  model::YoloV8 m(model::parse_model_name(name, 7));
  m->eval();
  std::vector<torch::Tensor> xs;
  for (int64_t i = 0; i < batches; ++i)
    xs.push_back(torch::randint(0, 256, {batch, 3, imgsz, imgsz}).to(torch::kFloat) / 255.0);

  torch::NoGradGuard no_grad;
  // fp32 pass over the batches (float model): median of 3 after a warm-up.
  for (const auto& x : xs) m->forward_raw(x);
  std::vector<double> tf;
  for (int r = 0; r < 3; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    for (const auto& x : xs) m->forward_raw(x);
    tf.push_back(seconds_since(t0));
  }
  std::sort(tf.begin(), tf.end());

  const auto t_prep = std::chrono::steady_clock::now();
  quant::prepare(*m, quant::QConfigMapping::load(qconfig));
  quant::enable_observers(*m, true);
  quant::enable_fake_quant(*m, false);
  for (const auto& x : xs) m->forward_raw(x);
  quant::freeze_quantizers(*m);
  quant::enable_fake_quant(*m, true);
  quant::OutputSqnr metric(*m, xs);
  const double prep_s = seconds_since(t_prep);

  auto res = quant::analyze_sensitivity(*m, "sqnr", [&](model::YoloV8Impl& x) { return metric(x); }, {});
  const double per_eval = res.seconds / double(res.evaluations);
  std::printf("machine: %d threads; %s imgsz %lld, %lld batches of %lld, qconfig %s\n", threads, name.c_str(),
              (long long)imgsz, (long long)batches, (long long)batch, qconfig.c_str());
  std::printf("fp32 pass over the batches: median %.3f s (min %.3f, max %.3f)\n", tf[1], tf[0], tf[2]);
  std::printf("prepare + calibrate + fp32 cache: %.2f s\n", prep_s);
  std::printf("sensitivity: %zu layers, %lld evaluations in %.1f s (%.3f s each = %.2f x the fp32 pass)\n",
              res.layers.size(), (long long)res.evaluations, res.seconds, per_eval, per_eval / tf[1]);
  std::printf("%s", res.table(5).c_str());
  return 0;
}
