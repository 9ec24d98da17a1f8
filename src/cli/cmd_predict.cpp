// yoloqat predict weights=best.pt source=IMAGE|FOLDER|GLOB|VIDEO: boxes drawn, YOLO txt with
// confidences, predictions.json; per-image timing (pre-process, inference, NMS).
#include <glob.h>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/videoio.hpp>

#include <chrono>
#include <cmath>
#include <fstream>
#include <iostream>

#include "cli/command.h"
#include "core/error.h"
#include "core/log.h"
#include "data/augment.h"
#include "data/loader.h"
#include "deploy/runtime.h"
#include "eval/nms.h"
#include "eval/validator.h"
#include "eval/visualize.h"

namespace yq::cli {

namespace {

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

bool is_video(const fs::path& p) {
  static const char* exts[] = {"mp4", "avi", "mov", "mkv", "m4v", "mpg", "mpeg", "wmv", "webm"};
  std::string e = lower_ext(p);
  for (const char* x : exts)
    if (e == x) return true;
  return false;
}

// Expands `source` into files: a file, a folder (images and videos, sorted) or a glob pattern.
std::vector<fs::path> expand_source(const std::string& source) {
  std::vector<fs::path> out;
  if (fs::is_directory(source)) {
    for (const auto& e : fs::directory_iterator(source))
      if (e.is_regular_file() && (is_image_file(e.path()) || is_video(e.path()))) out.push_back(e.path());
    std::sort(out.begin(), out.end());
  } else if (fs::exists(source)) {
    out.push_back(source);
  } else if (source.find_first_of("*?[") != std::string::npos) {
    glob_t g{};
    if (::glob(source.c_str(), 0, nullptr, &g) == 0)
      for (size_t i = 0; i < g.gl_pathc; ++i) out.push_back(g.gl_pathv[i]);
    globfree(&g);
  }
  YQ_CHECK_USAGE(!out.empty(),
                 "source '{}' matches no image or video (give a file, a folder or a glob pattern)", source);
  return out;
}

struct Predictor {
  eval::Detector net;
  int imgsz = 640;
  int stride = 32;  // the model's largest stride
  eval::NmsOptions nms;
  double pre = 0, inf = 0, post = 0;

