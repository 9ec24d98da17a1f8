// Training throughput of yolov8n: images/s of a full step (loader with mosaic, forward, loss,
// backward, optimizer) and of forward+backward alone on a batch held in memory, at each imgsz,
// measured in one run; the ratio full / compute shows whether the loader is the bottleneck.
//
// usage: bench_train DATASET.yaml [iterations=3] [batch=16] [imgsz list: 320 640] [threads=all]
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include "core/log.h"
#include "data/dataset.h"
#include "data/loader.h"
#include "model/yolov8.h"
#include "train/loss.h"
#include "train/schedule.h"

namespace {
double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}
}  // namespace

int main(int argc, char** argv) {
  using namespace yq;
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s DATASET.yaml [iterations] [batch] [imgsz ...]\n", argv[0]);
    return 2;
  }
  const int iters = argc > 2 ? std::stoi(argv[2]) : 3;
  const int batch = argc > 3 ? std::stoi(argv[3]) : 16;
  std::vector<int> sizes;
  for (int i = 4; i < argc; ++i) sizes.push_back(std::stoi(argv[i]));
  if (sizes.empty()) sizes = {320, 640};
  log::set_level("warn");
  const int threads = int(std::thread::hardware_concurrency());
  at::set_num_threads(threads);
  auto info = data::load_dataset_yaml(argv[1]);
  auto idx = data::scan_split(info, "train");
  std::printf(
      "machine: %d threads (LibTorch %d); yolov8n nc=%d, batch %d, %d timed iterations after 1 warm-up\n",
      threads, at::get_num_threads(), info.nc, batch, iters);
  std::printf("%6s %16s %16s %8s\n", "imgsz", "full step img/s", "fwd+bwd img/s", "ratio");
  for (int imgsz : sizes) {
    torch::manual_seed(0);
    model::YoloV8 net(model::parse_model_name("yolov8n", info.nc));
    net->train();
    train::DetectionLoss loss(info.nc, net->strides());
    auto opt = train::build_optimizer(net, {"SGD", 0.01, 0.937, 0.1}, 5e-4);
    data::LoaderOptions lo;
    lo.imgsz = imgsz, lo.batch = batch, lo.workers = 2;
    data::DataLoader dl(idx.samples, info.flip_map, lo);
    dl.start_epoch(0);
    data::Batch b;
    auto step = [&](const data::Batch& bb) {
      auto x = bb.images.to(torch::kFloat32).div_(255);
      auto out = loss(net->forward_raw(x), bb.targets, x.size(2), x.size(3));
      out.total.backward();
    };
    // Full step: loader + forward + loss + backward + optimizer.
    dl.next(b);
    step(b);
    opt->step();
    opt->zero_grad();
    auto t0 = std::chrono::steady_clock::now();
    for (int k = 0; k < iters; ++k) {
      if (!dl.next(b)) {
        dl.start_epoch(k + 1);
        dl.next(b);
      }
      step(b);
      opt->step();
      opt->zero_grad();
    }
    double full = double(iters * batch) / seconds_since(t0);
    // Compute alone: the same batch again and again.
    t0 = std::chrono::steady_clock::now();
    for (int k = 0; k < iters; ++k) {
      step(b);
      opt->zero_grad();
    }
    double compute = double(iters * batch) / seconds_since(t0);
    std::printf("%6d %16.2f %16.2f %8.2f\n", imgsz, full, compute, full / compute);
  }
  return 0;
}
