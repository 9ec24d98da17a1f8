// prepare(): quantizable layer names, installed quantizers and their state-dict names, equality with
// the float model when every quantizer is off, closeness after calibration, QAT gradients and BN freezing,
// errors for dead patterns and double preparation.
#include "quant/prepare.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "core/error.h"
#include "model/checkpoint.h"
#include "quant/fused_fake_quant.h"
#include "quant/qat_modules.h"
#include "quant_test_util.h"

namespace yq::quant {
namespace {

using testing::flat;
using testing::images;
using testing::sqnr_db;
using testing::tiny_model;

// Named tolerance: 8-bit weights and activations on the tiny model after calibration.
constexpr double kMinSqnrDb8Bit = 20.0;

std::set<std::string> state_names(torch::nn::Module& m) {
  std::set<std::string> s;
  for (auto& [k, v] : model::named_state(m)) s.insert(k);
  return s;
}

bool contains(const std::vector<std::string>& v, const std::string& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

TEST(Prepare, QuantizableLayerNames) {
  auto m = tiny_model();
  auto names = quantizable_layers(*m);
  for (const char* n :
       {"model.0", "model.2.cv1", "model.2.m.0.cv1", "model.2.m.0.add", "model.2.cat", "model.9.cat",
        "model.11", "model.22.cv2.0.0", "model.22.cv2.0.2", "model.22.cv3.2.2"})
    EXPECT_TRUE(contains(names, n)) << n;
  EXPECT_FALSE(contains(names, "model.22.dfl.conv"));
  EXPECT_FALSE(contains(names, "model.10"));          // upsample: pass-through
  EXPECT_FALSE(contains(names, "model.12.m.0.add"));  // C2f without shortcut in the head
}

TEST(Prepare, InstallsQuantizersAndKeepsFloatNames) {
  auto m = tiny_model();
  const auto before = state_names(*m);
  auto rep = prepare(*m, QConfigMapping::load("quantization.yaml"));
  const auto after = state_names(*m);
  for (const auto& n : before) EXPECT_TRUE(after.count(n)) << n;
  for (const char* n :
       {"input_fq.scale", "model.0.weight_fq.scale", "model.0.act_fq.zero_point",
        "model.0.weight_fq.observer.min_val", "model.2.m.0.add.out_fq.scale", "model.11.out_fq.scale",
        "model.22.cv2.0.2.weight_fq.scale", "model.22.cv3.1.2.act_fq.scale"})
    EXPECT_TRUE(after.count(n)) << n;
  EXPECT_TRUE(is_prepared(*m));
  EXPECT_EQ(rep.float_layers, 0);
  EXPECT_GT(rep.weight_quantizers, 20);
  // Per-channel weight quantizers already hold one scale per output channel.
  EXPECT_EQ(m->named_buffers()["model.0.weight_fq.scale"].numel(),
            m->named_parameters()["model.0.conv.weight"].size(0));
  // The image: uint8 affine on target x86's 7-bit grid, scale 1/127, zero point 0, fixed (full range
  // 1/255 on other targets: tests/quant/target_test.cpp).
  auto qp = m->input_fq->qparams();
  EXPECT_FLOAT_EQ(qp.scale.item<float>(), float(1.0 / 127));
  EXPECT_EQ(qp.zero_point.item<int64_t>(), 0);
  enable_observers(*m, true);
  EXPECT_FALSE(m->input_fq->observer_enabled());
  EXPECT_TRUE(m->model->ptr(0)->as<model::ConvBnActImpl>()->act_fq->observer_enabled());
  EXPECT_THROW(prepare(*m, QConfigMapping::load("quantization.yaml")), Error);
}

TEST(Prepare, MixedPrecisionAndFloatLayers) {
  auto m = tiny_model();
  auto mapping = QConfigMapping::load("experiments/exp3_mixed_precision.yaml");
  auto rep = prepare(*m, mapping);
  const auto names = state_names(*m);
  EXPECT_FALSE(names.count("model.22.cv2.0.2.weight_fq.scale"));
  EXPECT_FALSE(names.count("model.22.cv3.2.2.act_fq.scale"));
  EXPECT_EQ(rep.float_layers, 6);
  auto* c = m->model->ptr(5)->as<model::ConvBnActImpl>();
  EXPECT_EQ(c->weight_fq->scheme().bits, 4);
  EXPECT_EQ(m->model->ptr(3)->as<model::ConvBnActImpl>()->weight_fq->scheme().bits, 8);
}

TEST(Prepare, PatternMatchingNothingIsAnError) {
  auto m = tiny_model();
  QConfigMapping mapping = QConfigMapping::load("quantization.yaml");
  mapping.add_rule("model.99.*", std::nullopt);
  try {
    prepare(*m, mapping);
    FAIL() << "expected UsageError";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("model.99.*"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(is_prepared(*m));
}

TEST(Prepare, AllQuantizersOffEqualsFloat) {
  auto ref = tiny_model();
  auto q = model::copy_model(*ref);
  prepare(*q, QConfigMapping::load("quantization.yaml"));
  enable_observers(*q, false);
  enable_fake_quant(*q, false);
  auto x = images(2, 64, 1);
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::equal(ref->forward(x), q->forward(x)));  // eval: running statistics
  ref->train();
  q->train();
  auto a = ref->forward_raw(x), b = q->forward_raw(x);  // train: batch statistics
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i], b[i]));
  // BN running statistics moved identically.
  EXPECT_TRUE(torch::equal(ref->named_buffers()["model.4.cv2.bn.running_var"],
                           q->named_buffers()["model.4.cv2.bn.running_var"]));
}

// Calibrates `q` (observers on, fake quant off) on a few batches, then freezes and turns fake quant on.
void calibrate(model::YoloV8Impl& q) {
  q.eval();
  enable_observers(q, true);
  enable_fake_quant(q, false);
  torch::NoGradGuard no_grad;
  for (int i = 0; i < 3; ++i) q.forward_raw(images(2, 64, 100 + i));
  freeze_quantizers(q);
  enable_fake_quant(q, true);
}

TEST(Prepare, FakeQuantStaysCloseAfterCalibration) {
  for (const char* cfg : {"quantization.yaml", "experiments/exp1_symmetric_quant.yaml"}) {
    SCOPED_TRACE(cfg);
    auto ref = tiny_model();
    auto q = model::copy_model(*ref);
    prepare(*q, QConfigMapping::load(cfg));
    calibrate(*q);
    torch::NoGradGuard no_grad;
    auto x = images(2, 64, 5);
    auto a = flat(ref->forward_raw(x)), b = flat(q->forward_raw(x));
    EXPECT_FALSE(torch::equal(a, b));
    const double db = sqnr_db(a, b);
    EXPECT_GT(db, kMinSqnrDb8Bit);
    // Only the input quantized: nearly lossless (the images are on the uint8 grid already).
    enable_fake_quant(*q, false);
    q->input_fq->enable_fake_quant(true);
    EXPECT_TRUE(torch::allclose(flat(q->forward_raw(x)), a, 1e-5, 1e-5));
  }
}

TEST(Prepare, QatTrainingStepAndFrozenBn) {
  auto q = tiny_model();
  prepare(*q, QConfigMapping::load("quantization.yaml"));
  q->train();
  auto x = images(2, 64, 9);
  auto loss = flat(q->forward_raw(x)).pow(2).mean();
  loss.backward();
  auto* c = q->model->ptr(1)->as<model::ConvBnActImpl>();
  ASSERT_TRUE(c->conv->weight.grad().defined());
  EXPECT_TRUE(torch::isfinite(c->conv->weight.grad()).all().item<bool>());
  EXPECT_GT(c->conv->weight.grad().abs().sum().item<double>(), 0);
  EXPECT_GT(c->bn->weight.grad().abs().sum().item<double>(), 0);
  // Frozen BN: a training forward leaves the running statistics alone.
  freeze_bn(*q);
  auto rv = c->bn->running_var.clone();
  q->forward_raw(x);
  EXPECT_TRUE(torch::equal(rv, c->bn->running_var));
  // Not frozen: they move.
  freeze_bn(*q, false);
  q->forward_raw(x);
  EXPECT_FALSE(torch::equal(rv, c->bn->running_var));
}

TEST(Prepare, TrainingFoldingMatchesEvalFoldingWithFrozenBn) {
  // With BN frozen, the training forward (running statistics) computes what eval computes.
  auto q = tiny_model();
  prepare(*q, QConfigMapping::load("quantization.yaml"));
  enable_observers(*q, false);
  auto x = images(1, 64, 3);
  torch::NoGradGuard no_grad;
  auto e = flat(q->forward_raw(x));
  freeze_bn(*q);
  q->train();
  auto t = flat(q->forward_raw(x));
  EXPECT_TRUE(torch::equal(e, t));
}

}  // namespace
}  // namespace yq::quant

