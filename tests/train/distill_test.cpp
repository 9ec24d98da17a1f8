// Distillation losses (train/distill.h): hand-worked values, zero when student == teacher and positive
// otherwise, and gradients only into the student.
#include "train/distill.h"

#include <gtest/gtest.h>

#include <cmath>

#include "core/error.h"
#include "model/yolov8.h"

namespace yq::train {
namespace {

// Named tolerance: float32 sums of a few terms.
constexpr double kTol = 1e-5;

torch::Tensor level(std::vector<float> v, int64_t channels) {
  return torch::tensor(v).reshape({1, channels, 1, 1});
}

TEST(DistillLoss, HandWorkedClassTerm) {
  // reg_max 1 (one bin per side: no box term), one class, one anchor. Student logit 0 (p 0.5), teacher
  // logit ln 4 (p 0.8): KL = 0.8 ln(0.8 / 0.5) + 0.2 ln(0.2 / 0.5) = 0.192745.
  auto s = level({0, 0, 0, 0, 0}, 5);
  auto t = level({0, 0, 0, 0, float(std::log(4.0))}, 5);
  EXPECT_NEAR(output_distill_loss({s}, {t}, 1).item<double>(), 0.192745, kTol);
  // T = 2: p_t = sigmoid(ln 2) = 2/3, KL = 2/3 ln(4/3) + 1/3 ln(2/3) = 0.056633, times T^2 = 4.
  EXPECT_NEAR(output_distill_loss({s}, {t}, 1, 2.0).item<double>(), 0.226532, kTol);
}

TEST(DistillLoss, HandWorkedBoxTerm) {
  // reg_max 2, the first side: teacher bins uniform, student p = (0.75, 0.25):
  // KL = 0.5 ln(0.5 / 0.75) + 0.5 ln(0.5 / 0.25) = 0.143841. Other sides and the class agree.
  auto t = level({0, 0, 0, 0, 0, 0, 0, 0, 1.5f}, 9);
  auto s = level({float(std::log(3.0)), 0, 0, 0, 0, 0, 0, 0, 1.5f}, 9);
  EXPECT_NEAR(output_distill_loss({s}, {t}, 2).item<double>(), 0.143841, kTol);
  // Averaged over anchors: a second level with one agreeing anchor halves it.
  auto t2 = level({1, 2, 3, 4, 5, 6, 7, 8, -2}, 9);
  EXPECT_NEAR(output_distill_loss({s, t2}, {t, t2}, 2).item<double>(), 0.143841 / 2, kTol);
}

TEST(DistillLoss, ZeroWhenEqualPositiveOtherwise) {
  torch::manual_seed(1);
  const int64_t nc = 3, reg_max = 16;
  std::vector<torch::Tensor> t, s, ft, fs;
  for (int64_t hw : {8, 4, 2}) {
    t.push_back(torch::randn({2, 4 * reg_max + nc, hw, hw}) * 3);
    ft.push_back(torch::randn({2, 5, hw, hw}));
  }
  EXPECT_EQ(output_distill_loss(t, t, reg_max).item<double>(), 0.0);
  EXPECT_EQ(output_distill_loss(t, t, reg_max, 3.0).item<double>(), 0.0);
  EXPECT_EQ(feature_distill_loss(ft, ft).item<double>(), 0.0);
  for (size_t i = 0; i < t.size(); ++i) {
    s.push_back(t[i] + 0.1 * torch::randn_like(t[i]));
    fs.push_back(ft[i] + 0.1 * torch::randn_like(ft[i]));
  }
  EXPECT_GT(output_distill_loss(s, t, reg_max).item<double>(), 1e-4);
  // MSE of N(0, 0.01) noise: about 0.01.
  EXPECT_NEAR(feature_distill_loss(fs, ft).item<double>(), 0.01, 0.002);
  // A shape mismatch (another nc) is a user error.
  auto other = t;
  other[0] = torch::randn({2, 4 * reg_max + nc + 1, 8, 8});
  EXPECT_THROW(output_distill_loss(other, t, reg_max), UsageError);
}

TEST(Distiller, ZeroForItsOwnCopyAndGradientsOnlyToTheStudent) {
  for (const char* kind : {"output", "feature"}) {
    torch::manual_seed(5);
    model::YoloV8 teacher(model::tiny_model_spec(3));
    model::YoloV8 student = model::copy_model(*teacher);
    student->eval();  // same BN behaviour as the teacher: identical outputs
    DistillOptions o;
    o.kind = kind;
    o.weight = 2.0;
    Distiller d(teacher, o);
    const auto x = torch::rand({2, 3, 64, 64});
    std::vector<torch::Tensor> neck;
    auto raw = student->forward_raw(x, &neck);
    EXPECT_EQ(d(x, raw, neck).item<double>(), 0.0) << kind;

    // A different student: positive, gradients reach the student and never the teacher.
    {
      torch::NoGradGuard ng;
      for (auto& p : student->parameters()) p.add_(0.05 * torch::randn_like(p));
    }
    student->zero_grad();
    raw = student->forward_raw(x, &neck);
    auto loss = d(x, raw, neck);
    EXPECT_GT(loss.item<double>(), 0.0) << kind;
    loss.backward();
    double gsum = 0;
    for (auto& p : student->parameters())
      if (p.grad().defined()) gsum += p.grad().abs().sum().item<double>();
    EXPECT_GT(gsum, 0.0) << kind;
    for (auto& p : teacher->parameters()) {
      EXPECT_FALSE(p.requires_grad());
      EXPECT_FALSE(p.grad().defined());
    }
    EXPECT_FALSE(teacher->is_training());
  }
}

TEST(Distiller, RejectsBadOptions) {
  model::YoloV8 teacher(model::tiny_model_spec(3));
  DistillOptions o;
  o.kind = "logits";
  EXPECT_THROW(Distiller(teacher, o), UsageError);
  o.kind = "output";
  o.weight = 0;
  EXPECT_THROW(Distiller(teacher, o), UsageError);
}

}  // namespace
}  // namespace yq::train
