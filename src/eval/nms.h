// Non-maximum suppression of raw YOLOv8 head outputs (SPEC-YOLOV8.md "Validation and mAP"),
// written in C++ without torchvision.
//
// Semantics follow the reference's non_max_suppression:
//  - candidates: score > conf (strict); multi_label keeps every (anchor, class) pair above conf,
//    otherwise only the best class of each anchor (first maximum on ties);
//  - the `classes` filter is applied after that choice (an anchor whose best class is filtered out is
//    dropped even if another class scores above conf, as in the reference);
//  - at most max_nms candidates, the highest scoring, go into the suppression;
//  - greedy suppression in score order: a candidate is dropped when its IoU with an already kept box of
//    the same class (any class when agnostic) is > iou (strict, as torchvision's nms);
//  - at most max_det boxes per image, in descending score order.
// Differences from the reference, both deliberate: class separation is exact (the reference offsets boxes
// by 7680 * class in float, which costs precision at large class ids); ties in score are broken by
// anchor index then class (the reference's order on ties is unspecified). There is no time limit.
#pragma once

#include <torch/torch.h>

#include <vector>

namespace yq::eval {

struct NmsOptions {
  double conf = 0.25;        // keep candidates with score > conf (validation: 0.001)
  double iou = 0.7;          // suppress a box whose IoU with a kept box of its class is > iou
  int max_det = 300;         // boxes kept per image
  bool multi_label = false;  // one candidate per (anchor, class) above conf instead of per anchor
  bool agnostic = false;     // suppress across classes
  std::vector<int> classes;  // keep only these classes; empty = all
  int max_nms = 30000;       // candidates going into the suppression, the highest scoring
};

// preds [B, 4 + nc, A]: rows cx, cy, w, h (pixels), then class scores in 0..1 (the model's eval output).
// Any floating dtype and device. Returns per image a [n, 6] float32 tensor on the device of preds:
// x1, y1, x2, y2, conf, cls, sorted by conf descending (n <= max_det).
std::vector<torch::Tensor> non_max_suppression(const torch::Tensor& preds, const NmsOptions& o);

// Greedy class-aware NMS over given boxes: boxes [n, 4] xyxy, scores [n], classes [n] (integral or
// float class ids; an undefined tensor = one class). Returns the indices of the kept boxes [k] int64,
// in descending score order (ties: lower index first), at most max_keep of them (<= 0: no cap).
torch::Tensor nms_indices(const torch::Tensor& boxes, const torch::Tensor& scores,
                          const torch::Tensor& classes, double iou, int64_t max_keep = 0);

}  // namespace yq::eval
