// FakeQuantize: forward against the reference, the switches, lazy qparams, set_qparams / freeze,
// gradients (straight-through inside the range, zero outside; LSQ's scale gets one), save / load / clone.
#include "quant/fake_quantize.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <sstream>

#include "core/error.h"

namespace yq::quant {
namespace {

QuantSpec spec(const std::string& observer, QScheme scheme, bool learnable = false) {
  QuantSpec s;
  s.observer = observer;
  s.scheme = scheme;
  s.learnable = learnable;
  return s;
}

QScheme uint8_affine_per_channel(int64_t axis) {
  QScheme s = QScheme::uint8_affine();
  s.per_channel = true;
  s.axis = axis;
  return s;
}

TEST(FakeQuantize, ForwardMatchesReference) {
  torch::manual_seed(11);
  const QuantSpec specs[] = {
      spec("minmax", QScheme::uint8_affine()), spec("minmax", QScheme::int8_symmetric()),
      spec("per_channel_minmax", QScheme::int8_symmetric_per_channel(0)),
      spec("per_channel_minmax", uint8_affine_per_channel(1)), spec("histogram", QScheme::uint8_affine())};
  for (const QuantSpec& sp : specs) {
    SCOPED_TRACE(sp.to_string());
    FakeQuantize fq(sp);
    torch::Tensor x = torch::randn({3, 4, 5}) * 3;
    torch::Tensor y = fq(x);
    QParams qp = fq->qparams();
    EXPECT_TRUE(torch::equal(qp.scale, fq->observer().qparams().scale));
    EXPECT_TRUE(torch::equal(y, fake_quantize_reference(x, qp, sp.scheme)));
    EXPECT_FALSE(torch::equal(y, x));
  }
}

TEST(FakeQuantize, SwitchesAndLazyQparams) {
  FakeQuantize fq(spec("minmax", QScheme::uint8_affine()));
  EXPECT_TRUE(fq->observer_enabled());
  EXPECT_TRUE(fq->fake_quant_enabled());
  // Calibration: observe only; output is the input itself.
  fq->enable_fake_quant(false);
  torch::Tensor a = torch::linspace(-1, 3, 50);
  EXPECT_TRUE(fq(a).is_same(a));
  EXPECT_EQ(fq->scale().item<float>(), 1.0f) << "qparams are computed lazily while fake quant is off";
  fq(torch::linspace(-2, 1, 50));
  // Turning the observer off brings the qparams up to date.
  fq->enable_observer(false);
  EXPECT_EQ(fq->scale().item<float>(), 5.0f / 255.0f);
  EXPECT_EQ(fq->zero_point().item<int>(), 102);  // 0 - round(-2 / (5 / 255)) = round(102.0)
  // Observer off: new data does not move the range.
  fq->enable_fake_quant(true);
  fq(torch::full({4}, 100.0f));
  EXPECT_EQ(fq->observer().max_val().item<float>(), 3.0f);
  EXPECT_EQ(fq->qparams().zero_point.item<int64_t>(), 102);
  // Saturation at the top of the range.
  EXPECT_FLOAT_EQ(fq(torch::full({1}, 100.0f)).item<float>(), (255 - 102) * (5.0f / 255.0f));
}

TEST(FakeQuantize, SetQparamsFreezes) {
  FakeQuantize fq(spec("moving_average_minmax", QScheme::uint8_affine()));
  fq->set_qparams(1.0 / 255, 0);  // the image input quantizer: pixels / 255 are exact
  EXPECT_FALSE(fq->observer_enabled());
  torch::Tensor pixels = torch::arange(256, torch::kFloat) / 255;
  EXPECT_TRUE(torch::allclose(fq(pixels), pixels, 0, 1e-7));
  EXPECT_FALSE(fq->observer().has_observed());
  // Per-channel qparams from tensors; zero points are rounded.
  FakeQuantize pc(spec("per_channel_minmax", uint8_affine_per_channel(0)));
  pc->set_qparams(torch::tensor({0.1f, 0.2f}), torch::tensor({10.4, 20.6}));
  QParams qp = pc->qparams();
  EXPECT_TRUE(torch::equal(qp.zero_point, torch::tensor({10, 21}, torch::kLong)));
  EXPECT_EQ(pc(torch::zeros({2, 3})).sum().item<float>(), 0.0f);
  EXPECT_THROW(pc(torch::zeros({3, 3})), Error);  // 3 channels, 2 scales
  EXPECT_THROW(fq->set_qparams(-1.0, 0), Error);
}

TEST(FakeQuantize, FreezeUsesTheObservedRange) {
  FakeQuantize fq(spec("histogram", QScheme::uint8_affine()));
  fq->enable_fake_quant(false);
  fq(torch::randn({1000}));
  fq->freeze();
  EXPECT_FALSE(fq->observer_enabled());
  EXPECT_TRUE(torch::equal(fq->qparams().scale, fq->observer().qparams().scale));
}

TEST(FakeQuantizeGrad, StraightThroughInsideZeroOutside) {
  // int8 symmetric, scale 0.1: the range is [-12.8, 12.7].
  FakeQuantize fq(spec("minmax", QScheme::int8_symmetric()));
  fq->set_qparams(0.1, 0);
  torch::Tensor x =
      torch::tensor({-20.0f, -12.8f, -3.04f, 0.0f, 5.55f, 12.7f, 12.76f, 30.0f}, torch::requires_grad());
  fq(x).sum().backward();
  EXPECT_TRUE(torch::equal(x.grad(), torch::tensor({0.0f, 1.0f, 1.0f, 1.0f, 1.0f, 1.0f, 0.0f, 0.0f})))
      << x.grad();
}

TEST(FakeQuantizeGrad, PerChannelStraightThrough) {
  FakeQuantize fq(spec("per_channel_minmax", QScheme::int8_symmetric_per_channel(0)));
  fq->set_qparams(torch::tensor({0.01f, 1.0f}), torch::zeros({2}));
  // Channel 0 covers [-1.28, 1.27], channel 1 [-128, 127].
  torch::Tensor x = torch::tensor({{0.5f, 5.0f}, {0.5f, 5.0f}}, torch::requires_grad());
  fq(x).sum().backward();
  EXPECT_TRUE(torch::equal(x.grad(), torch::tensor({{1.0f, 0.0f}, {1.0f, 1.0f}}))) << x.grad();
}

TEST(FakeQuantizeLsq, InitialisedFromObserverAndScaleLearns) {
  torch::manual_seed(5);
  FakeQuantize fq(spec("minmax", QScheme::uint8_affine(), /*learnable=*/true));
  ASSERT_TRUE(fq->learnable());
  EXPECT_EQ(fq->named_parameters().size(), 2u);  // scale and zero point
  torch::Tensor calib = torch::randn({200}) * 2;
  fq(calib);  // observer on: scale / zero point copied from the observer
  EXPECT_TRUE(torch::equal(fq->qparams().scale, fq->observer().qparams().scale));
  fq->enable_observer(false);
  const float scale0 = fq->scale().item<float>();
  torch::Tensor x = (torch::randn({64}) * 3).requires_grad_();
  torch::Tensor y = fq(x);
  EXPECT_TRUE(torch::allclose(y, fake_quantize_reference(x, fq->qparams(), fq->scheme())));
  (y - x.detach() * 0.5).pow(2).sum().backward();
  ASSERT_TRUE(fq->scale().grad().defined());
  EXPECT_NE(fq->scale().grad().item<float>(), 0.0f);
  ASSERT_TRUE(fq->zero_point().grad().defined());
  // x: straight-through inside the learned range, zero outside.
  QParams qp = fq->qparams();
  const float s = qp.scale.item<float>();
  const int64_t z = qp.zero_point.item<int64_t>();
  torch::Tensor inside = (x.detach() >= (0 - z) * s) & (x.detach() <= (255 - z) * s);
  EXPECT_TRUE(inside.logical_not().any().item<bool>()) << "test data should leave the range somewhere";
  EXPECT_TRUE(torch::equal(x.grad() != 0, inside));
  // One optimizer step moves the scale.
  torch::optim::SGD opt(fq->parameters(), 0.01);
  opt.step();
  EXPECT_NE(fq->scale().item<float>(), scale0);
  // freeze() stops learning.
  fq->freeze();
  EXPECT_FALSE(fq->scale().requires_grad());
}

TEST(FakeQuantizeLsq, SymmetricPerChannel) {
  FakeQuantize fq(spec("per_channel_minmax", QScheme::int8_symmetric_per_channel(0), /*learnable=*/true));
  EXPECT_EQ(fq->named_parameters().size(), 1u) << "a symmetric zero point is fixed";
  torch::Tensor w = torch::randn({4, 3, 3, 3});
  fq(w);
  fq->enable_observer(false);
  EXPECT_EQ(fq->scale().numel(), 4);
  fq(w).pow(2).sum().backward();
  ASSERT_TRUE(fq->scale().grad().defined());
  EXPECT_EQ(fq->scale().grad().numel(), 4);
  EXPECT_TRUE((fq->scale().grad() != 0).all().item<bool>());
}

TEST(FakeQuantize, SaveLoadAndClone) {
  torch::manual_seed(3);
  FakeQuantize fq(spec("moving_average_per_channel_minmax", QScheme::int8_symmetric_per_channel(0)));
  fq(torch::randn({3, 8}));
  fq->enable_observer(false);
  std::stringstream ss;
  torch::save(fq, ss);
  FakeQuantize loaded(spec("moving_average_per_channel_minmax", QScheme::int8_symmetric_per_channel(0)));
  torch::load(loaded, ss);
  EXPECT_FALSE(loaded->observer_enabled());
  EXPECT_TRUE(torch::equal(loaded->scale(), fq->scale()));
  EXPECT_TRUE(torch::equal(loaded->observer().max_val(), fq->observer().max_val()));
  torch::Tensor x = torch::randn({3, 8});
  EXPECT_TRUE(torch::equal(loaded(x), fq(x)));

  auto copy = std::dynamic_pointer_cast<FakeQuantizeImpl>(fq->clone());
  ASSERT_TRUE(copy);
  EXPECT_TRUE(torch::equal(copy->scale(), fq->scale()));
  EXPECT_TRUE(torch::equal(copy->observer().min_val(), fq->observer().min_val()));
  EXPECT_FALSE(copy->observer_enabled());
  fq->enable_observer(true);
  fq(torch::full({3, 8}, 50.0f));
  EXPECT_LT(copy->observer().max_val().max().item<float>(), 50.0f) << "clone shares observer state";
  // The symmetric scale may grow or shrink per channel (the moving min moves too); it must differ.
  EXPECT_FALSE(torch::equal(copy->scale(), fq->scale())) << "clone shares scale";
}

// A module holding a quantizer clones through torch::nn::Cloneable (as a QAT model will).
struct HolderImpl : torch::nn::Cloneable<HolderImpl> {
  FakeQuantize fq{nullptr};
  void reset() override {
    fq = register_module("fq", FakeQuantize(spec("histogram", QScheme::uint8_affine())));
  }
  HolderImpl() { reset(); }
};

TEST(FakeQuantize, ClonesInsideACloneableParent) {
  auto holder = std::make_shared<HolderImpl>();
  holder->fq(torch::randn({100}));
  auto copy = std::dynamic_pointer_cast<HolderImpl>(holder->clone());
  ASSERT_TRUE(copy);
  auto* h1 = dynamic_cast<HistogramObserverImpl*>(&holder->fq->observer());
  auto* h2 = dynamic_cast<HistogramObserverImpl*>(&copy->fq->observer());
  ASSERT_TRUE(h1 && h2);
  EXPECT_TRUE(torch::equal(h1->histogram(), h2->histogram()));
  EXPECT_TRUE(torch::equal(copy->fq->scale(), holder->fq->scale()));
  EXPECT_NE(h1->histogram().data_ptr(), h2->histogram().data_ptr());
}

}  // namespace
}  // namespace yq::quant
