#include "model/anchors.h"

#include "core/error.h"

namespace yq::model {

std::pair<torch::Tensor, torch::Tensor> make_anchors(const std::vector<std::pair<int64_t, int64_t>>& sizes,
                                                     const std::vector<int64_t>& strides, torch::Dtype dtype,
                                                     torch::Device device, double offset) {
  YQ_ASSERT(sizes.size() == strides.size());
  std::vector<torch::Tensor> points, stride_list;
  auto opts = torch::TensorOptions().dtype(dtype).device(device);
  for (size_t i = 0; i < sizes.size(); ++i) {
    auto [h, w] = sizes[i];
    auto sx = torch::arange(w, opts) + offset;    // [W]
    auto sy = torch::arange(h, opts) + offset;    // [H]
    auto grid = torch::meshgrid({sy, sx}, "ij");  // each [H, W]
    points.push_back(torch::stack({grid[1], grid[0]}, -1).view({-1, 2}));
    stride_list.push_back(torch::full({h * w, 1}, double(strides[i]), opts));
  }
  return {torch::cat(points), torch::cat(stride_list)};
}

std::pair<torch::Tensor, torch::Tensor> make_anchors(const std::vector<torch::Tensor>& feats,
                                                     const std::vector<int64_t>& strides, double offset) {
  std::vector<std::pair<int64_t, int64_t>> sizes;
  for (const auto& f : feats) sizes.emplace_back(f.size(2), f.size(3));
  return make_anchors(sizes, strides, feats.at(0).scalar_type(), feats.at(0).device(), offset);
}

torch::Tensor dist2bbox(const torch::Tensor& distance, const torch::Tensor& anchors, bool xywh, int64_t dim) {
  auto lt_rb = distance.chunk(2, dim);
  auto x1y1 = anchors - lt_rb[0];
  auto x2y2 = anchors + lt_rb[1];
  if (xywh) return torch::cat({(x1y1 + x2y2) / 2, x2y2 - x1y1}, dim);
  return torch::cat({x1y1, x2y2}, dim);
}

torch::Tensor bbox2dist(const torch::Tensor& anchors, const torch::Tensor& bbox, double reg_max) {
  auto xy = bbox.chunk(2, -1);
  return torch::cat({anchors - xy[0], xy[1] - anchors}, -1).clamp(0, reg_max - 0.01);
}

}  // namespace yq::model
