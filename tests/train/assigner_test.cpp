#include "train/assigner.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "core/rng.h"
#include "train/iou.h"

namespace yq::train {
namespace {

// Toy grid: one level of 4 x 4 cells at stride 8 (a 32 x 32 image). Anchor i sits at pixel
// ((i % 4) + 0.5) * 8, ((i / 4) + 0.5) * 8, i.e. x, y in {4, 12, 20, 28}:
//    0  1  2  3      (y = 4)
//    4  5  6  7      (y = 12)
//    8  9 10 11      (y = 20)
//   12 13 14 15      (y = 28)
constexpr int kA = 16;
constexpr double kTol = 1e-5;

struct Toy {
  int batch, nc;
  torch::Tensor scores;  // [B, A, nc]
  torch::Tensor boxes;   // [B, A, 4]
  Toy(int b, int nc_) : batch(b), nc(nc_) {
    scores = torch::zeros({b, kA, nc_});
    boxes = torch::empty({b, kA, 4});
    // Default prediction: a 2 x 2 box around the anchor (far too small to align with anything).
    for (int bi = 0; bi < b; ++bi)
      for (int a = 0; a < kA; ++a) set_box(bi, a, ax(a) - 1, ay(a) - 1, ax(a) + 1, ay(a) + 1);
  }
  static double ax(int a) { return (a % 4 + 0.5) * 8; }
  static double ay(int a) { return (a / 4 + 0.5) * 8; }
  void set_box(int b, int a, double x1, double y1, double x2, double y2) {
    boxes[b][a] = torch::tensor({x1, y1, x2, y2}, torch::kFloat32);
  }
  static torch::Tensor anchors() {
    auto t = torch::empty({kA, 2});
    for (int a = 0; a < kA; ++a) t[a] = torch::tensor({ax(a), ay(a)}, torch::kFloat32);
    return t;
  }
};

struct Gts {
  torch::Tensor labels, boxes, mask;  // [B, M, 1], [B, M, 4], [B, M, 1]
  Gts(int b, int m)
      : labels(torch::zeros({b, m, 1})), boxes(torch::zeros({b, m, 4})), mask(torch::zeros({b, m, 1})) {}
  void set(int b, int m, int cls, double x1, double y1, double x2, double y2) {
    labels[b][m][0] = cls;
    boxes[b][m] = torch::tensor({x1, y1, x2, y2}, torch::kFloat32);
    mask[b][m][0] = 1;
  }
};

std::set<int> positives(const AssignResult& r, int b) {
  std::set<int> s;
  for (int a = 0; a < kA; ++a)
    if (r.fg_mask[b][a].item<bool>()) s.insert(a);
  return s;
}

double score(const AssignResult& r, int b, int a, int c) {
  return r.target_scores[b][a][c].item<double>();
}

// Two boxes, one per corner: G0 = (0,0,16,16) class 0 holds anchors 0, 1, 4, 5; G1 = (16,16,32,32)
// class 1 holds anchors 10, 11, 14, 15. Predictions and scores (sigmoid already applied):
//   anchor 0: (0,0,16,16)   CIoU 1                         score 0.25 -> align 0.5 * 1 = 0.5
//   anchor 1: (2,2,14,14)   concentric, same aspect: CIoU = IoU = 144/256 = 0.5625
//                                                          score 0.64 -> align 0.8 * 0.5625^6 = 0.02534
//   anchor 4: (4,4,12,12)   CIoU = 64/256 = 0.25           score 1    -> align 0.25^6 = 2.44e-4
//   anchor 5: (0,0,16,16)   CIoU 1                         score 0.81 -> align 0.9
//   anchor 10: (18,16,34,32) IoU 224/288 = 7/9, centres 2 px apart: rho^2/c^2 = 4 / (18^2 + 16^2) = 1/145,
//              v = 0 (same aspect) -> CIoU = 7/9 - 1/145 = 0.770881; score 0.36 -> align 0.6 * 0.770881^6 =
//              0.125915
//   anchor 11: (16,16,32,32) CIoU 1 but score 0 -> align 0
//   anchor 14: (20,20,28,28) CIoU 0.25, score 1 -> align 2.44e-4
//   anchor 15: (17,17,31,31) CIoU = 196/256 = 0.765625; score 0.04 -> align 0.2 * 0.765625^6 = 0.040283
//              (its class-0 score is 0.9, which must not matter: the gt class is 1)
Toy two_box_toy() {
  Toy t(1, 2);
  auto set = [&](int a, double s, int c, std::vector<double> b) {
    t.scores[0][a][c] = s;
    t.set_box(0, a, b[0], b[1], b[2], b[3]);
  };
  set(0, 0.25, 0, {0, 0, 16, 16});
  set(1, 0.64, 0, {2, 2, 14, 14});
  set(4, 1.0, 0, {4, 4, 12, 12});
  set(5, 0.81, 0, {0, 0, 16, 16});
  set(10, 0.36, 1, {18, 16, 34, 32});
  set(11, 0.0, 1, {16, 16, 32, 32});
  set(14, 1.0, 1, {20, 20, 28, 28});
  set(15, 0.04, 1, {17, 17, 31, 31});
  t.scores[0][15][0] = 0.9;
  return t;
}

Gts two_box_gts() {
  Gts g(1, 2);
  g.set(0, 0, 0, 0, 0, 16, 16);
  g.set(0, 1, 1, 16, 16, 32, 32);
  return g;
}

const double kIou10 = 7.0 / 9.0 - 1.0 / 145.0;  // 0.770881
double align(double s, double iou) {
  return std::sqrt(s) * std::pow(iou, 6);
}

TEST(TaskAlignedAssigner, TwoBoxToyGridTopk2) {
  // topk = 2: G0 keeps anchors 5 (0.9) and 0 (0.5); G1 keeps 10 (0.1259) and 15 (0.0403).
  // Soft targets = align * (max IoU of the box's positives) / (max align of the box's positives):
  //   anchor 5: 0.9 * 1 / 0.9 = 1;  anchor 0: 0.5 * 1 / 0.9 = 0.5556;
  //   anchor 10: max IoU over {10, 15} is 0.770881 -> 0.770881;  anchor 15: 0.040283 * 0.770881 / 0.125915 =
  //   0.246626.
  Toy t = two_box_toy();
  Gts g = two_box_gts();
  TaskAlignedAssigner assigner(2, 2);
  auto r = assigner(t.scores, t.boxes, Toy::anchors(), g.labels, g.boxes, g.mask);
  EXPECT_EQ(positives(r, 0), (std::set<int>{0, 5, 10, 15}));
  for (int a : {0, 5}) {
    EXPECT_EQ(r.target_gt_idx[0][a].item<int64_t>(), 0);
    EXPECT_EQ(r.target_labels[0][a].item<int64_t>(), 0);
    EXPECT_TRUE(torch::allclose(r.target_bboxes[0][a], g.boxes[0][0]));
  }
  for (int a : {10, 15}) {
    EXPECT_EQ(r.target_gt_idx[0][a].item<int64_t>(), 1);
    EXPECT_EQ(r.target_labels[0][a].item<int64_t>(), 1);
    EXPECT_TRUE(torch::allclose(r.target_bboxes[0][a], g.boxes[0][1]));
  }
  EXPECT_EQ(r.target_labels[0][1].item<int64_t>(), 2) << "background holds nc";
  EXPECT_NEAR(score(r, 0, 5, 0), 1.0, kTol);
  EXPECT_NEAR(score(r, 0, 0, 0), 0.5 / 0.9, kTol);
  EXPECT_NEAR(score(r, 0, 10, 1), kIou10, kTol);
  const double a10 = align(0.36, kIou10), a15 = align(0.04, 0.765625);
  EXPECT_NEAR(score(r, 0, 15, 1), a15 * kIou10 / a10, kTol);
  EXPECT_NEAR(score(r, 0, 15, 1), 0.246626, 1e-5);
  // Nothing else: the other class of a positive and every background entry are 0.
  EXPECT_NEAR(r.target_scores.sum().item<double>(), 1.0 + 0.5 / 0.9 + kIou10 + a15 * kIou10 / a10, kTol);
}

TEST(TaskAlignedAssigner, TwoBoxToyGridDefaultTopkTakesAllCandidates) {
  // topk = 10 >= 4 candidates per box: all of 0, 1, 4, 5 and 10, 11, 14, 15 are positive.
  // G0: max align 0.9 (anchor 5), max IoU 1 -> target = align / 0.9.
  // G1: max align 0.125915 (anchor 10), but max IoU is now 1 (anchor 11, whose score is 0) ->
  //     anchor 10: 1.0; anchor 15: 0.040283 / 0.125915 = 0.31992; anchor 14: 2.44e-4 / 0.125915; anchor 11:
  //     0.
  Toy t = two_box_toy();
  Gts g = two_box_gts();
  TaskAlignedAssigner assigner(10, 2);
  auto r = assigner(t.scores, t.boxes, Toy::anchors(), g.labels, g.boxes, g.mask);
  EXPECT_EQ(positives(r, 0), (std::set<int>{0, 1, 4, 5, 10, 11, 14, 15}));
  EXPECT_NEAR(score(r, 0, 0, 0), 0.5 / 0.9, kTol);
  EXPECT_NEAR(score(r, 0, 1, 0), align(0.64, 0.5625) / 0.9, kTol);
  EXPECT_NEAR(score(r, 0, 4, 0), align(1.0, 0.25) / 0.9, kTol);
  EXPECT_NEAR(score(r, 0, 5, 0), 1.0, kTol);
  const double a10 = align(0.36, kIou10);
  EXPECT_NEAR(score(r, 0, 10, 1), 1.0, kTol);
  EXPECT_NEAR(score(r, 0, 11, 1), 0.0, kTol);
  EXPECT_NEAR(score(r, 0, 14, 1), align(1.0, 0.25) / a10, kTol);
  EXPECT_NEAR(score(r, 0, 15, 1), align(0.04, 0.765625) / a10, kTol);
  EXPECT_NEAR(score(r, 0, 15, 1), 0.31992, 1e-4);
  EXPECT_EQ(r.target_gt_idx[0][11].item<int64_t>(), 1);
}

TEST(TaskAlignedAssigner, CandidatesAreStrictlyInside) {
  // Box (4,4,21,21): anchors on x = 4 or y = 4 lie on its edge and are not candidates; the anchors at
  // 12 and 20 (both axes) are inside: 5, 6, 9, 10.
  Toy t(1, 1);
  t.scores.fill_(0.5);
  Gts g(1, 1);
  g.set(0, 0, 0, 4, 4, 21, 21);
  auto r = TaskAlignedAssigner(10, 1)(t.scores, t.boxes, Toy::anchors(), g.labels, g.boxes, g.mask);
  EXPECT_EQ(positives(r, 0), (std::set<int>{5, 6, 9, 10}));
}

TEST(TaskAlignedAssigner, ConflictGoesToHigherIou) {
  // A = (0,0,24,24) class 0 holds anchors 0, 1, 2, 4, 5, 6, 8, 9, 10; B = (8,8,20,20) class 1 holds only
  // anchor 5 (12,12) (x or y = 20 is on its edge). Both claim anchor 5 (topk 10).
  // Anchor 5 predicts B exactly: CIoU with B = 1; with A: IoU 144/576 = 0.25, centres (14,14) vs (12,12):
  // rho^2/c^2 = 8/1152, v = 0 -> 0.243056. Scores at anchor 5: class 0 1.0, class 1 1e-8, so the alignment
  // prefers A (0.243056^6 = 2.06e-4 > sqrt(1e-8) * 1 = 1e-4), yet the anchor goes to B, of higher IoU.
  // Anchor 0 predicts (0,0,12,12) with class-0 score 1: IoU 0.25, rho^2/c^2 = 72/1152 -> CIoU 0.1875,
  // align 0.1875^6 = 4.29e-5. The other anchors of A predict 2 x 2 boxes: CIoU < 0 -> 0, align 0.
  // Normalization uses the positives left after the conflict: A's best is now anchor 0, so its target is
  // 4.29e-5 * 0.1875 / (4.29e-5 + 1e-9) = 0.18750 (it would be 4.29e-5 * 0.243 / 2.06e-4 = 0.05 before).
  // B: 1e-4 * 1 / (1e-4 + 1e-9) = 0.99999.
  Toy t(1, 2);
  t.scores[0][5][0] = 1.0;
  t.scores[0][5][1] = 1e-8;
  t.set_box(0, 5, 8, 8, 20, 20);
  t.scores[0][0][0] = 1.0;
  t.set_box(0, 0, 0, 0, 12, 12);
  Gts g(1, 2);
  g.set(0, 0, 0, 0, 0, 24, 24);
  g.set(0, 1, 1, 8, 8, 20, 20);
  auto r = TaskAlignedAssigner(10, 2)(t.scores, t.boxes, Toy::anchors(), g.labels, g.boxes, g.mask);
  EXPECT_EQ(positives(r, 0), (std::set<int>{0, 1, 2, 4, 5, 6, 8, 9, 10}));
  EXPECT_EQ(r.target_gt_idx[0][5].item<int64_t>(), 1);
  EXPECT_EQ(r.target_labels[0][5].item<int64_t>(), 1);
  EXPECT_TRUE(torch::allclose(r.target_bboxes[0][5], g.boxes[0][1]));
  EXPECT_NEAR(score(r, 0, 5, 1), 1e-4 / (1e-4 + 1e-9), kTol);
  EXPECT_EQ(score(r, 0, 5, 0), 0.0);
  const double a0 = std::pow(0.1875, 6);
  EXPECT_NEAR(score(r, 0, 0, 0), a0 * 0.1875 / (a0 + 1e-9), kTol);
  for (int a : {1, 2, 4, 6, 8, 9, 10}) {
    EXPECT_EQ(r.target_gt_idx[0][a].item<int64_t>(), 0) << a;
    EXPECT_EQ(score(r, 0, a, 0), 0.0) << a;
  }
}

TEST(TaskAlignedAssigner, PaddingAndEmptyImages) {
  // Image 0: one real box (0,0,16,16) and a padding slot whose box covers everything (mask 0); image 1:
  // only padding. Padding never takes anchors; image 1 is all background.
  Toy t(2, 1);
  t.scores.fill_(0.5);
  Gts g(2, 2);
  g.set(0, 0, 0, 0, 0, 16, 16);
  g.boxes[0][1] = torch::tensor({0.f, 0.f, 32.f, 32.f});
  g.boxes[1][0] = torch::tensor({0.f, 0.f, 32.f, 32.f});
  auto r = TaskAlignedAssigner(10, 1)(t.scores, t.boxes, Toy::anchors(), g.labels, g.boxes, g.mask);
  EXPECT_EQ(positives(r, 0), (std::set<int>{0, 1, 4, 5}));
  EXPECT_TRUE(positives(r, 1).empty());
  EXPECT_EQ(r.target_scores[1].abs().sum().item<double>(), 0.0);
  EXPECT_EQ(r.target_gt_idx.masked_select(r.fg_mask).max().item<int64_t>(), 0);

  // No boxes at all (M = 0): shapes kept, everything background.
  Gts none(2, 0);
  auto e = TaskAlignedAssigner(10, 1)(t.scores, t.boxes, Toy::anchors(), none.labels, none.boxes, none.mask);
  EXPECT_EQ(e.fg_mask.sizes(), (std::vector<int64_t>{2, kA}));
  EXPECT_EQ(e.target_scores.sizes(), (std::vector<int64_t>{2, kA, 1}));
  EXPECT_FALSE(e.fg_mask.any().item<bool>());
}

// Plain loop reference of the assignment rules (SPEC-YOLOV8.md "Loss"), in double, one box at a time.
struct RefAssign {
  std::map<std::pair<int, int>, int> gt_of;      // (b, a) -> m
  std::map<std::pair<int, int>, double> target;  // (b, a) -> soft target of its class
};

RefAssign reference_assign(const torch::Tensor& scores, const torch::Tensor& pboxes,
                           const torch::Tensor& anchors, const Gts& g, int topk) {
  const int B = int(scores.size(0)), A = int(scores.size(1)), M = int(g.boxes.size(1));
  auto ciou = [](const torch::Tensor& a, const torch::Tensor& b) {
    return bbox_iou(a.to(torch::kFloat64), b.to(torch::kFloat64), IouKind::kCIoU).item<double>();
  };
  std::map<std::tuple<int, int, int>, std::pair<double, double>> metric;  // (b, m, a) -> (align, iou)
  std::map<std::pair<int, int>, std::vector<int>> claims;                 // (b, a) -> claiming boxes
  for (int b = 0; b < B; ++b)
    for (int m = 0; m < M; ++m) {
      if (g.mask[b][m][0].item<double>() == 0) continue;
      const int cls = int(g.labels[b][m][0].item<double>());
      std::vector<std::pair<double, int>> cands;  // (-align, a): sorts by alignment, then anchor index
      for (int a = 0; a < A; ++a) {
        double x = anchors[a][0].item<double>(), y = anchors[a][1].item<double>();
        double x1 = g.boxes[b][m][0].item<double>(), y1 = g.boxes[b][m][1].item<double>();
        double x2 = g.boxes[b][m][2].item<double>(), y2 = g.boxes[b][m][3].item<double>();
        if (std::min({x - x1, y - y1, x2 - x, y2 - y}) <= 1e-9) continue;
        double iou = std::max(0.0, ciou(g.boxes[b][m], pboxes[b][a]));
        double al = std::pow(scores[b][a][cls].item<double>(), 0.5) * std::pow(iou, 6.0);
        metric[{b, m, a}] = {al, iou};
        cands.push_back({-al, a});
      }
      std::sort(cands.begin(), cands.end());
      for (size_t i = 0; i < cands.size() && int(i) < topk; ++i) claims[{b, cands[i].second}].push_back(m);
    }
  RefAssign r;
  for (auto& [ba, ms] : claims) {
    int best = ms[0];
    for (int m : ms)
      if (metric[{ba.first, m, ba.second}].second > metric[{ba.first, best, ba.second}].second) best = m;
    r.gt_of[ba] = best;  // claims are in increasing m, so ties keep the lowest index
  }
  std::map<std::pair<int, int>, std::pair<double, double>> best_of_gt;  // (b, m) -> (max align, max iou)
  for (auto& [ba, m] : r.gt_of) {
    auto [al, iou] = metric[{ba.first, m, ba.second}];
    auto& mx = best_of_gt[{ba.first, m}];
    mx = {std::max(mx.first, al), std::max(mx.second, iou)};
  }
  for (auto& [ba, m] : r.gt_of) {
    auto [al, iou] = metric[{ba.first, m, ba.second}];
    auto mx = best_of_gt[{ba.first, m}];
    r.target[ba] = al * mx.second / (mx.first + 1e-9);
  }
  return r;
}

TEST(TaskAlignedAssigner, MatchesLoopReferenceOnRandomProblems) {
  // Two levels (8 x 8 at stride 8, 4 x 4 at stride 16) on a 64 x 64 image, nc 3, overlapping random boxes;
  // image 1 has only two real boxes, the rest padding. Predictions: random boxes around each anchor.
  for (uint64_t seed : {1, 2, 3}) {
    for (int topk : {3, 10}) {
      Rng rng(seed);
      const int B = 2, M = 5, nc = 3;
      std::vector<torch::Tensor> pts;
      for (auto [n, s] : {std::pair<int, int>{8, 8}, {4, 16}})
        for (int i = 0; i < n * n; ++i)
          pts.push_back(torch::tensor({(i % n + 0.5) * s, (i / n + 0.5) * s}, torch::kFloat32));
      auto anchors = torch::stack(pts);
      const int A = int(anchors.size(0));
      auto scores = torch::empty({B, A, nc}), boxes = torch::empty({B, A, 4});
      for (int b = 0; b < B; ++b)
        for (int a = 0; a < A; ++a) {
          for (int c = 0; c < nc; ++c) scores[b][a][c] = rng.uniform(0.01, 1.0);
          double x = anchors[a][0].item<double>(), y = anchors[a][1].item<double>();
          boxes[b][a] = torch::tensor({x - rng.uniform(2, 20), y - rng.uniform(2, 20), x + rng.uniform(2, 20),
                                       y + rng.uniform(2, 20)},
                                      torch::kFloat32);
        }
      Gts g(B, M);
      for (int b = 0; b < B; ++b)
        for (int m = 0; m < (b == 0 ? M : 2); ++m) {
          double w = rng.uniform(8, 40), h = rng.uniform(8, 40), x = rng.uniform(0, 64 - w),
                 y = rng.uniform(0, 64 - h);
          g.set(b, m, int(rng.randint(nc)), x, y, x + w, y + h);
        }
      auto r = TaskAlignedAssigner(topk, nc)(scores, boxes, anchors, g.labels, g.boxes, g.mask);
      auto want = reference_assign(scores, boxes, anchors, g, topk);
      SCOPED_TRACE("seed " + std::to_string(seed) + " topk " + std::to_string(topk));
      int n_fg = 0;
      for (int b = 0; b < B; ++b)
        for (int a = 0; a < A; ++a) {
          auto it = want.gt_of.find({b, a});
          bool fg = r.fg_mask[b][a].item<bool>();
          ASSERT_EQ(fg, it != want.gt_of.end()) << "b " << b << " a " << a;
          if (!fg) continue;
          ++n_fg;
          ASSERT_EQ(r.target_gt_idx[b][a].item<int64_t>(), it->second) << "b " << b << " a " << a;
          int cls = int(g.labels[b][it->second][0].item<double>());
          const double t = want.target[{b, a}];
          EXPECT_NEAR(score(r, b, a, cls), t, 1e-5) << "b " << b << " a " << a;
          EXPECT_NEAR(r.target_scores[b][a].sum().item<double>(), t, 1e-5) << "b " << b << " a " << a;
        }
      EXPECT_GT(n_fg, 5);
    }
  }
}

TEST(TaskAlignedAssigner, RejectsClassOutOfRange) {
  Toy t(1, 2);
  Gts g(1, 1);
  g.set(0, 0, 5, 0, 0, 16, 16);
  EXPECT_THROW(TaskAlignedAssigner(10, 2)(t.scores, t.boxes, Toy::anchors(), g.labels, g.boxes, g.mask),
               std::exception);
}

}  // namespace
}  // namespace yq::train
