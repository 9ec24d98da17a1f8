#include "train/iou.h"

#include <cmath>

#include "core/error.h"

namespace yq::train {

torch::Tensor bbox_iou(const torch::Tensor& b1, const torch::Tensor& b2, IouKind kind, double eps) {
  YQ_CHECK(b1.dim() >= 1 && b1.size(-1) == 4 && b2.dim() >= 1 && b2.size(-1) == 4,
           "bbox_iou: boxes must be [..., 4] (x1, y1, x2, y2), got {} and {}", c10::str(b1.sizes()),
           c10::str(b2.sizes()));
  auto c1 = b1.unbind(-1);  // x1, y1, x2, y2, each [...]
  auto c2 = b2.unbind(-1);
  const auto &ax1 = c1[0], &ay1 = c1[1], &ax2 = c1[2], &ay2 = c1[3];
  const auto &bx1 = c2[0], &by1 = c2[1], &bx2 = c2[2], &by2 = c2[3];

  auto w1 = ax2 - ax1, h1 = ay2 - ay1 + eps;
  auto w2 = bx2 - bx1, h2 = by2 - by1 + eps;
  auto inter = (torch::min(ax2, bx2) - torch::max(ax1, bx1)).clamp_min(0) *
               (torch::min(ay2, by2) - torch::max(ay1, by1)).clamp_min(0);
  auto uni = w1 * h1 + w2 * h2 - inter + eps;
  auto iou = inter / uni;
  if (kind == IouKind::kIoU) return iou;

  auto cw = torch::max(ax2, bx2) - torch::min(ax1, bx1);  // hull width
  auto ch = torch::max(ay2, by2) - torch::min(ay1, by1);  // hull height
  if (kind == IouKind::kGIoU) {
    auto c_area = cw * ch + eps;
    return iou - (c_area - uni) / c_area;
  }

  auto c2sq = cw.square() + ch.square() + eps;
  // Centre distance squared: ((bx1 + bx2) - (ax1 + ax2))^2 / 4 + same in y.
  auto rho2 = ((bx1 + bx2 - ax1 - ax2).square() + (by1 + by2 - ay1 - ay2).square()) / 4;
  if (kind == IouKind::kDIoU) return iou - rho2 / c2sq;

  const double k = 4.0 / (M_PI * M_PI);
  auto v = k * (torch::atan(w2 / h2) - torch::atan(w1 / h1)).square();
  torch::Tensor alpha;
  {
    torch::NoGradGuard no_grad;
    alpha = v / (v - iou + (1 + eps));
  }
  return iou - (rho2 / c2sq + v * alpha);
}

}  // namespace yq::train
