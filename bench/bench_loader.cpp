// Loader throughput: images/s of augmented training batches (mosaic on) for 0, 1 and 2 workers,
// measured in one run, with the ratio to the single-thread (workers=0) baseline.
//
// usage: bench_loader DATASET.yaml [imgsz=640] [batch=16] [batches=20]
#include <opencv2/core.hpp>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include "core/log.h"
#include "data/dataset.h"
#include "data/loader.h"

int main(int argc, char** argv) {
  using namespace yq;
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s DATASET.yaml [imgsz] [batch] [batches]\n", argv[0]);
    return 2;
  }
  const int imgsz = argc > 2 ? std::stoi(argv[2]) : 640;
  const int batch = argc > 3 ? std::stoi(argv[3]) : 16;
  const int batches = argc > 4 ? std::stoi(argv[4]) : 20;
  log::set_level("warn");
  cv::setNumThreads(1);
  auto info = data::load_dataset_yaml(argv[1]);
  auto idx = data::scan_split(info, "train");
  std::printf("machine: %u hardware threads; %zu training images; imgsz %d, batch %d, mosaic 1.0\n",
              std::thread::hardware_concurrency(), idx.samples.size(), imgsz, batch);
  double base = 0;
  for (int workers : {0, 1, 2}) {
    data::LoaderOptions o;
    o.imgsz = imgsz, o.batch = batch, o.workers = workers;
    data::DataLoader dl(idx.samples, info.flip_map, o);
    dl.start_epoch(0);
    data::Batch b;
    dl.next(b);  // warm-up: threads started, first decode
    auto t0 = std::chrono::steady_clock::now();
    int64_t images = 0;
    for (int k = 0; k < batches; ++k) {
      if (!dl.next(b)) {
        dl.start_epoch(k + 1);
        dl.next(b);
      }
      images += b.images.size(0);
    }
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    double ips = double(images) / s;
    if (workers == 0) base = ips;
    std::printf("workers=%d  %7.1f images/s  (x%.2f vs workers=0)\n", workers, ips, ips / base);
  }
  return 0;
}
