// `yoloqat synth`: the embedded synthetic Vietnamese traffic-sign data set (look-alike of Zalo AI
// 2020 / Roboflow vietnam-traffic-sign-detection, which cannot be downloaded here).
//
// Street-like scenes (procedural, or random crops of photos from a folder) with QCVN 41 signs drawn
// in perspective, plus unlabelled sign-like distractors, written in the YOLO layout:
//   out/{train,valid,test}/{images,labels}/NNNNNN.{jpg,txt}  and  out/dataset.yaml
// Every image has its own Rng seeded with mix_seed(seed, split, index), so the bytes written depend
// only on the options, never on the thread count.
#pragma once

#include <opencv2/core.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "core/fs.h"
#include "data/boxes.h"

namespace yq::data {

struct SynthOptions {
  fs::path out = "dataset/vietnam-traffic-sign-detection";
  int train = 600, val = 150, test = 150;  // images per split
  uint64_t seed = 0;
  int width = 640, height = 384;  // dashcam aspect
  std::string classes = "zalo7";  // "zalo7" (7 Zalo AI groups) or "qcvn" (QCVN 41 codes)
  fs::path backgrounds;           // folder of photos to crop scenes from; empty = procedural scenes
  int threads = 0;                // 0 = all cores
};

struct SynthReport {
  int images = 0, boxes = 0;
  int backgrounds = 0;         // images with no sign (empty label file)
  std::vector<int> per_class;  // boxes per class
  double seconds = 0;
};

// Class names of a class set: "zalo7" or "qcvn"; anything else is a UsageError listing both.
std::vector<std::string> synth_class_names(const std::string& set);
// Per class: the class it becomes when the image is mirrored, or -1 (never flip an image holding it).
std::vector<int> synth_flip_map(const std::string& set);

// Writes the whole data set (images, labels, dataset.yaml) and returns what it wrote.
// Throws UsageError for invalid options, Error (with the file named) for I/O failures.
SynthReport synthesize(const SynthOptions& opt);

// One rendered image and its sign boxes in pixels (cls = class id).
struct SynthImage {
  cv::Mat image;  // CV_8UC3, height x width
  std::vector<BoxPx> boxes;
};

// Renders single images the way synthesize() does (for tests, previews and tools).
class SynthRenderer {
 public:
  explicit SynthRenderer(const SynthOptions& opt);
  // split: 0 train, 1 valid, 2 test. With draw_signs = false the very same scene is rendered with
  // the signs left out (poles, distractors, occluders, lighting and noise unchanged): the pixels
  // that differ are the signs', which lets tests check that every box covers a sign.
  SynthImage render(int split, int index, bool draw_signs = true) const;
  int num_classes() const { return int(names_.size()); }

 private:
  SynthOptions opt_;
  std::vector<std::string> names_;
  std::vector<std::vector<int>> class_designs_;  // per class: sign_catalogue() indices drawn for it
  std::vector<int> extra_designs_;               // real signs outside the class set (unlabelled)
  std::vector<fs::path> photos_;
};

}  // namespace yq::data
