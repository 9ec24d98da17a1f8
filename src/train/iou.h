// Overlap measures of axis-aligned boxes given as corners (x1, y1, x2, y2), used by the task-aligned
// assigner and the box loss (SPEC-YOLOV8.md "Loss").
#pragma once

#include <torch/torch.h>

namespace yq::train {

enum class IouKind {
  kIoU,   // intersection / union
  kGIoU,  // IoU - (hull area - union) / hull area
  kDIoU,  // IoU - rho^2 / c^2
  kCIoU,  // IoU - rho^2 / c^2 - alpha * v
};

// Element-wise overlap of b1 and b2, both [..., 4] xyxy and broadcastable to each other.
// Returns [...] (the last dimension is dropped), in the dtype of the inputs.
//
// Definitions (w, h are widths and heights; eps keeps divisions finite for degenerate boxes):
//   h1 = y2 - y1 + eps, h2 likewise; inter = overlap width * overlap height (each clamped at 0);
//   union = w1 h1 + w2 h2 - inter + eps; IoU = inter / union.
//   hull: the smallest box that holds both, cw x ch; c^2 = cw^2 + ch^2 + eps;
//   rho^2 = squared distance between the box centres;
//   v = 4 / pi^2 (atan(w2 / h2) - atan(w1 / h1))^2, alpha = v / (v - IoU + 1 + eps), computed without
//   gradient (alpha is a constant weight for autograd);
//   GIoU uses the hull area cw ch + eps.
// Identical boxes give 1 (up to eps); IoU lies in [0, 1], GIoU in (-1, 1], DIoU and CIoU in (-1, 1].
torch::Tensor bbox_iou(const torch::Tensor& b1, const torch::Tensor& b2, IouKind kind = IouKind::kIoU,
                       double eps = 1e-7);

}  // namespace yq::train
