// Anchor points and distance <-> box conversions shared by the Detect head and the loss
// (SPEC-YOLOV8.md "Anchors and decoding").
#pragma once

#include <torch/torch.h>

#include <utility>
#include <vector>

namespace yq::model {

// Anchor points (grid-cell centres, x + offset, y + offset, in feature units) for every level, and
// the stride of each anchor. feats[i] is [B, C, H_i, W_i].
// Returns {points [A, 2] (x, y), strides [A, 1]} with A = sum H_i * W_i, levels in order.
std::pair<torch::Tensor, torch::Tensor> make_anchors(const std::vector<torch::Tensor>& feats,
                                                     const std::vector<int64_t>& strides,
                                                     double offset = 0.5);

// Same from feature sizes alone ({H_i, W_i} per level).
std::pair<torch::Tensor, torch::Tensor> make_anchors(const std::vector<std::pair<int64_t, int64_t>>& sizes,
                                                     const std::vector<int64_t>& strides,
                                                     torch::Dtype dtype = torch::kFloat32,
                                                     torch::Device device = torch::kCPU, double offset = 0.5);

// Distances (l, t, r, b) along `dim` -> box. xywh: (cx, cy, w, h), else (x1, y1, x2, y2).
// distance [..., 4, ...], anchors broadcastable to the 2-vectors of distance.
torch::Tensor dist2bbox(const torch::Tensor& distance, const torch::Tensor& anchors, bool xywh,
                        int64_t dim = -1);

// Box (x1, y1, x2, y2) [..., 4] -> distances (l, t, r, b) from anchors [..., 2], clamped to
// [0, reg_max - 0.01] (the DFL target range).
torch::Tensor bbox2dist(const torch::Tensor& anchors, const torch::Tensor& bbox, double reg_max);

}  // namespace yq::model
