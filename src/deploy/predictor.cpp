#include "deploy/predictor.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <utility>

#include "core/error.h"
#include "data/loader.h"

namespace yq::deploy {

namespace {

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

}  // namespace

cv::Mat letterbox_to_stride(const cv::Mat& bgr, int imgsz, int stride, data::LetterboxInfo* info) {
  YQ_CHECK_USAGE(!bgr.empty(), "empty image");
  YQ_CHECK_USAGE(imgsz >= 1 && stride >= 1, "imgsz={} and stride={} must be positive", imgsz, stride);
  const double r = std::min(double(imgsz) / bgr.cols, double(imgsz) / bgr.rows);
  const int w = int(std::ceil(std::lround(bgr.cols * r) / double(stride))) * stride;
  const int h = int(std::ceil(std::lround(bgr.rows * r) / double(stride))) * stride;
  return data::letterbox(bgr, w, h, info, true, true);
}

std::vector<torch::Tensor> predict_images(const eval::Detector& net, const std::vector<cv::Mat>& bgr,
                                          int imgsz, int stride, const eval::NmsOptions& nms,
                                          PredictTimes* times) {
  YQ_ASSERT(net.forward);
  std::vector<torch::Tensor> out(bgr.size());
  // Letterbox everything first, then one batch per letterboxed size (order of first appearance).
  auto t0 = Clock::now();
  std::vector<cv::Mat> boxed(bgr.size());
  std::vector<data::LetterboxInfo> lb(bgr.size());
  std::vector<std::pair<int, int>> sizes;
  std::map<std::pair<int, int>, std::vector<size_t>> groups;
  for (size_t i = 0; i < bgr.size(); ++i) {
    YQ_CHECK_USAGE(bgr[i].type() == CV_8UC3, "image {}: expected 8-bit BGR (CV_8UC3), got type {}", i,
                   bgr[i].type());
    boxed[i] = letterbox_to_stride(bgr[i], imgsz, stride, &lb[i]);
    const std::pair<int, int> key{boxed[i].rows, boxed[i].cols};
    if (!groups.count(key)) sizes.push_back(key);
    groups[key].push_back(i);
  }
  PredictTimes t;
  t.pre_ms += ms_since(t0);
  for (const auto& key : sizes) {
    const auto& idx = groups[key];
    t0 = Clock::now();
    auto x = torch::empty({int64_t(idx.size()), 3, key.first, key.second}, torch::kUInt8);
    for (size_t k = 0; k < idx.size(); ++k) data::mat_to_chw(boxed[idx[k]], x[int64_t(k)]);
    auto xf = x.to(torch::kFloat32).div_(255);
    t.pre_ms += ms_since(t0);
    t0 = Clock::now();
    torch::Tensor preds = net.forward(xf);
    t.inf_ms += ms_since(t0);
    t0 = Clock::now();
    auto dets = eval::non_max_suppression(preds, nms);
    YQ_ASSERT(dets.size() == idx.size());
    for (size_t k = 0; k < idx.size(); ++k)
      out[idx[k]] = eval::scale_to_original(dets[k], lb[idx[k]], bgr[idx[k]].rows, bgr[idx[k]].cols);
    t.post_ms += ms_since(t0);
  }
  if (times) times->pre_ms += t.pre_ms, times->inf_ms += t.inf_ms, times->post_ms += t.post_ms;
  return out;
}

}  // namespace yq::deploy
