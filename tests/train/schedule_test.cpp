#include "train/schedule.h"

#include <gtest/gtest.h>

#include <cmath>

#include "core/error.h"
#include "train/ema.h"

namespace yq::train {
namespace {

TEST(Schedule, LinearAndCosineFactors) {
  // lf(x) = (1 - x / epochs) * (1 - lrf) + lrf: 1 at the start, lrf at the end, linear between.
  EXPECT_DOUBLE_EQ(lr_factor(0, 100, 0.01, false), 1.0);
  EXPECT_DOUBLE_EQ(lr_factor(100, 100, 0.01, false), 0.01);
  EXPECT_NEAR(lr_factor(50, 100, 0.01, false), 0.505, 1e-12);
  // Cosine: 1 -> lrf with the midpoint at (1 + lrf) / 2.
  EXPECT_NEAR(lr_factor(0, 10, 0.1, true), 1.0, 1e-12);
  EXPECT_NEAR(lr_factor(5, 10, 0.1, true), 0.55, 1e-12);
  EXPECT_NEAR(lr_factor(10, 10, 0.1, true), 0.1, 1e-12);
}

TEST(Schedule, InterpClamps) {
  EXPECT_DOUBLE_EQ(interp(-1, 0, 100, 0.1, 0.01), 0.1);
  EXPECT_DOUBLE_EQ(interp(50, 0, 100, 0.0, 0.01), 0.005);
  EXPECT_DOUBLE_EQ(interp(200, 0, 100, 0.8, 0.937), 0.937);
}

TEST(Schedule, AutoOptimizerRule) {
  // 1000 images, batch 16 -> ceil(1000 / 64) = 16 iterations per epoch; 100 epochs = 1600 <= 10000: AdamW.
  auto a = resolve_optimizer("auto", 0.01, 0.937, 0.1, 1000, 16, 64, 100, 7);
  EXPECT_EQ(a.name, "AdamW");
  EXPECT_DOUBLE_EQ(a.lr0, 0.000909);  // round(0.002 * 5 / 11, 6)
  EXPECT_DOUBLE_EQ(a.momentum, 0.9);
  EXPECT_DOUBLE_EQ(a.warmup_bias_lr, 0.0);
  // 118287 images (COCO), 100 epochs: 1849 * 100 > 10000: SGD at lr 0.01, momentum 0.9.
  auto s = resolve_optimizer("auto", 0.02, 0.937, 0.1, 118287, 16, 64, 100, 80);
  EXPECT_EQ(s.name, "SGD");
  EXPECT_DOUBLE_EQ(s.lr0, 0.01);
  EXPECT_DOUBLE_EQ(s.momentum, 0.9);
  // An explicit choice keeps the user's values.
  auto e = resolve_optimizer("SGD", 0.02, 0.95, 0.05, 10, 16, 64, 1, 7);
  EXPECT_EQ(e.name, "SGD");
  EXPECT_DOUBLE_EQ(e.lr0, 0.02);
  EXPECT_THROW(resolve_optimizer("Adam", 0.01, 0.9, 0.1, 10, 16, 64, 1, 7), UsageError);
}

TEST(Schedule, ParameterGroupsSplitBiasBnWeights) {
  model::YoloV8 m(model::tiny_model_spec(7));
  int64_t bias = 0, bn = 0, w = 0;
  for (const auto& p : m->named_parameters(true)) {
    if (!p.value().requires_grad()) continue;
    const auto& n = p.key();
    if (n.size() > 5 && n.substr(n.size() - 5) == ".bias")
      ++bias;
    else if (n.size() > 9 && n.substr(n.size() - 9) == "bn.weight")
      ++bn;
    else
      ++w;
  }
  for (const char* name : {"SGD", "AdamW"}) {
    auto opt = build_optimizer(m, {name, 0.01, 0.9, 0.1}, 5e-4);
    auto& g = opt->param_groups();
    ASSERT_EQ(g.size(), 3u) << name;
    EXPECT_EQ(int64_t(g[0].params().size()), bias) << name;
    EXPECT_EQ(int64_t(g[1].params().size()), bn) << name;
    EXPECT_EQ(int64_t(g[2].params().size()), w) << name;
    // The frozen DFL weights are in no group.
    EXPECT_EQ(int64_t(g[0].params().size() + g[1].params().size() + g[2].params().size()),
              int64_t(m->parameters().size()) - 1);
    set_group_lr(g[1], 0.123);
    EXPECT_DOUBLE_EQ(group_lr(g[1]), 0.123);
    set_group_momentum(g[2], 0.8);
  }
  EXPECT_GT(bias, 0);
  EXPECT_EQ(bn, 57);  // one BatchNorm per Conv of YOLOv8 (any width)
}

TEST(Ema, DecayRampAndUpdateMath) {
  torch::manual_seed(0);
  model::YoloV8 m(model::tiny_model_spec(3));
  ModelEMA ema(m);
  // The EMA starts as an exact copy.
  auto a = m->named_parameters(true)["model.0.conv.weight"];
  auto e = ema.model()->named_parameters(true)["model.0.conv.weight"];
  EXPECT_TRUE(torch::equal(a, e));
  // Change the model, update once: d = 0.9999 * (1 - exp(-1 / 2000)).
  torch::Tensor before = e.clone();
  {
    torch::NoGradGuard ng;
    a.add_(1.0);
  }
  ema.update(m);
  double d = 0.9999 * (1 - std::exp(-1.0 / 2000));
  EXPECT_NEAR(ema.current_decay(), d, 1e-15);
  EXPECT_TRUE(torch::allclose(e, before * d + a * (1 - d), 1e-6, 1e-6));
  // Late in training the decay approaches 0.9999.
  ema.set_updates(100000);
  EXPECT_NEAR(ema.current_decay(), 0.9999, 1e-9);
}

}  // namespace
}  // namespace yq::train
