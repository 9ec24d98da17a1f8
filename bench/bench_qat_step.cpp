// QAT training-step cost: one optimizer step (forward, loss, backward, SGD) of the fp32 model and of
// the same model prepared for QAT (fake-quantized folded weights and activations, observers on),
// alternated in one run; prints the medians, the spread and the ratio QAT / fp32 (target <= 1.3).
//
// usage: bench_qat_step [model=yolov8n] [imgsz=256] [batch=4] [steps=6] [qconfig=quantization.yaml]
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

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  using namespace yq;
  const std::string name = argc > 1 ? argv[1] : "yolov8n";
  const int64_t imgsz = argc > 2 ? std::stoi(argv[2]) : 256;
  const int64_t batch = argc > 3 ? std::stoi(argv[3]) : 4;
  const int steps = argc > 4 ? std::stoi(argv[4]) : 6;
  const std::string qconfig = argc > 5 ? argv[5] : "quantization.yaml";
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
  return 0;
}
