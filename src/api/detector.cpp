// The C++ API (include/yoloqat/detector.h) over the library: deploy::load_inference_model and
// deploy::predict_images, the code `yoloqat predict` runs. yq exceptions become yoloqat ones here.
#include "yoloqat/detector.h"

#include <torch/torch.h>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <thread>
#include <utility>

#include "core/error.h"
#include "core/log.h"
#include "deploy/predictor.h"
#include "deploy/runtime.h"

namespace yoloqat {

namespace {

// Runs `fn`, rethrowing every exception as yoloqat::UsageError (from yq::UsageError) or yoloqat::Error,
// its message prefixed by `context` when one is given.
template <class Fn>
auto translated(const std::string& context, Fn&& fn) -> decltype(fn()) {
  const std::string pre = context.empty() ? "" : context + ": ";
  try {
    return fn();
  } catch (const UsageError& e) {
    throw UsageError(pre + e.what());
  } catch (const Error& e) {
    throw Error(pre + e.what());
  } catch (const yq::UsageError& e) {
    throw UsageError(pre + e.what());
  } catch (const c10::Error& e) {
    throw Error(pre + e.what_without_backtrace());
  } catch (const std::exception& e) {
    throw Error(pre + e.what());
  }
}

void check_options(const DetectorOptions& o) {
  YQ_CHECK_USAGE(o.conf >= 0 && o.conf <= 1, "DetectorOptions::conf = {}: expected 0..1", o.conf);
  YQ_CHECK_USAGE(o.iou >= 0 && o.iou <= 1, "DetectorOptions::iou = {}: expected 0..1", o.iou);
  YQ_CHECK_USAGE(o.max_det >= 1, "DetectorOptions::max_det = {}: expected >= 1", o.max_det);
  YQ_CHECK_USAGE(o.imgsz >= 32 && o.imgsz <= 8192, "DetectorOptions::imgsz = {}: expected 32..8192", o.imgsz);
  YQ_CHECK_USAGE(o.threads >= -1, "DetectorOptions::threads = {}: expected >= 0 (0 = all cores, -1 = leave)",
                 o.threads);
}

void apply_threads(int threads) {
  if (threads < 0) return;
  const int n = threads == 0 ? int(std::max(1u, std::thread::hardware_concurrency())) : threads;
  at::set_num_threads(n);
  cv::setNumThreads(n);
}

}  // namespace

std::string version() {
  return YOLOQAT_VERSION;
}

void set_log_level(const std::string& level) {
  translated("set_log_level", [&] { yq::log::set_level(level); });
}

struct Detector::Impl {
  yq::deploy::InferenceModel model;
  DetectorOptions options;
  yq::eval::NmsOptions nms;

  // `loading`: the first call, which sets the thread pools whatever the previous options were.
  void set(const DetectorOptions& o, bool loading) {
    check_options(o);
    for (int c : o.classes)
      YQ_CHECK_USAGE(c >= 0 && c < model.nc, "DetectorOptions::classes: class {} is not in [0, {})", c,
                     model.nc);
    nms = {};
    nms.conf = o.conf, nms.iou = o.iou, nms.max_det = o.max_det, nms.classes = o.classes;
    if (loading || o.threads != options.threads) apply_threads(o.threads);
    options = o;
  }

  std::vector<Detection> to_detections(const torch::Tensor& d) const {
    std::vector<Detection> out;
    auto a = d.accessor<float, 2>();
    out.reserve(size_t(d.size(0)));
    for (int64_t k = 0; k < d.size(0); ++k) {
      Detection x;
      x.x1 = a[k][0], x.y1 = a[k][1], x.x2 = a[k][2], x.y2 = a[k][3], x.score = a[k][4];
      x.class_id = int(a[k][5]);
      x.class_name = x.class_id >= 0 && x.class_id < int(model.names.size()) ? model.names[size_t(x.class_id)]
                                                                             : std::to_string(x.class_id);
      out.push_back(std::move(x));
    }
    return out;
  }
};

Detector::Detector(const std::string& model_path, const DetectorOptions& options)
    : impl_(std::make_unique<Impl>()) {
  translated("", [&] {
    check_options(options);
    impl_->model = yq::deploy::load_inference_model(model_path, {options.allow_inexact});
    impl_->set(options, true);
  });
}

Detector::~Detector() = default;
Detector::Detector(Detector&&) noexcept = default;
Detector& Detector::operator=(Detector&&) noexcept = default;

std::vector<Detection> Detector::detect(const cv::Mat& image) {
  return std::move(detect(std::vector<cv::Mat>{image}).front());
}

std::vector<std::vector<Detection>> Detector::detect(const std::vector<cv::Mat>& images) {
  return translated("detect", [&] {
    YQ_CHECK_USAGE(impl_ != nullptr, "this Detector was moved from");
    std::vector<cv::Mat> bgr(images.size());
    for (size_t i = 0; i < images.size(); ++i) {
      const cv::Mat& m = images[i];
      YQ_CHECK_USAGE(!m.empty(), "image {} is empty", i);
      if (m.type() == CV_8UC3)
        bgr[i] = m;
      else if (m.type() == CV_8UC1)
        cv::cvtColor(m, bgr[i], cv::COLOR_GRAY2BGR);
      else if (m.type() == CV_8UC4)
        cv::cvtColor(m, bgr[i], cv::COLOR_BGRA2BGR);
      else
        throw yq::UsageError(fmt::format(
            "image {}: expected 8-bit BGR (CV_8UC3), grey (CV_8UC1) or BGRA (CV_8UC4), got OpenCV type {}", i,
            m.type()));
    }
    std::vector<std::vector<Detection>> out;
    if (bgr.empty()) return out;
    torch::NoGradGuard no_grad;
    const auto dets = yq::deploy::predict_images(impl_->model.detector, bgr, impl_->options.imgsz,
                                                 int(impl_->model.max_stride), impl_->nms);
    out.reserve(dets.size());
    for (const auto& d : dets) out.push_back(impl_->to_detections(d.contiguous().cpu()));
    return out;
  });
}

const DetectorOptions& Detector::options() const {
  return impl_->options;
}

void Detector::set_options(const DetectorOptions& options) {
  translated("set_options", [&] { impl_->set(options, false); });
}

int Detector::num_classes() const {
  return int(impl_->model.nc);
}

const std::vector<std::string>& Detector::class_names() const {
  return impl_->model.names;
}

const std::string& Detector::model_kind() const {
  return impl_->model.kind;
}

int Detector::stride() const {
  return int(impl_->model.max_stride);
}

}  // namespace yoloqat
