#include "data/loader.h"

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.h"
#include "core/log.h"
#include "core/rng.h"

namespace yq::data {

DataLoader::DataLoader(std::vector<Sample> samples, std::vector<int> flip_map, LoaderOptions opt)
    : samples_(std::move(samples)), flip_map_(std::move(flip_map)), opt_(opt) {
  YQ_CHECK_USAGE(opt_.imgsz % opt_.stride == 0 && opt_.imgsz > 0,
                 "imgsz {} must be a positive multiple of {}", opt_.imgsz, opt_.stride);
  YQ_CHECK_USAGE(opt_.batch > 0, "batch must be positive");
  YQ_CHECK(!samples_.empty(), "the data set split has no usable images");
  order_.resize(samples_.size());
  std::iota(order_.begin(), order_.end(), 0);
  if (opt_.rect) {
    // Sort by aspect ratio (h / w) so each batch pads little; shapes as the reference computes them.
    std::stable_sort(order_.begin(), order_.end(), [&](int64_t a, int64_t b) {
      return double(samples_[a].height) / samples_[a].width < double(samples_[b].height) / samples_[b].width;
    });
    for (int64_t b = 0; b < num_batches(); ++b) {
      double lo = 1e9, hi = 0;
      for (int64_t i = b * opt_.batch; i < std::min<int64_t>((b + 1) * opt_.batch, order_.size()); ++i) {
        double ar = double(samples_[order_[i]].height) / samples_[order_[i]].width;
        lo = std::min(lo, ar), hi = std::max(hi, ar);
      }
      double sh = 1, sw = 1;
      if (hi < 1)
        sh = hi;
      else if (lo > 1)
        sw = 1 / lo;
      auto round_up = [&](double rel) {
        return int(std::ceil(rel * opt_.imgsz / opt_.stride + opt_.pad) * opt_.stride);
      };
      rect_shapes_.emplace_back(round_up(sh), round_up(sw));
    }
  }
}

DataLoader::~DataLoader() {
  stop();
}

int64_t DataLoader::num_batches() const {
  return (int64_t(samples_.size()) + opt_.batch - 1) / opt_.batch;
}

void DataLoader::stop() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
  threads_.clear();
}

void DataLoader::start_epoch(int epoch) {
  stop();
  epoch_ = epoch;
  if (opt_.shuffle && !opt_.rect) {
    std::iota(order_.begin(), order_.end(), 0);
    Rng rng(mix_seed(opt_.seed, uint64_t(epoch), 0x5EED));
    for (int64_t i = int64_t(order_.size()) - 1; i > 0; --i) std::swap(order_[i], order_[rng.randint(i + 1)]);
  }
  std::lock_guard<std::mutex> lk(mu_);
  ready_.clear();
  next_to_build_ = next_to_return_ = 0;
  stopping_ = false;
  error_ = nullptr;
  for (int w = 0; w < opt_.workers; ++w) threads_.emplace_back([this] { worker(); });
}

void DataLoader::worker() {
  const int64_t ahead = int64_t(std::max(1, opt_.prefetch)) * std::max(1, opt_.workers);
  for (;;) {
    int64_t b;
    {
      std::unique_lock<std::mutex> lk(mu_);
      cv_.wait(lk, [&] { return stopping_ || next_to_build_ < next_to_return_ + ahead; });
      if (stopping_ || next_to_build_ >= num_batches()) return;
      b = next_to_build_++;
    }
    Batch batch;
    std::exception_ptr err;
    try {
      batch = build(b);
    } catch (...) {
      err = std::current_exception();
    }
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (err && !error_) error_ = err;
      ready_[b] = std::move(batch);
    }
    cv_.notify_all();
  }
}

bool DataLoader::next(Batch& out) {
  if (next_to_return_ >= num_batches()) return false;
  if (opt_.workers == 0) {
    out = build(next_to_return_++);
    return true;
  }
  std::unique_lock<std::mutex> lk(mu_);
  cv_.wait(lk, [&] { return error_ || ready_.count(next_to_return_); });
  if (error_) std::rethrow_exception(error_);
  out = std::move(ready_[next_to_return_]);
  ready_.erase(next_to_return_++);
  lk.unlock();
  cv_.notify_all();
  return true;
}

Annotated DataLoader::load_resized(int64_t index) const {
  const Sample& s = samples_.at(size_t(index));
  Annotated a;
  a.image = cv::imread(s.image, cv::IMREAD_COLOR);
  YQ_CHECK(!a.image.empty(), "image {} no longer decodes (it changed after the data set was scanned)",
           s.image);
  for (const auto& l : s.labels) a.boxes.push_back(to_pixels(l, a.image.cols, a.image.rows));
  return resize_long_side(a, opt_.imgsz);
}

void mat_to_chw(const cv::Mat& bgr, torch::Tensor dst) {
  YQ_ASSERT(bgr.type() == CV_8UC3 && dst.size(1) == bgr.rows && dst.size(2) == bgr.cols);
  cv::Mat rgb;
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  auto hwc = torch::from_blob(rgb.data, {rgb.rows, rgb.cols, 3}, {int64_t(rgb.step[0]), 3, 1}, torch::kUInt8);
  dst.copy_(hwc.permute({2, 0, 1}));
}

Batch DataLoader::build(int64_t b) const {
  const int64_t begin = b * opt_.batch;
  const int64_t end = std::min<int64_t>(begin + opt_.batch, int64_t(order_.size()));
  int out_h = opt_.imgsz, out_w = opt_.imgsz;
  if (opt_.rect) std::tie(out_h, out_w) = rect_shapes_[size_t(b)];

  Batch batch;
  batch.images = torch::full({end - begin, 3, out_h, out_w}, 114, torch::kUInt8);
  std::vector<float> targets;
  for (int64_t pos = begin; pos < end; ++pos) {
    const int64_t index = order_[size_t(pos)];
    const Sample& s = samples_[size_t(index)];
    Annotated a;
    LetterboxInfo lb;
    if (opt_.augment) {
      Rng rng(mix_seed(opt_.seed, uint64_t(epoch_), uint64_t(pos)));
      a = augment_sample(
          int(index), int(samples_.size()), [this](int k) { return load_resized(k); }, opt_.imgsz, opt_.aug,
          flip_map_, rng);
      lb.out_w = out_w, lb.out_h = out_h;
    } else {
      Annotated r = load_resized(index);
      a.image = letterbox(r.image, out_w, out_h, &lb, /*scaleup=*/false, /*center=*/true);
      a.boxes = r.boxes;
      letterbox_boxes(a.boxes, lb);
      // The mapping back goes to the original image, not the resized one.
      lb.ratio *= double(r.image.cols) / s.width;
    }
    YQ_ASSERT(a.image.rows == out_h && a.image.cols == out_w);
    const int64_t i = pos - begin;
    mat_to_chw(a.image, batch.images[i]);
    for (const auto& bx : a.boxes) {
      Label l = to_normalized(bx, out_w, out_h);
      targets.insert(targets.end(), {float(i), float(l.cls), l.cx, l.cy, l.w, l.h});
    }
    batch.paths.push_back(s.image);
    batch.orig_hw.emplace_back(s.height, s.width);
    batch.letterbox.push_back(lb);
    batch.sample_index.push_back(index);
  }
  batch.targets = torch::from_blob(targets.data(), {int64_t(targets.size() / 6), 6}, torch::kFloat32).clone();
  return batch;
}

}  // namespace yq::data
