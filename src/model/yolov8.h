// The YOLOv8 detection model, built from a layer table (SPEC-YOLOV8.md "Layer table") at any
// scale (n/s/m/l/x or custom depth/width multiples) and any number of classes.
//
// The layer table is read from text in the reference's model-yaml format (nc, scales, backbone,
// head; modules Conv, C2f, SPPF, nn.Upsample, Concat, Detect); the built-in YOLOv8 table is such a
// text too, so a user's yaml and `model=yolov8n` go through the same builder.
//
// Module names reproduce the reference state dict: the layers live in a ModuleList named `model`,
// so parameters read `model.0.conv.weight`, `model.2.m.0.cv1.conv.weight`,
// `model.22.cv2.0.2.bias`, `model.22.dfl.conv.weight`.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <string>
#include <vector>

#include "model/blocks.h"

namespace yq::model {

// What to build. `parse_model_name` fills it from a `model=` value.
struct ModelSpec {
  std::string name = "yolov8n";  // for display (file stem or built-in name)
  std::string scale = "n";       // key of the table's `scales` ("" = the first one listed)
  int64_t nc = 80;               // number of classes
  // Overrides of the scale's multiples when > 0 (custom or tiny models for tests).
  double depth = 0;
  double width = 0;
  int64_t max_channels = 0;
  std::string yaml;    // layer table in the reference yaml format; "" = the built-in YOLOv8 table
  std::string origin;  // where `yaml` came from, for error messages
};

// Resolves `model`: an existing file is read as a model yaml (scale from a `yolov8<s>` stem, nc
// from the file); otherwise yolov8, yolov8n, yolov8s, ..., with or without ".yaml", are the
// built-in table (plain yolov8 = scale n). nc > 0 overrides the yaml's nc. Throws UsageError
// for anything else.
ModelSpec parse_model_name(const std::string& model, int64_t nc = 0);

// A very small model with the YOLOv8 topology for fast tests: depth 0.33, width 0.0625
// (channels 8..64 in the backbone).
ModelSpec tiny_model_spec(int64_t nc = 80);

// The built-in YOLOv8 layer table (reference yaml format, scales n/s/m/l/x).
const std::string& builtin_yolov8_yaml();

// One built layer, as the `info` table prints it.
struct LayerInfo {
  int64_t index = 0;
  std::vector<int64_t> from;  // -1 = previous layer
  int64_t repeats = 1;        // after depth scaling
  std::string module;         // Conv, C2f, SPPF, Upsample, Concat, Detect
  std::string args;           // resolved arguments, e.g. "[3, 16, 3, 2]"
  int64_t channels = 0;       // output channels (Detect: 0)
  int64_t stride = 1;         // output stride relative to the input (Detect: 0)
};

class YoloV8Impl : public torch::nn::Module {
 public:
  explicit YoloV8Impl(const ModelSpec& spec = ModelSpec());
  // Layers are called through holders captured at build time: a copy would call the original's
  // layers. Use copy_model() for a deep copy (EMA, teacher models).
  YoloV8Impl(const YoloV8Impl&) = delete;
  YoloV8Impl& operator=(const YoloV8Impl&) = delete;

  // x [B, 3, H, W] float in 0..1, H and W multiples of the largest stride.
  // Raw head outputs per level: [B, 64 + nc, H / s_i, W / s_i] (what the loss takes).
  // detect_inputs, when given, receives the tensors Detect reads (P3, P4, P5: [B, ch_i, H / s_i,
  // W / s_i]), e.g. for feature distillation; they stay part of the autograd graph.
  std::vector<torch::Tensor> forward_raw(const torch::Tensor& x,
                                         std::vector<torch::Tensor>* detect_inputs = nullptr);
  // Inference output: [B, 4 + nc, A], rows cx, cy, w, h in input pixels then sigmoid class
  // scores, A = sum (H / s_i) * (W / s_i).
  torch::Tensor forward(const torch::Tensor& x);
  // decode(forward_raw(x)) == forward(x).
  torch::Tensor decode(const std::vector<torch::Tensor>& raw) { return detect_->decode(raw); }

  const std::vector<int64_t>& strides() const { return detect_->strides(); }  // {8, 16, 32}
  int64_t nc() const { return spec_.nc; }
  int64_t reg_max() const { return kRegMax; }
  // Class names (default "class0", "class1", ...; set from the data set).
  const std::vector<std::string>& names() const { return names_; }
  void set_names(std::vector<std::string> names);

  const ModelSpec& spec() const { return spec_; }
  const std::vector<LayerInfo>& layers() const { return info_; }
  // Resolved multiples of this model.
  double depth_multiple() const { return depth_; }
  double width_multiple() const { return width_; }
  Detect detect() const { return detect_; }

  torch::nn::ModuleList model{nullptr};  // the layers, in table order
  // Quantizer of the image (child "input_fq", installed by quant::prepare; empty = float input).
  quant::FakeQuantize input_fq{nullptr};

 private:
  using Run = std::function<torch::Tensor(const std::vector<torch::Tensor>&)>;
  ModelSpec spec_;
  std::vector<std::string> names_;
  std::vector<LayerInfo> info_;
  std::vector<Run> run_;    // per layer except Detect
  std::vector<bool> keep_;  // output needed by a later layer
  Detect detect_{nullptr};
  double depth_ = 1, width_ = 1;
};
TORCH_MODULE(YoloV8);

// A deep copy: the same spec rebuilt, then every parameter and buffer copied by name (values,
// requires_grad, device and dtype), class names and train/eval mode included.
YoloV8 copy_model(YoloV8Impl& m);

// Counts of the reference's model summary: every parameter (DFL weights included), and those
// that require gradients.
int64_t count_parameters(const torch::nn::Module& m);
int64_t count_trainable(const torch::nn::Module& m);

}  // namespace yq::model
