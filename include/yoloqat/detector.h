// yoloqat's C++ API: YOLOv8 detection inside your own program, without the CLI.
//
//   #include <yoloqat/detector.h>
//   yoloqat::Detector det("best.pt");                    // any model file `yoloqat predict` reads
//   for (const yoloqat::Detection& d : det.detect(cv::imread("frame.jpg")))
//     std::printf("%s %.2f [%.0f %.0f %.0f %.0f]\n", d.class_name.c_str(), d.score, d.x1, d.y1, d.x2, d.y2);
//
// CMake: find_package(yoloqat) and link yoloqat::yoloqat (README "C++ API"). This header holds no
// LibTorch types; OpenCV's cv::Mat is the image type.
//
// Errors are exceptions derived from yoloqat::Error (a std::runtime_error); nothing exits the process:
//  - yoloqat::UsageError: the caller asked for something invalid: an option out of range, an empty or
//    unsupported image, a file that is no model we read, an int8 model whose target is not exact on this
//    CPU (see DetectorOptions::allow_inexact);
//  - yoloqat::Error: anything else (a file that cannot be read, a corrupt checkpoint, a failing kernel).
// what() says which file or option and what was expected.
#pragma once

#include <opencv2/core/mat.hpp>

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "yoloqat/version.h"

namespace yoloqat {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class UsageError : public Error {
 public:
  using Error::Error;
};

// "0.1.0" (YOLOQAT_VERSION_STRING of the library that is linked, which may differ from the header's).
std::string version();

// The level of the library's log lines on stderr: "trace", "debug", "info" (default), "warn", "error" or
// "off". Process-wide. Throws UsageError for another name.
void set_log_level(const std::string& level);

// One detected object. Coordinates are in pixels of the image given to detect() (continuous pixel
// edges: a box covering columns 10..19 has x1 = 10, x2 = 20), clipped to the image.
struct Detection {
  float x1 = 0, y1 = 0, x2 = 0, y2 = 0;
  float score = 0;         // class confidence, 0..1
  int class_id = 0;        // 0 .. num_classes() - 1
  std::string class_name;  // the model's name of class_id (its number when the model has no names)
};

// Defaults are those of `yoloqat predict`.
struct DetectorOptions {
  float conf = 0.25f;        // keep detections with score > conf (0..1)
  float iou = 0.7f;          // NMS: drop a box whose IoU with a kept box of its class is > iou (0..1)
  int max_det = 300;         // detections kept per image (>= 1)
  int imgsz = 640;           // long side of the network input (>= 32); the image is letterboxed to it with
                             // the least padding that makes each side a multiple of the model's stride
  std::vector<int> classes;  // keep only these class ids (empty = all)
  // CPU threads for LibTorch and OpenCV (0 = all cores). Process-wide: both keep one global pool; the
  // Detector sets it when constructed and when set_options changes it. -1 leaves the pools as they are.
  int threads = 0;
  // An int8 model (or a quantized checkpoint made for a target) that is not exact on this CPU is refused
  // with a UsageError naming the missing CPU feature; true runs it anyway (with a warning).
  bool allow_inexact = false;
};

// A loaded model and its pre-/post-processing (letterbox, NMS, mapping back to image pixels: the same code
// as `yoloqat predict`, so both give the same boxes). Move-only. One Detector must not be used by two
// threads at once; separate Detectors may run in parallel.
class Detector {
 public:
  // Reads `model_path`: a yoloqat checkpoint (fp32, PTQ or QAT: evaluated with fake quantization), a
  // converted .int8 model, a reference YOLOv8 .pt (read without Python, safely) or a YOLOv8 .onnx export.
  // Throws UsageError for invalid options or a file of no kind we read, Error when it cannot be read.
  explicit Detector(const std::string& model_path, const DetectorOptions& options = {});
  ~Detector();
  Detector(Detector&&) noexcept;
  Detector& operator=(Detector&&) noexcept;
  Detector(const Detector&) = delete;
  Detector& operator=(const Detector&) = delete;

  // Detections of one image, by descending score (at most max_det). `image`: 8-bit BGR (CV_8UC3) as
  // cv::imread gives; grey (CV_8UC1) and BGRA (CV_8UC4) are converted. An empty image or another type is a
  // UsageError.
  std::vector<Detection> detect(const cv::Mat& image);
  // One result per image, in order. Images whose letterboxed sizes are equal run through the network
  // as one batch; each result is that of detect(image) (up to float rounding of batched kernels).
  std::vector<std::vector<Detection>> detect(const std::vector<cv::Mat>& images);

  const DetectorOptions& options() const;
  // Replaces the options (checked as in the constructor; allow_inexact applies at load only).
  void set_options(const DetectorOptions& options);

  int num_classes() const;
  const std::vector<std::string>& class_names() const;
  // "fp32", "ptq", "qat" (fake quantization) or "int8".
  const std::string& model_kind() const;
  // Input sides are made multiples of it (32 for YOLOv8).
  int stride() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace yoloqat
