// Shared fixtures for tests that need a model or a data set: a tiny YOLOv8 model yaml (width
// 0.0625) and a tiny synthetic data set, both written at test time.
#pragma once

#include <regex>
#include <string>

#include "core/fs.h"
#include "data/synth.h"
#include "model/yolov8.h"

namespace yq::testing {

// The built-in YOLOv8 table at depth 0.33, width 0.0625 (channels 8..64): fast on 2 cores.
inline fs::path write_tiny_model_yaml(const fs::path& dir) {
  std::string y = model::builtin_yolov8_yaml();
  y = std::regex_replace(y, std::regex("scales:[^\\n]*\\n(  [nslmx]: [^\\n]*\\n)+"),
                         "depth_multiple: 0.33\nwidth_multiple: 0.0625\n");
  fs::path p = dir / "yolov8-tiny.yaml";
  atomic_write(p, y);
  return p;
}

// A synthetic data set of `train`/`val`/`test` images at w x h (zalo7 classes); returns dataset.yaml.
inline fs::path write_tiny_dataset(const fs::path& dir, int train = 16, int val = 8, int test = 4,
                                   int w = 160, int h = 96) {
  data::SynthOptions o;
  o.out = dir / "data";
  o.train = train, o.val = val, o.test = test, o.width = w, o.height = h, o.threads = 2;
  data::synthesize(o);
  return o.out / "dataset.yaml";
}

}  // namespace yq::testing
