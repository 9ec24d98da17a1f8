// Model summary for `yoloqat info`: the layer table (index, from, repeats, module, args, params),
// parameter counts and GFLOPs computed analytically from the conv shapes at an image size.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/yolov8.h"

namespace yq::model {

struct LayerRow {
  LayerInfo layer;
  int64_t params = 0;
  double gflops = 0;  // 2 * multiply-accumulates of the layer's convs / 1e9
};

struct ModelSummary {
  std::string name;
  std::string scale;
  int64_t nc = 0;
  int64_t imgsz_h = 0, imgsz_w = 0;
  double depth = 0, width = 0;
  std::vector<int64_t> strides;
  std::vector<LayerRow> rows;
  int64_t params = 0;         // every parameter, DFL weights included (the reference's count)
  int64_t gradients = 0;      // parameters that require gradients
  int64_t state_entries = 0;  // parameters + buffers (the state dict's length)
  double gflops = 0;          // at imgsz_h x imgsz_w, batch 1
};

// GFLOPs count 2 * MACs of every Conv2d of the network (BN, activations, pooling, upsampling,
// DFL and decoding excluded), each at its output resolution. imgsz_h and imgsz_w must be
// multiples of the largest stride.
ModelSummary summarize(YoloV8Impl& model, int64_t imgsz_h, int64_t imgsz_w);

// The layer table and a totals line, as plain text.
std::string format_summary(const ModelSummary& s);

// The summary as a JSON document (keys: model, scale, nc, imgsz, depth_multiple, width_multiple,
// strides, layers[{index, from, repeats, module, args, params, gflops}], parameters, gradients,
// state_entries, gflops).
std::string summary_json(const ModelSummary& s);

}  // namespace yq::model
