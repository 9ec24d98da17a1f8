// Helpers shared by the tests of prepare, fusion and quantized checkpoints: a tiny model with
// non-trivial BN statistics, and the signal-to-quantization-noise ratio.
#pragma once

#include <torch/torch.h>

#include <cmath>

#include "model/yolov8.h"

namespace yq::quant::testing {

// A tiny YOLOv8 (3 classes) whose BN layers have random affine parameters and running statistics,
// so that folding BN is not the identity. Eval mode.
inline model::YoloV8 tiny_model(uint64_t seed = 7, int64_t nc = 3) {
  torch::manual_seed(seed);
  model::YoloV8 m(model::tiny_model_spec(nc));
  torch::NoGradGuard no_grad;
  for (const auto& mod : m->modules(false)) {
    if (auto* bn = mod->as<torch::nn::BatchNorm2dImpl>()) {
      bn->weight.uniform_(0.5, 1.5);
      bn->bias.uniform_(-0.2, 0.2);
      bn->running_mean.uniform_(-0.3, 0.3);
      bn->running_var.uniform_(0.5, 2.0);
    }
  }
  m->eval();
  return m;
}

// Images in [0, 1] on the uint8 grid, [n, 3, s, s].
inline torch::Tensor images(int64_t n, int64_t s, uint64_t seed) {
  torch::manual_seed(seed);
  return torch::randint(0, 256, {n, 3, s, s}).to(torch::kFloat) / 255.0;
}

// The raw head outputs flattened into one vector.
inline torch::Tensor flat(const std::vector<torch::Tensor>& raw) {
  std::vector<torch::Tensor> v;
  for (const auto& r : raw) v.push_back(r.reshape({-1}));
  return torch::cat(v);
}

// 10 log10(sum ref^2 / sum (ref - x)^2) in dB.
inline double sqnr_db(const torch::Tensor& ref, const torch::Tensor& x) {
  const double s = ref.pow(2).sum().item<double>();
  const double n = (ref - x).pow(2).sum().item<double>();
  return 10.0 * std::log10(s / std::max(n, 1e-30));
}

}  // namespace yq::quant::testing
