// YOLOv8 detection loss: task-aligned assignment, CIoU box loss, distribution focal loss (DFL) and
// BCE class loss with the gains of SPEC-YOLOV8.md "Loss".
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "train/assigner.h"

namespace yq::train {

struct LossOptions {
  double box = 7.5;                // gain of the CIoU box loss
  double cls = 0.5;                // gain of the BCE class loss
  double dfl = 1.5;                // gain of the distribution focal loss
  int reg_max = 16;                // bins per box side
  int topk = 10;                   // assigner: positives per ground truth
  double alpha = 0.5, beta = 6.0;  // assigner: alignment = score^alpha * IoU^beta
};

struct LossOutput {
  torch::Tensor total;  // scalar: (box + cls + dfl) * batch size, gain-weighted; carries the graph
  torch::Tensor items;  // [3] detached: box, cls, dfl (gain-weighted, not times the batch size)
};

// Distribution focal loss. pred_dist [N, 4, reg_max] logits; target [N, 4] distances in bins, in
// [0, reg_max - 1). Each side is a cross-entropy on the two bins around the target, weighted linearly
// (target 3.3: 0.7 on bin 3, 0.3 on bin 4). Returns [N]: the mean over the 4 sides.
torch::Tensor distribution_focal_loss(const torch::Tensor& pred_dist, const torch::Tensor& target);

// Converts targets [N, 6] (batch index, class, cx, cy, w, h normalized to 0..1) to padded per-image
// tensors: labels [B, M, 1] (float class ids), boxes [B, M, 4] xyxy in pixels, mask [B, M, 1] (bool),
// with M the largest box count of an image (0 when there are no targets). Boxes keep their order.
struct PaddedTargets {
  torch::Tensor labels, boxes, mask;
};
PaddedTargets pad_targets(const torch::Tensor& targets, int64_t batch, int64_t img_h, int64_t img_w);

class DetectionLoss {
 public:
  explicit DetectionLoss(int nc, std::vector<int64_t> strides = {8, 16, 32}, LossOptions opts = {});

  // feats: per level [B, 4 * reg_max + nc, H_i, W_i] raw head outputs (box distributions l, t, r, b of
  // reg_max bins each, then nc class logits). targets [N, 6] as for pad_targets. img_h, img_w: the
  // network input size in pixels.
  LossOutput operator()(const std::vector<torch::Tensor>& feats, const torch::Tensor& targets, int64_t img_h,
                        int64_t img_w) const;

  int nc() const { return nc_; }
  const LossOptions& options() const { return opts_; }

 private:
  int nc_;
  std::vector<int64_t> strides_;
  LossOptions opts_;
  TaskAlignedAssigner assigner_;
};

}  // namespace yq::train
