// Batch loader: letterboxed (validation, optionally rectangular) or augmented (training) batches,
// built by `workers` threads ahead of the consumer. Deterministic for a given seed whatever the
// number of workers: each sample draws from its own generator seeded by (seed, epoch, position).
#pragma once

#include <torch/torch.h>

#include <condition_variable>
#include <exception>
#include <map>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "data/augment.h"
#include "data/dataset.h"

namespace yq::data {

struct LoaderOptions {
  int imgsz = 640;  // training: square imgsz; validation: long side (stride multiple)
  int batch = 16;
  int workers = 2;   // 0 = build batches in the calling thread
  int prefetch = 2;  // batches built ahead per worker
  bool shuffle = true;
  bool augment = true;  // mosaic/affine/HSV/flip chain (training) vs plain letterbox
  AugmentOptions aug;
  bool rect = false;  // validation: rectangular batches sorted by aspect ratio
  double pad = 0.5;   // rect: extra stride fraction around the batch shape
  int stride = 32;
  uint64_t seed = 0;
};

struct Batch {
  torch::Tensor images;   // [B, 3, H, W] uint8 RGB
  torch::Tensor targets;  // [N, 6]: batch index, class, cx, cy, w, h normalized to (W, H)
  std::vector<std::string> paths;
  std::vector<std::pair<int, int>> orig_hw;  // original (height, width)
  std::vector<LetterboxInfo> letterbox;      // original -> network input (validation)
  std::vector<int64_t> sample_index;         // each image's index in the loader's samples()
};

class DataLoader {
 public:
  DataLoader(std::vector<Sample> samples, std::vector<int> flip_map, LoaderOptions opt);
  ~DataLoader();
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  int64_t num_batches() const;
  int64_t num_samples() const { return int64_t(samples_.size()); }
  const LoaderOptions& options() const { return opt_; }
  const std::vector<Sample>& samples() const { return samples_; }
  // Mosaic probability from the next epoch on (close_mosaic sets it to 0).
  void set_mosaic(double p) { opt_.aug.mosaic = p; }

  // Starts an epoch: a new order (shuffled by seed and epoch) and fresh workers.
  void start_epoch(int epoch);
  // The next batch of the epoch in order; false when the epoch is done. Rethrows a worker's error.
  bool next(Batch& out);

  // Reads one sample from disk resized so its long side is imgsz (boxes in pixels).
  Annotated load_resized(int64_t index) const;

 private:
  Batch build(int64_t batch_index) const;
  void stop();
  void worker();

  std::vector<Sample> samples_;
  std::vector<int> flip_map_;
  LoaderOptions opt_;
  std::vector<int64_t> order_;                    // sample index by position in the epoch
  std::vector<std::pair<int, int>> rect_shapes_;  // per batch (h, w) when rect
  int epoch_ = 0;

  std::mutex mu_;
  std::condition_variable cv_;
  std::map<int64_t, Batch> ready_;
  int64_t next_to_build_ = 0, next_to_return_ = 0;
  bool stopping_ = false;
  std::exception_ptr error_;
  std::vector<std::thread> threads_;
};

// Converts an image (BGR uint8, any size) into [3, H, W] uint8 RGB written into `dst`.
void mat_to_chw(const cv::Mat& bgr, torch::Tensor dst);

}  // namespace yq::data
