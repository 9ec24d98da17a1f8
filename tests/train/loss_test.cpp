#include "train/loss.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/rng.h"

namespace yq::train {
namespace {

constexpr int kR = 16;  // reg_max

TEST(DistributionFocalLoss, TargetSplitsOverTwoBins) {
  // Uniform logits: log_softmax = -ln 16 everywhere, so the loss is ln 16 whatever the split, and the
  // gradient w.r.t. the logits is softmax - (target distribution): 1/16 - 0.7 on bin 3, 1/16 - 0.3 on
  // bin 4, 1/16 elsewhere (target 3.3 -> 0.7 on bin 3, 0.3 on bin 4). Divided by 4 (mean over sides).
  auto logits = torch::zeros({1, 4, kR}, torch::kFloat64).requires_grad_(true);
  auto target = torch::full({1, 4}, 3.3, torch::kFloat64);
  auto l = distribution_focal_loss(logits, target);
  ASSERT_EQ(l.sizes(), (std::vector<int64_t>{1}));
  EXPECT_NEAR(l.item<double>(), std::log(16.0), 1e-12);
  l.sum().backward();
  auto g = logits.grad()[0][0];
  for (int k = 0; k < kR; ++k) {
    double want = (1.0 / 16 - (k == 3 ? 0.7 : k == 4 ? 0.3 : 0.0)) / 4;
    EXPECT_NEAR(g[k].item<double>(), want, 1e-12) << "bin " << k;
  }
}

TEST(DistributionFocalLoss, KnownDistribution) {
  // Softmax p: bin 3 = 0.5, bin 4 = 0.25, the other 14 bins share 0.25. Target 3.3 on every side:
  // loss = -(0.7 ln 0.5 + 0.3 ln 0.25) = 0.485203 + 0.415888 = 0.901091.
  // Side 2 has target 14.99 (the clamp): bins 14 and 15 with weights 0.01 and 0.99, each p = 0.25/14:
  // loss = -ln(0.25/14) = 4.025352. Mean over the sides: (3 * 0.901091 + 4.025352) / 4 = 1.682156.
  std::vector<double> p(kR, 0.25 / 14);
  p[3] = 0.5;
  p[4] = 0.25;
  auto logits = torch::empty({1, 4, kR}, torch::kFloat64);
  for (int s = 0; s < 4; ++s)
    for (int k = 0; k < kR; ++k) logits[0][s][k] = std::log(p[k]);
  auto target = torch::tensor({3.3, 3.3, 14.99, 3.3}, torch::kFloat64).view({1, 4});
  const double side = -(0.7 * std::log(0.5) + 0.3 * std::log(0.25));
  EXPECT_NEAR(side, 0.901091, 1e-6);
  const double want = (3 * side - std::log(0.25 / 14)) / 4;
  EXPECT_NEAR(distribution_focal_loss(logits, target).item<double>(), want, 1e-9);
  EXPECT_NEAR(want, 1.682156, 1e-6);
}

TEST(PadTargets, GroupsByImageAndScalesToPixels) {
  // Rows for images 2, 0, 2 (batch 3): image 0 gets one box, image 1 none, image 2 two, in input order.
  auto t = torch::tensor({2.0, 1.0, 0.5, 0.5, 0.5, 0.25,  //
                          0.0, 3.0, 0.25, 0.5, 0.1, 0.2,  //
                          2.0, 0.0, 0.75, 0.25, 0.5, 0.5})
               .view({3, 6});
  auto p = pad_targets(t, 3, 100, 200);  // h = 100, w = 200
  ASSERT_EQ(p.boxes.sizes(), (std::vector<int64_t>{3, 2, 4}));
  auto per_image = p.mask.squeeze(-1).to(torch::kLong).sum(1);
  EXPECT_TRUE(torch::equal(per_image, torch::tensor({1, 0, 2}, torch::kLong))) << per_image;
  EXPECT_FLOAT_EQ(p.labels[0][0][0].item<float>(), 3);
  EXPECT_FLOAT_EQ(p.labels[2][0][0].item<float>(), 1);
  EXPECT_FLOAT_EQ(p.labels[2][1][0].item<float>(), 0);
  // Image 2, first box: cx 100, cy 50, w 100, h 25 px -> (50, 37.5, 150, 62.5).
  EXPECT_TRUE(torch::allclose(p.boxes[2][0], torch::tensor({50.f, 37.5f, 150.f, 62.5f})));
  // Image 0: cx 50, cy 50, w 20, h 20 -> (40, 40, 60, 60).
  EXPECT_TRUE(torch::allclose(p.boxes[0][0], torch::tensor({40.f, 40.f, 60.f, 60.f})));

  auto e = pad_targets(torch::zeros({0, 6}), 4, 64, 64);
  EXPECT_EQ(e.boxes.sizes(), (std::vector<int64_t>{4, 0, 4}));
}

// Raw head outputs for levels {4x4 at stride 8, 2x2 at stride 16} on a 32 x 32 image.
std::vector<torch::Tensor> zero_feats(int64_t b, int nc) {
  return {torch::zeros({b, 4 * kR + nc, 4, 4}), torch::zeros({b, 4 * kR + nc, 2, 2})};
}

TEST(DetectionLoss, NoObjectsOnlyClassLoss) {
  // All logits 0, no targets: every class target is 0, BCE(0, 0) = ln 2 per element; sum of target
  // scores is 0 -> divided by 1. Batch 2, A = 16 + 4 = 20, nc = 3: cls = 120 ln 2 = 83.1777, times gain 0.5.
  const int nc = 3;
  auto feats = zero_feats(2, nc);
  for (auto& f : feats) f.requires_grad_(true);
  DetectionLoss loss(nc, {8, 16});
  auto out = loss(feats, torch::zeros({0, 6}), 32, 32);
  EXPECT_EQ(out.items[0].item<double>(), 0.0);
  EXPECT_EQ(out.items[2].item<double>(), 0.0);
  EXPECT_NEAR(out.items[1].item<double>(), 0.5 * 120 * std::log(2.0), 1e-4);
  EXPECT_NEAR(out.total.item<double>(), 2 * 0.5 * 120 * std::log(2.0), 1e-3);
  EXPECT_FALSE(out.items.requires_grad());
  out.total.backward();
  for (auto& f : feats) {
    auto g = f.grad();
    ASSERT_TRUE(g.defined());
    EXPECT_TRUE(torch::isfinite(g).all().item<bool>());
    EXPECT_EQ(g.narrow(1, 0, 4 * kR).abs().sum().item<double>(), 0.0) << "no box gradient without objects";
    // d/dx of sum BCE(x, 0) * 0.5 * batch = sigmoid(0) * 0.5 * 2 = 0.5 on every class logit.
    EXPECT_TRUE(torch::allclose(g.narrow(1, 4 * kR, nc), torch::full_like(g.narrow(1, 4 * kR, nc), 0.5)));
  }
}

TEST(DetectionLoss, PerfectBoxesHandWorked) {
  // Image 0 of 2 has one box of class 1, (8,8,24,24) px = normalized (0.5, 0.5, 0.5, 0.5); image 1 none.
  // At stride 8 its candidates are the anchors at (12,12), (20,12), (12,20), (20,20) = indices 5, 6, 9, 10;
  // the stride-16 anchors (8,8), (24,8), ... lie on its edges and are not candidates.
  // In grid units (stride 8) the box is (1,1,3,3) and anchor (1.5,1.5) has distances l,t = 0.5, r,b = 1.5
  // (the others by symmetry). Put equal logits on the two bins around each distance (others -40):
  // expectation = exactly the distance, so every positive predicts the box: CIoU = 1, box loss 0;
  // DFL per side = -(0.5 ln 0.5 + 0.5 ln 0.5) = ln 2.
  // Class logits: +2 for class 1 at the four positives, -2 everywhere else. Equal scores and IoU 1 give
  // equal alignments, so each soft target is 1 and their sum is 4. Every one of the 2 * 20 * 3 = 120
  // elements then costs softplus(-2) = ln(1 + e^-2) = 0.126928 (either x = -2, t = 0 or x = 2, t = 1):
  // cls = 120 * 0.126928 / 4 = 3.807841, times 0.5 = 1.903921. dfl = ln 2 * 4 / 4 = 0.693147, times 1.5.
  const int nc = 3;
  auto feats = zero_feats(2, nc);
  feats[0].narrow(1, 4 * kR, nc).fill_(-2.0);
  feats[1].narrow(1, 4 * kR, nc).fill_(-2.0);
  for (int gy : {1, 2})
    for (int gx : {1, 2}) {
      double cx = gx + 0.5, cy = gy + 0.5;
      double dist[4] = {cx - 1, cy - 1, 3 - cx, 3 - cy};                  // l, t, r, b
      auto cell = feats[0].index({0, torch::indexing::Slice(), gy, gx});  // [4 R + nc]
      cell.narrow(0, 0, 4 * kR).fill_(-40.0);
      for (int s = 0; s < 4; ++s) {
        int lo = int(std::floor(dist[s]));
        cell[s * kR + lo] = 0.0;
        cell[s * kR + lo + 1] = 0.0;
      }
      cell[4 * kR + 1] = 2.0;
    }
  auto targets = torch::tensor({0.0, 1.0, 0.5, 0.5, 0.5, 0.5}).view({1, 6});
  DetectionLoss loss(nc, {8, 16});
  auto out = loss(feats, targets, 32, 32);
  const double sp = std::log1p(std::exp(-2.0));
  EXPECT_NEAR(out.items[0].item<double>(), 0.0, 1e-5);
  EXPECT_NEAR(out.items[1].item<double>(), 0.5 * 120 * sp / 4, 1e-5);
  EXPECT_NEAR(out.items[1].item<double>(), 1.903921, 1e-5);
  EXPECT_NEAR(out.items[2].item<double>(), 1.5 * std::log(2.0), 1e-5);
  EXPECT_NEAR(out.total.item<double>(), 2 * out.items.sum().item<double>(), 1e-5);

  // Move one positive's prediction off the box: its right side now expects 2.5 instead of 1.5
  // (bins 2 and 3). The box loss becomes positive.
  auto cell = feats[0].index({0, torch::indexing::Slice(), 1, 1});
  cell.narrow(0, 2 * kR, kR).fill_(-40.0);
  cell[2 * kR + 2] = 0.0;
  cell[2 * kR + 3] = 0.0;
  auto moved = loss(feats, targets, 32, 32);
  EXPECT_GT(moved.items[0].item<double>(), 1e-3);
  EXPECT_GT(moved.items[2].item<double>(), out.items[2].item<double>());
}

struct Problem {
  std::vector<torch::Tensor> feats;
  torch::Tensor targets;
};

// Batch 2 at 64 x 64 (levels 8x8 at stride 8, 4x4 at stride 16), nc 3, small random logits, four boxes
// (image 1 has three, image 0 one).
Problem random_problem(uint64_t seed) {
  torch::manual_seed(seed);
  Problem p;
  const int nc = 3;
  p.feats = {(torch::randn({2, 4 * kR + nc, 8, 8}) * 0.1).requires_grad_(true),
             (torch::randn({2, 4 * kR + nc, 4, 4}) * 0.1).requires_grad_(true)};
  p.targets = torch::tensor({1.0, 0.0, 0.30, 0.35, 0.40, 0.50,  //
                             0.0, 2.0, 0.60, 0.55, 0.50, 0.60,  //
                             1.0, 1.0, 0.75, 0.70, 0.30, 0.35,  //
                             1.0, 2.0, 0.50, 0.20, 0.25, 0.20})
                  .view({4, 6});
  return p;
}

TEST(DetectionLoss, GradientsFlowAndAreFinite) {
  auto p = random_problem(7);
  DetectionLoss loss(3, {8, 16});
  auto out = loss(p.feats, p.targets, 64, 64);
  ASSERT_TRUE(out.total.requires_grad());
  for (int i = 0; i < 3; ++i) EXPECT_GT(out.items[i].item<double>(), 0.0) << "part " << i;
  out.total.backward();
  for (auto& f : p.feats) {
    ASSERT_TRUE(f.grad().defined());
    EXPECT_TRUE(torch::isfinite(f.grad()).all().item<bool>());
  }
  EXPECT_GT(p.feats[0].grad().narrow(1, 0, 4 * kR).abs().sum().item<double>(), 0.0)
      << "box logits get gradient";
  EXPECT_GT(p.feats[0].grad().narrow(1, 4 * kR, 3).abs().sum().item<double>(), 0.0)
      << "class logits get gradient";
}

TEST(DetectionLoss, SgdStepsReduceTheLoss) {
  auto p = random_problem(11);
  DetectionLoss loss(3, {8, 16});
  torch::optim::SGD opt(p.feats, torch::optim::SGDOptions(0.05).momentum(0.9));
  auto first = loss(p.feats, p.targets, 64, 64);
  const double initial = first.total.item<double>();  // about 333 with this seed, about 40 after 40 steps
  for (int step = 0; step < 40; ++step) {
    opt.zero_grad();
    loss(p.feats, p.targets, 64, 64).total.backward();
    opt.step();
  }
  auto final_out = loss(p.feats, p.targets, 64, 64);
  EXPECT_LT(final_out.total.item<double>(), 0.5 * initial)
      << "initial " << initial << " final " << final_out.total.item<double>();
  for (int i = 0; i < 3; ++i)
    EXPECT_LT(final_out.items[i].item<double>(), first.items[i].item<double>()) << "part " << i;
}

TEST(DetectionLoss, RejectsBadTargetsAndShapes) {
  DetectionLoss loss(3, {8, 16});
  auto feats = zero_feats(2, 3);
  EXPECT_THROW(loss(feats, torch::tensor({0.0, 3.0, 0.5, 0.5, 0.2, 0.2}).view({1, 6}), 32, 32),
               std::exception);
  EXPECT_THROW(loss(feats, torch::tensor({2.0, 0.0, 0.5, 0.5, 0.2, 0.2}).view({1, 6}), 32, 32),
               std::exception);
  EXPECT_THROW(loss(zero_feats(2, 4), torch::zeros({0, 6}), 32, 32), std::exception);
  EXPECT_THROW(loss({feats[0]}, torch::zeros({0, 6}), 32, 32), std::exception);
}

}  // namespace
}  // namespace yq::train
