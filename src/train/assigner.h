// Task-aligned assigner: decides which anchors learn which ground-truth box and with what soft class
// target (SPEC-YOLOV8.md "Loss").
#pragma once

#include <torch/torch.h>

namespace yq::train {

struct AssignResult {
  torch::Tensor target_labels;  // [B, A] int64: class of the assigned box; nc where fg_mask is false
  torch::Tensor target_bboxes;  // [B, A, 4] xyxy in the units of gt_bboxes; 0 where fg_mask is false
  torch::Tensor target_scores;  // [B, A, nc] one-hot(class) * normalized alignment; 0 on background
  torch::Tensor fg_mask;        // [B, A] bool: the anchor is positive
  torch::Tensor target_gt_idx;  // [B, A] int64: index m of the assigned box (0 where fg_mask is false)
};

// For every ground truth (gt) box:
//  1. candidates are the anchors whose centre lies strictly inside the box (by more than eps);
//  2. alignment = score(gt class)^alpha * IoU^beta, IoU = CIoU(gt, predicted box) clamped at 0;
//  3. the top-k candidates by alignment become positives (candidates always rank above non-candidates,
//     so a box with at most k candidates takes all of them);
//  4. an anchor claimed by several boxes keeps, among those boxes, the one of highest IoU;
//  5. soft target = one-hot(class) * alignment * (max IoU over the box's positives)
//                   / (max alignment over the box's positives + eps).
// Runs without gradient. Memory is O(B * M * A) for masks and metrics; IoUs are only computed for
// the candidate pairs.
class TaskAlignedAssigner {
 public:
  explicit TaskAlignedAssigner(int topk = 10, int nc = 80, double alpha = 0.5, double beta = 6.0,
                               double eps = 1e-9);

  // pd_scores [B, A, nc] class probabilities (after sigmoid); pd_bboxes [B, A, 4] xyxy;
  // anc_points [A, 2] (x, y) in the same units as the boxes (pixels); gt_labels [B, M, 1] class ids
  // (any numeric dtype); gt_bboxes [B, M, 4] xyxy; mask_gt [B, M, 1] (non-zero = real box, 0 = padding).
  AssignResult operator()(const torch::Tensor& pd_scores, const torch::Tensor& pd_bboxes,
                          const torch::Tensor& anc_points, const torch::Tensor& gt_labels,
                          const torch::Tensor& gt_bboxes, const torch::Tensor& mask_gt) const;

  int topk() const { return topk_; }
  int nc() const { return nc_; }

 private:
  int topk_;
  int nc_;
  double alpha_, beta_, eps_;
};

}  // namespace yq::train
