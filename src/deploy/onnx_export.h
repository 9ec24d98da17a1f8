// fp32 ONNX export of a YoloV8 with the interface of the reference YOLOv8 export (SPEC-YOLOV8.md
// "Files users already have"): input `images` [1, 3, H, W] float 0..1 RGB, output `output0`
// [1, 4 + nc, A] with rows cx, cy, w, h in input pixels then sigmoid class scores, no NMS; Conv + BN
// folded; metadata props stride, task, imgsz, names, batch, ... like the reference.
//
// Graph: Conv (BN folded) -> Sigmoid -> Mul per ConvBnAct (SiLU); Add, Split, Concat, MaxPool
// (k5 s1 p2), Resize (nearest, asymmetric, floor = PyTorch's nearest); the Detect head concatenates
// box and class maps per level, reshapes and concatenates the levels to [B, 64 + nc, A], splits
// box bins and class logits, runs the DFL as Reshape [B, 4, 16, A] -> Transpose -> Softmax over the
// bins -> 1x1 Conv with weights 0..15, decodes with constant anchors and strides, and ends in
// Concat(boxes * stride, Sigmoid(classes)).
//
// Tensor and node names follow the module names (model.2.m.0.cv1.conv, ...) and the weights are
// initializers named like the reference's state dict (model.0.conv.weight, model.0.conv.bias).
//
// One walk over the model writes every flavour: it calls an OnnxTensorHooks at each place where the
// model has (or may have) a quantizer and at each tensor a Conv, Add, Concat or the float head tail
// reads. The base class writes the fp32 graph; deploy/onnx_qdq.h derives the QDQ flavours from it.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/fs.h"
#include "deploy/onnx_graph.h"
#include "model/yolov8.h"

namespace yq::quant {
class FakeQuantizeImpl;
}

namespace yq::deploy {

struct OnnxExportOptions {
  int64_t height = 640;  // input size, multiples of the model's largest stride
  int64_t width = 640;
  bool dynamic = false;  // batch dimension symbolic ("batch") instead of 1
  int64_t opset = 17;    // 13 to 17 (the graph is the same for all of them)
  std::string source;    // where the weights came from, for the description ("" = not said)
};

// Conv weight and bias with the BatchNorm's eval-mode affine folded in:
// w' = w * gamma / sqrt(var + eps), b' = beta + (b - mean) * gamma / sqrt(var + eps) (b = 0 when
// the conv has no bias). Float32, detached copies.
std::pair<torch::Tensor, torch::Tensor> fold_conv_bn(const torch::nn::Conv2dImpl& conv,
                                                     const torch::nn::BatchNorm2dImpl& bn);

// Class names as the reference writes them into the metadata: a Python dict literal,
// {0: 'person', 1: 'bicycle'} (quotes chosen and escaped as Python's repr does).
std::string python_names_dict(const std::vector<std::string>& names);

// The places where a flavour changes the graph. `fq` arguments are the model's quantizers (null: the
// tensor has none); the walk passes them only when quantized() is true. Every method returns the
// name of the tensor that later nodes read instead of the one given; the base class returns it
// unchanged and writes float weights, i.e. the fp32 graph.
class OnnxTensorHooks {
 public:
  virtual ~OnnxTensorHooks() = default;
  // false: the model's quantizers are ignored and BN is folded in double precision (fp32 export).
  virtual bool quantized() const { return false; }
  // A tensor that a quantizer owns was just written: the image ("images", input_fq), a ConvBnAct's
  // output after SiLU (act_fq), a residual Add's or a Concat's output (out_fq), a head conv's output.
  virtual std::string produced(OnnxGraph&, const std::string& x, quant::FakeQuantizeImpl* /*fq*/) {
    return x;
  }
  // A ConvBnAct's conv output before SiLU (pre_fq).
  virtual std::string pre_activation(OnnxGraph&, const std::string& y, quant::FakeQuantizeImpl* /*pre_fq*/) {
    return y;
  }
  // An op that keeps its input's grid (Split, MaxPool, Resize) wrote `out` from `in`.
  virtual std::string passed(OnnxGraph&, const std::string& /*in*/, const std::string& out) { return out; }
  // The tensors a Conv, a residual Add, a Concat (whose shared quantizer is `cat_fq`) and the float
  // head tail read.
  virtual std::string conv_input(OnnxGraph&, const std::string& x) { return x; }
  virtual std::string add_input(OnnxGraph&, const std::string& x) { return x; }
  virtual std::string concat_input(OnnxGraph&, const std::string& x, quant::FakeQuantizeImpl* /*cat_fq*/) {
    return x;
  }
  virtual std::string float_input(OnnxGraph&, const std::string& x) { return x; }
  // A conv's weight [c2, c1, k, k] (BN folded) and bias [c2] (undefined = none) for the conv `name`
  // reading `input` (the name conv_input returned): the tensor names the Conv node reads ("" = no bias).
  virtual std::pair<std::string, std::string> conv_params(OnnxGraph& g, const std::string& name,
                                                          const std::string& input, const torch::Tensor& w,
                                                          const torch::Tensor& b,
                                                          quant::FakeQuantizeImpl* weight_fq);
};

// The fp32 graph of `model` (BN running statistics folded, whatever the train/eval mode), with
// metadata, not yet checked.
onnx::ModelProto build_onnx_model(model::YoloV8Impl& model, const OnnxExportOptions& options = {});

// The graph of `model` as `hooks` shape it (build_onnx_model = this with the base hooks), metadata
// included, not yet checked.
onnx::ModelProto build_onnx_model(model::YoloV8Impl& model, const OnnxExportOptions& options,
                                  OnnxTensorHooks& hooks);

struct OnnxExportResult {
  int64_t bytes = 0;         // file size
  int64_t nodes = 0;         // graph nodes
  int64_t initializers = 0;  // weight and constant tensors
  int64_t anchors = 0;       // A of output0
};

// Builds, checks (checker + shape inference) and writes atomically.
OnnxExportResult export_onnx(model::YoloV8Impl& model, const fs::path& path,
                             const OnnxExportOptions& options = {});

}  // namespace yq::deploy
