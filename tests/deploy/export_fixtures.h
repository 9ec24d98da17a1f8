// Shared by the export tests: models with non-trivial BN statistics and head biases, and the
// difference measures used against ONNX Runtime.
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "model/yolov8.h"

namespace yq::testing {

// Seeded random BN statistics (so folding the BN is exercised: fresh BNs are the identity) and head
// biases spread so that class scores span 0..1 (their init makes every score ~1e-4). Sets class
// names sign_0, sign_1, ... and eval mode.
inline void randomize_for_export(model::YoloV8& m, uint64_t seed) {
  torch::manual_seed(seed);
  torch::NoGradGuard ng;
  for (auto& mod : m->modules(/*include_self=*/false)) {
    if (auto* bn = mod->as<torch::nn::BatchNorm2dImpl>()) {
      bn->weight.uniform_(0.5, 1.5);
      bn->bias.normal_(0, 0.2);
      bn->running_mean.normal_(0, 0.2);
      bn->running_var.uniform_(0.5, 2.0);
    }
    if (auto* conv = mod->as<torch::nn::Conv2dImpl>(); conv && conv->bias.defined())
      conv->bias.normal_(0, 1.5);
  }
  std::vector<std::string> names;
  for (int64_t c = 0; c < m->nc(); ++c) names.push_back("sign_" + std::to_string(c));
  m->set_names(names);
  m->eval();
}

// Relative differences of detection outputs [B, 4 + nc, A] are taken against max(|b|, floor):
//  - box rows (cx, cy, w, h in input pixels): floor 1 px. Coordinates below a pixel (an anchor at the
//    image corner, a tiny width) are compared absolutely at 1e-4 px: the decode's x2y2 - x1y1 cancels
//    at float32 precision there and no detection can tell such differences apart;
//  - score rows: floor 0.01. Scores of improbable classes (below 0.01) are compared absolutely at
//    1e-6 (ONNX Runtime's Sigmoid is accurate to ~1e-7 absolute, a large relative error on 1e-4).
// Other tensors use the score floor everywhere.
constexpr double kRelFloor = 1e-2;
constexpr double kBoxRelFloor = 1.0;
// fp32 export vs our forward pass (issue 5: "fp32 outputs equal to 1e-4 relative").
constexpr double kFp32RelTol = 1e-4;

struct Diff {
  double max_abs = 0;
  double max_rel = 0;  // max |a - b| / max(|b|, floor)
};

inline Diff compare(const torch::Tensor& a, const torch::Tensor& b) {
  auto d = (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs();
  auto floor = torch::full_like(d, kRelFloor);
  if (d.dim() == 3 && d.size(1) > 4) floor.narrow(1, 0, 4).fill_(kBoxRelFloor);
  auto denom = torch::max(b.to(torch::kFloat64).abs(), floor);
  return {d.max().item<double>(), (d / denom).max().item<double>()};
}

}  // namespace yq::testing