namespace yq::quant {
namespace {

// QAT with observers on (moving-average min/max) and with them frozen: the fused pre_fq -> SiLU ->
// act_fq op (quant/fused_act.h) against the three LibTorch ops, on the whole model: outputs, the
// quantizers' ranges after two observing steps, and the gradients.
TEST(Prepare, FusedActivationTailMatchesTheThreeOps) {
  auto ref = testing::tiny_model();
  auto a = model::copy_model(*ref), b = model::copy_model(*ref);
  for (auto* m : {&a, &b}) {
    prepare(**m, QConfigMapping::load("quantization.yaml"));
    (*m)->train();
  }
  auto run = [](model::YoloV8& m, bool fused, const torch::Tensor& x) {
    set_fused_fake_quant(fused);
    m->zero_grad();
    auto out = m->forward_raw(x);
    torch::Tensor loss = torch::zeros({});
    for (const auto& o : out) loss = loss + o.pow(2).mean();
    loss.backward();
    set_fused_fake_quant(true);
    return out;
  };
  for (int step = 0; step < 3; ++step) {
    if (step == 2) {  // the last step with the ranges fixed
      freeze_quantizers(*a);
      freeze_quantizers(*b);
    }
    auto x = testing::images(2, 64, 10 + step);
    auto ya = run(a, true, x), yb = run(b, false, x);
    for (size_t i = 0; i < ya.size(); ++i)
      EXPECT_TRUE(torch::allclose(ya[i], yb[i], 1e-3, 1e-3))
          << "step " << step << " output " << i << ": " << (ya[i] - yb[i]).abs().max().item<float>();
    auto qa = named_quantizers(*a), qb = named_quantizers(*b);
    ASSERT_EQ(qa.size(), qb.size());
    for (size_t i = 0; i < qa.size(); ++i) {
      auto sa = qa[i].second->qparams().scale, sb = qb[i].second->qparams().scale;
      EXPECT_TRUE(torch::allclose(sa, sb, 1e-5, 0)) << qa[i].first << " step " << step;
    }
    auto pa = a->named_parameters(), pb = b->named_parameters();
    for (const auto& kv : pa) {
      const auto& ga = kv.value().grad();
      const auto& gb = pb[kv.key()].grad();
      if (!ga.defined()) continue;
      const double scale = gb.abs().max().item<double>() + 1e-12;
      EXPECT_LE((ga - gb).abs().max().item<double>() / scale, 2e-2) << kv.key() << " step " << step;
    }
  }
}

}  // namespace
}  // namespace yq::quant
