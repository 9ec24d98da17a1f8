// Conv + BN folding for inference (DESIGN.md "Quantization"; the ONNX export and the int8 convert
// take their weights from here).
//
// For y = BN(conv(x, W) + c) with BN's running statistics (eval mode):
//   g = gamma / sqrt(running_var + eps)            per output channel
//   W' = W * g (per output channel), b' = beta + (c - running_mean) * g   (c = 0 without a conv bias)
// so that conv(x, W') + b' == BN(conv(x, W) + c). The activation (SiLU) stays after the fused conv.
#pragma once

#include <torch/torch.h>

#include <string>
#include <utility>
#include <vector>

namespace yq::model {
class YoloV8Impl;
}

namespace yq::quant {

struct FusedConv {
  torch::Tensor weight;  // [c2, c1, k, k]
  torch::Tensor bias;    // [c2]
  int64_t stride = 1;
  int64_t padding = 0;
  bool silu = true;  // a SiLU follows (ConvBnAct); false for the head's plain final convs
};

// Folds `bn` (running statistics) into a conv weight [c2, c1, k, k] and optional bias [c2]
// (undefined = none). Differentiable: QAT folds in the forward pass with it.
FusedConv fold_conv_bn(const torch::Tensor& weight, const torch::Tensor& conv_bias,
                       const torch::nn::BatchNorm2dImpl& bn);

// Fused weights of every conv of the model in module order, by layer name: each ConvBnAct
// ("model.0", "model.2.m.0.cv1", ..., the head's "model.22.cv2.0.0") with its BN folded, and the
// head's final plain convs ("model.22.cv2.0.2", with their own bias, silu = false). Detached copies.
std::vector<std::pair<std::string, FusedConv>> fused_convs(model::YoloV8Impl& model);

// Switches every ConvBnAct between float (BN separate) and fused (BN folded on the fly from the
// current parameters and running statistics) computation. A prepared (QAT) model is refused: its
// eval-mode forward already folds BN.
void set_fused(model::YoloV8Impl& model, bool fused);

}  // namespace yq::quant