  // Detections [n, 6] in original pixels.
  torch::Tensor operator()(const cv::Mat& bgr) {
    auto t0 = Clock::now();
    // Letterbox with minimal padding: long side to imgsz, each side up to a stride multiple.
    double r = std::min(double(imgsz) / bgr.cols, double(imgsz) / bgr.rows);
    int w = int(std::ceil(std::lround(bgr.cols * r) / double(stride))) * stride;
    int h = int(std::ceil(std::lround(bgr.rows * r) / double(stride))) * stride;
    data::LetterboxInfo lb;
    cv::Mat boxed = data::letterbox(bgr, w, h, &lb, true, true);
    auto x = torch::empty({1, 3, h, w}, torch::kUInt8);
    data::mat_to_chw(boxed, x[0]);
    auto xf = x.to(torch::kFloat32).div_(255);
    pre = ms_since(t0);
    t0 = Clock::now();
    torch::Tensor preds = net.forward(xf);
    inf = ms_since(t0);
    t0 = Clock::now();
    auto dets = eval::non_max_suppression(preds, nms)[0];
    dets = eval::scale_to_original(dets, lb, bgr.rows, bgr.cols);
    post = ms_since(t0);
    return dets;
  }
};

std::vector<data::BoxPx> to_boxes(const torch::Tensor& d, std::vector<float>& scores) {
  std::vector<data::BoxPx> boxes;
  auto a = d.accessor<float, 2>();
  for (int64_t k = 0; k < d.size(0); ++k) {
    boxes.push_back({int(a[k][5]), a[k][0], a[k][1], a[k][2], a[k][3]});
    scores.push_back(a[k][4]);
  }
  return boxes;
}

void run_predict(const Config& cfg) {
  YQ_CHECK_USAGE(!cfg.get_str("weights").empty(), "key 'weights' is required (a checkpoint)");
  YQ_CHECK_USAGE(!cfg.get_str("source").empty(), "key 'source' is required (image, folder, glob or video)");
  auto files = expand_source(cfg.get_str("source"));
  auto im = deploy::load_inference_model(cfg.get_str("weights"), {cfg.get_bool("allow_inexact")});
  Predictor pred;
  pred.net = im.detector;
  pred.imgsz = int(cfg.get_int("imgsz"));
  pred.stride = int(im.max_stride);
  pred.nms.conf = cfg.get_float("conf"), pred.nms.iou = cfg.get_float("iou");
  pred.nms.max_det = int(cfg.get_int("max_det"));
  for (auto c : cfg.get_ints("classes")) pred.nms.classes.push_back(int(c));
  const auto& names = im.names;

  fs::path out = make_run_dir(cfg, "reports");
  cfg.save(out / "args.yaml");
  const bool save_img = cfg.get_bool("save"), save_txt = cfg.get_bool("save_txt");
  if (save_txt) fs::create_directories(out / "labels");
  nlohmann::json all = nlohmann::json::array();
  int64_t frames = 0, failed = 0;
  double sum_pre = 0, sum_inf = 0, sum_post = 0;

  auto record = [&](const std::string& stem, const cv::Mat& img, const torch::Tensor& dets,
                    cv::Mat* annotated) {
    std::vector<float> scores;
    auto boxes = to_boxes(dets, scores);
    std::string txt;
    for (size_t k = 0; k < boxes.size(); ++k) {
      const auto& b = boxes[k];
      all.push_back({{"image_id", stem},
                     {"category_id", b.cls},
                     {"name", b.cls < int(names.size()) ? names[size_t(b.cls)] : std::to_string(b.cls)},
                     {"bbox", {b.x1, b.y1, b.x2 - b.x1, b.y2 - b.y1}},
                     {"score", scores[k]}});
      auto l = data::to_normalized(b, img.cols, img.rows);
      txt += fmt::format("{} {:.6f} {:.6f} {:.6f} {:.6f} {:.4f}\n", l.cls, l.cx, l.cy, l.w, l.h, scores[k]);
    }
    if (save_txt) atomic_write(out / "labels" / (stem + ".txt"), txt);
    if (annotated) {
      *annotated = img.clone();
      eval::draw_boxes(*annotated, boxes, names, scores);
    }
    ++frames;
    sum_pre += pred.pre, sum_inf += pred.inf, sum_post += pred.post;
    return boxes.size();
  };

  for (const auto& f : files) {
    if (is_video(f)) {
      cv::VideoCapture cap(f.string());
      if (!cap.isOpened()) {
        log::error("{}: cannot open the video, skipped", f.string());
        ++failed;
        continue;
      }
      double fps = cap.get(cv::CAP_PROP_FPS);
      cv::VideoWriter writer;
      cv::Mat frame;
      for (int64_t k = 0; cap.read(frame); ++k) {
        auto dets = pred(frame);
        cv::Mat annotated;
        size_t n =
            record(fmt::format("{}_{}", f.stem().string(), k), frame, dets, save_img ? &annotated : nullptr);
        if (save_img) {
          if (!writer.isOpened())
            writer.open((out / (f.stem().string() + ".avi")).string(),
                        cv::VideoWriter::fourcc('M', 'J', 'P', 'G'), fps > 0 ? fps : 25, frame.size());
          writer.write(annotated);
        }
        log::info("{} frame {}: {} detections ({:.1f} ms pre, {:.1f} ms inference, {:.1f} ms NMS)",
                  f.filename().string(), k, n, pred.pre, pred.inf, pred.post);
      }
      continue;
    }
    cv::Mat img = cv::imread(f.string(), cv::IMREAD_COLOR);
    if (img.empty()) {
      log::error("{}: does not decode, skipped", f.string());
      ++failed;
      continue;
    }
    auto dets = pred(img);
    cv::Mat annotated;
    size_t n = record(f.stem().string(), img, dets, save_img ? &annotated : nullptr);
    if (save_img)
      YQ_CHECK(cv::imwrite((out / (f.stem().string() + ".jpg")).string(), annotated), "cannot write to {}",
               out.string());
    log::info("{}: {} detections ({:.1f} ms pre-process, {:.1f} ms inference, {:.1f} ms NMS)",
              f.filename().string(), n, pred.pre, pred.inf, pred.post);
  }
  atomic_write(out / "predictions.json", all.dump(2));
  if (frames > 0)
    log::info(
        "{} images/frames, mean {:.1f} ms pre-process, {:.1f} ms inference, {:.1f} ms NMS; {} unreadable; "
        "results in {}",
        frames, sum_pre / frames, sum_inf / frames, sum_post / frames, failed, out.string());
  YQ_CHECK(frames > 0, "no image of '{}' could be read", cfg.get_str("source"));
}

}  // namespace

Command predict_command() {
  Command c;
  c.name = "predict";
  c.summary = "detect on images, folders, globs or videos: annotated output, YOLO txt, JSON";
  c.declare = [](Schema& s) {
    s.text("weights", "", "checkpoint to run");
    add_model_weights_key(s);
    s.text("source", "", "image file, folder, glob pattern ('dir/*.jpg') or video file");
    s.integer("imgsz", 640, "long side of the network input (multiple of 32)", 32, 8192);
    s.real("conf", 0.25, "confidence threshold", 0, 1);
    s.real("iou", 0.7, "NMS IoU threshold", 0, 1);
    s.integer("max_det", 300, "detections kept per image", 1, 100000);
    s.integers("classes", "", "keep only these class ids (empty = all)", 0);
    s.flag("save", true, "save annotated images (and videos as .avi)");
    s.flag("save_txt", true, "save YOLO txt labels with confidences (labels/STEM.txt)");
    add_device_key(s);
    add_output_keys(s, "predict");
    add_inexact_key(s);
    add_runtime_keys(s);
  };
  c.run = run_predict;
  return c;
}

}  // namespace yq::cli
