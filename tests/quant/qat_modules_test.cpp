// ConvBnAct's QAT forward with batch statistics (quant/qat_modules.h) against the recipe written out:
// silu(BN_batch(conv(x, fq_w(W * g)) / g)); the module computes conv(x, fq_w(W * g) / g), the same
// math with one pass less over the activation, so the two agree to float rounding, values and gradients.
#include "quant/qat_modules.h"

#include <gtest/gtest.h>

#include "quant/prepare.h"
#include "quant_test_util.h"

namespace yq::quant {
namespace {

using testing::tiny_model;

// Named tolerance: float32 convolutions of a few hundred terms, different summation order.
constexpr double kRelTol = 1e-4;

TEST(QatModules, BatchStatisticsFoldingMatchesTheRecipe) {
  auto m = tiny_model();
  prepare(*m, QConfigMapping::load("quantization.yaml"));
  freeze_quantizers(*m);
  auto* c = m->model->ptr(1)->as<model::ConvBnActImpl>();  // 3x3, stride 2
  ASSERT_NE(c, nullptr);
  c->pre_fq->enable_fake_quant(false);
  c->act_fq->enable_fake_quant(false);
  c->train();
  torch::manual_seed(4);
  const auto x = torch::randn({2, c->options().c1(), 16, 16});
  auto& bn = *c->bn;
  const auto eps = bn.options.eps();

  // The recipe, on copies of the running statistics (a training BN updates them).
  auto w1 = c->conv->weight.detach().clone().requires_grad_(true);
  auto gamma1 = bn.weight.detach().clone().requires_grad_(true);
  auto g = (gamma1 / torch::sqrt(bn.running_var.clone() + eps)).view({-1, 1, 1, 1});
  const auto qp = c->weight_fq->qparams();
  auto wq = at::fake_quantize_per_channel_affine(w1 * g, qp.scale, qp.zero_point.to(torch::kInt), 0,
                                                 c->weight_fq->quant_min(), c->weight_fq->quant_max());
  auto y = torch::conv2d(x, wq, {}, {2, 2}, {1, 1}) / g.view({1, -1, 1, 1});
  auto ref = torch::silu(torch::batch_norm(y, gamma1, bn.bias.detach(), bn.running_mean.clone(),
                                           bn.running_var.clone(), true, 0.03, eps, false));
  const auto upstream = torch::randn_like(ref);
  (ref * upstream).sum().backward();

  c->zero_grad();
  auto out = c->forward(x);
  (out * upstream).sum().backward();

  auto rel = [](const torch::Tensor& a, const torch::Tensor& b) {
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-12)).item<double>();
  };
  EXPECT_LT(rel(out.detach(), ref.detach()), kRelTol);
  EXPECT_LT(rel(c->conv->weight.grad(), w1.grad()), kRelTol);
  EXPECT_LT(rel(bn.weight.grad(), gamma1.grad()), kRelTol);
}

}  // namespace
}  // namespace yq::quant
