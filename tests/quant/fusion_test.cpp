// Conv + BN folding: fused and unfused outputs agree in eval mode, per layer and for the whole model.
#include "quant/fusion.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "quant/prepare.h"
#include "quant_test_util.h"

namespace yq::quant {
namespace {

constexpr double kFusedTol = 1e-5;  // float32 reassociation of the folded product

TEST(Fusion, FoldMatchesConvThenBn) {
  torch::manual_seed(3);
  torch::nn::BatchNorm2d bn(torch::nn::BatchNorm2dOptions(6).eps(1e-3));
  torch::NoGradGuard no_grad;
  bn->weight.uniform_(0.5, 1.5), bn->bias.uniform_(-1, 1);
  bn->running_mean.uniform_(-1, 1), bn->running_var.uniform_(0.2, 3);
  bn->eval();
  auto w = torch::randn({6, 4, 3, 3}), cb = torch::randn({6}), x = torch::randn({2, 4, 8, 8});
  auto ref = bn->forward(torch::conv2d(x, w, cb, 1, 1));
  FusedConv f = fold_conv_bn(w, cb, *bn);
  EXPECT_TRUE(torch::allclose(torch::conv2d(x, f.weight, f.bias, 1, 1), ref, kFusedTol, kFusedTol));
  // Hand-worked channel 0: b' = beta + (c - mean) * gamma / sqrt(var + eps).
  const double g = bn->weight[0].item<double>() / std::sqrt(bn->running_var[0].item<double>() + 1e-3);
  EXPECT_NEAR(f.bias[0].item<double>(),
              bn->bias[0].item<double>() + (cb[0].item<double>() - bn->running_mean[0].item<double>()) * g,
              1e-5);
}

TEST(Fusion, FusedModelAgreesWithUnfused) {
  auto m = testing::tiny_model();
  auto x = testing::images(2, 64, 4);
  torch::NoGradGuard no_grad;
  auto a = m->forward_raw(x);
  set_fused(*m, true);
  auto b = m->forward_raw(x);
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_FALSE(torch::equal(a[i], b[i]));  // a different computation...
    EXPECT_TRUE(torch::allclose(a[i], b[i], kFusedTol, kFusedTol))
        << (a[i] - b[i]).abs().max().item<double>();  // ... with the same result
  }
  set_fused(*m, false);
  auto c = m->forward_raw(x);
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i], c[i]));
}

TEST(Fusion, FusedConvsPerLayer) {
  auto m = testing::tiny_model();
  auto convs = fused_convs(*m);
  int64_t n_conv = 0;
  for (const auto& mod : m->modules(false)) n_conv += mod->as<model::ConvBnActImpl>() ? 1 : 0;
  ASSERT_EQ(int64_t(convs.size()), n_conv + 2 * 3);
  EXPECT_EQ(convs.front().first, "model.0");
  EXPECT_EQ(convs.back().first, "model.22.cv3.2.2");
  EXPECT_FALSE(convs.back().second.silu);
  // Layer model.1 (3x3, stride 2) by itself.
  auto* c = m->model->ptr(1)->as<model::ConvBnActImpl>();
  const FusedConv* f = nullptr;
  for (const auto& [name, fc] : convs)
    if (name == "model.1") f = &fc;
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->stride, 2);
  EXPECT_EQ(f->padding, 1);
  auto x = torch::randn({1, c->options().c1(), 16, 16});
  torch::NoGradGuard no_grad;
  auto y = torch::silu(torch::conv2d(x, f->weight, f->bias, f->stride, f->padding));
  EXPECT_TRUE(torch::allclose(y, c->forward(x), kFusedTol, kFusedTol));
}

TEST(Fusion, RefusesAPreparedModel) {
  auto m = testing::tiny_model();
  prepare(*m, QConfigMapping::load("quantization.yaml"));
  EXPECT_THROW(set_fused(*m, true), Error);
}

}  // namespace
}  // namespace yq::quant
