#include "train/iou.h"

#include <gtest/gtest.h>

#include <cmath>

#include "core/rng.h"

namespace yq::train {
namespace {

constexpr double kTolF32 = 1e-5;  // float32 boxes of size ~1..100 px
constexpr double kTolF64 = 1e-9;

torch::Tensor box(double x1, double y1, double x2, double y2) {
  return torch::tensor({x1, y1, x2, y2}, torch::kFloat64);
}

double value(const torch::Tensor& a, const torch::Tensor& b, IouKind kind) {
  return bbox_iou(a, b, kind).item<double>();
}

// Plain scalar CIoU written from the formula; alpha_override >= 0 replaces alpha (used to check that
// autograd treats alpha as a constant).
double ciou_scalar(const double* a, const double* b, double alpha_override = -1, double eps = 1e-7) {
  double w1 = a[2] - a[0], h1 = a[3] - a[1] + eps, w2 = b[2] - b[0], h2 = b[3] - b[1] + eps;
  double iw = std::max(0.0, std::min(a[2], b[2]) - std::max(a[0], b[0]));
  double ih = std::max(0.0, std::min(a[3], b[3]) - std::max(a[1], b[1]));
  double inter = iw * ih, uni = w1 * h1 + w2 * h2 - inter + eps, iou = inter / uni;
  double cw = std::max(a[2], b[2]) - std::min(a[0], b[0]), ch = std::max(a[3], b[3]) - std::min(a[1], b[1]);
  double c2 = cw * cw + ch * ch + eps;
  double dx = (b[0] + b[2]) / 2 - (a[0] + a[2]) / 2, dy = (b[1] + b[3]) / 2 - (a[1] + a[3]) / 2;
  double rho2 = dx * dx + dy * dy;
  double dv = std::atan(w2 / h2) - std::atan(w1 / h1);
  double v = 4.0 / (M_PI * M_PI) * dv * dv;
  double alpha = alpha_override >= 0 ? alpha_override : v / (v - iou + 1 + eps);
  return iou - (rho2 / c2 + alpha * v);
}

double alpha_scalar(const double* a, const double* b, double eps = 1e-7) {
  double w1 = a[2] - a[0], h1 = a[3] - a[1] + eps, w2 = b[2] - b[0], h2 = b[3] - b[1] + eps;
  double iw = std::max(0.0, std::min(a[2], b[2]) - std::max(a[0], b[0]));
  double ih = std::max(0.0, std::min(a[3], b[3]) - std::max(a[1], b[1]));
  double inter = iw * ih, iou = inter / (w1 * h1 + w2 * h2 - inter + eps);
  double dv = std::atan(w2 / h2) - std::atan(w1 / h1);
  double v = 4.0 / (M_PI * M_PI) * dv * dv;
  return v / (v - iou + 1 + eps);
}

TEST(BoxIou, IdenticalBoxesAreOne) {
  auto a = box(3, 5, 17, 11);
  for (auto kind : {IouKind::kIoU, IouKind::kGIoU, IouKind::kDIoU, IouKind::kCIoU})
    EXPECT_NEAR(value(a, a, kind), 1.0, 1e-7);
}

TEST(BoxIou, DisjointBoxes) {
  // a = (0,0,2,2), b = (4,0,6,2): no overlap, IoU 0. Union 4 + 4 = 8; hull (0,0,6,2) of area 12:
  // GIoU = 0 - (12 - 8) / 12 = -1/3. Centres (1,1) and (5,1): rho^2 = 16; hull diagonal^2 = 36 + 4 = 40;
  // same aspect ratio so v = 0: DIoU = CIoU = -16/40 = -0.4.
  auto a = box(0, 0, 2, 2), b = box(4, 0, 6, 2);
  EXPECT_NEAR(value(a, b, IouKind::kIoU), 0.0, kTolF64);
  EXPECT_NEAR(value(a, b, IouKind::kGIoU), -1.0 / 3.0, 1e-7);
  EXPECT_NEAR(value(a, b, IouKind::kDIoU), -0.4, 1e-7);
  EXPECT_NEAR(value(a, b, IouKind::kCIoU), -0.4, 1e-7);
}

TEST(BoxIou, NestedConcentricBoxes) {
  // b = (1,1,3,3) inside a = (0,0,4,4): IoU = 4 / 16 = 0.25; the hull is a itself so GIoU = 0.25;
  // same centre (rho = 0) and same aspect (v = 0): DIoU = CIoU = 0.25.
  auto a = box(0, 0, 4, 4), b = box(1, 1, 3, 3);
  for (auto kind : {IouKind::kIoU, IouKind::kGIoU, IouKind::kDIoU, IouKind::kCIoU})
    EXPECT_NEAR(value(a, b, kind), 0.25, 1e-7);
}

TEST(BoxIou, AspectRatioTerm) {
  // a = (0,0,4,2), b = (0,0,2,2): inter 4, union 8 + 4 - 4 = 8, IoU 0.5. Centres (2,1), (1,1): rho^2 = 1;
  // hull (0,0,4,2): c^2 = 20, rho^2/c^2 = 0.05. v = 4/pi^2 (atan(1) - atan(2))^2 = 0.0419559,
  // alpha = v / (v - 0.5 + 1) = 0.0774157, alpha v = 0.0032481 -> CIoU = 0.5 - 0.05 - 0.0032481 = 0.4467518.
  auto a = box(0, 0, 4, 2), b = box(0, 0, 2, 2);
  EXPECT_NEAR(value(a, b, IouKind::kIoU), 0.5, 1e-7);
  EXPECT_NEAR(value(a, b, IouKind::kDIoU), 0.45, 1e-7);
  EXPECT_NEAR(value(a, b, IouKind::kCIoU), 0.4467518, 1e-6);
}

TEST(BoxIou, RandomBoxesMatchScalarFormulaAndBroadcast) {
  Rng rng(1234);
  const int n = 40, m = 30;
  auto b1 = torch::empty({n, 4}, torch::kFloat32), b2 = torch::empty({m, 4}, torch::kFloat32);
  for (auto* t : {&b1, &b2}) {
    auto acc = t->accessor<float, 2>();
    for (int64_t i = 0; i < t->size(0); ++i) {
      double x = rng.uniform(0, 60), y = rng.uniform(0, 60);
      acc[i][0] = float(x);
      acc[i][1] = float(y);
      acc[i][2] = float(x + rng.uniform(1, 40));
      acc[i][3] = float(y + rng.uniform(1, 40));
    }
  }
  auto got = bbox_iou(b1.unsqueeze(1), b2.unsqueeze(0), IouKind::kCIoU);  // [n, m]
  ASSERT_EQ(got.sizes(), (std::vector<int64_t>{n, m}));
  auto d1 = b1.to(torch::kFloat64).contiguous(), d2 = b2.to(torch::kFloat64).contiguous();
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < m; ++j) {
      double want = ciou_scalar(d1[i].data_ptr<double>(), d2[j].data_ptr<double>());
      ASSERT_NEAR(got[i][j].item<double>(), want, kTolF32) << "pair " << i << ", " << j;
    }
}

TEST(BoxIou, CiouGradientTreatsAlphaAsConstant) {
  // Finite differences (double) of CIoU with alpha frozen at its value at the point must equal autograd.
  double a[4] = {2, 3, 9, 7}, b[4] = {4, 1, 12, 10};
  auto ta = torch::tensor({a[0], a[1], a[2], a[3]}, torch::kFloat64).requires_grad_(true);
  auto out = bbox_iou(ta, torch::tensor({b[0], b[1], b[2], b[3]}, torch::kFloat64), IouKind::kCIoU);
  out.backward();
  const double alpha0 = alpha_scalar(a, b), h = 1e-6;
  bool differs_from_full = false;
  for (int k = 0; k < 4; ++k) {
    double ap[4] = {a[0], a[1], a[2], a[3]}, am[4] = {a[0], a[1], a[2], a[3]};
    ap[k] += h;
    am[k] -= h;
    double fd = (ciou_scalar(ap, b, alpha0) - ciou_scalar(am, b, alpha0)) / (2 * h);
    double fd_full = (ciou_scalar(ap, b) - ciou_scalar(am, b)) / (2 * h);
    EXPECT_NEAR(ta.grad()[k].item<double>(), fd, 1e-7) << "coordinate " << k;
    if (std::abs(fd_full - fd) > 1e-6) differs_from_full = true;
  }
  EXPECT_TRUE(differs_from_full) << "test boxes do not distinguish a frozen alpha from a differentiated one";
}

TEST(BoxIou, RejectsWrongShape) {
  EXPECT_THROW(bbox_iou(torch::zeros({3, 5}), torch::zeros({3, 4})), std::exception);
}

}  // namespace
}  // namespace yq::train
