// act_fq(silu(pre_fq(x))) by table against the three LibTorch ops it replaces: outputs and gradients.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "quant/fused_act.h"
#include "quant/fused_fake_quant.h"

namespace yq::quant {
namespace {

at::Tensor chain(const at::Tensor& x, const ActGrid& pre, const ActGrid& act) {
  auto y = at::fake_quantize_per_tensor_affine(x, pre.scale, pre.zero_point, pre.quant_min, pre.quant_max);
  return at::fake_quantize_per_tensor_affine(at::silu(y), act.scale, act.zero_point, act.quant_min,
                                             act.quant_max);
}

struct Case {
  ActGrid pre, act;
};

std::vector<Case> cases() {
  return {
      {{0.05f, 120, 0, 255}, {0.03f, 10, 0, 255}},       // uint8 affine (the CPU default)
      {{0.04f, 0, -128, 127}, {0.025f, 0, -128, 127}},   // int8 symmetric (TensorRT profile)
      {{0.06f, 0, -127, 127}, {0.5f, -100, -128, 127}},  // narrow range; act clamps SiLU's top
      {{0.3f, 7, 0, 15}, {0.2f, 2, 0, 15}},              // 4 bits
  };
}

TEST(FusedAct, ForwardEqualsTheThreeOps) {
  torch::manual_seed(41);
  for (const auto& c : cases()) {
    for (const auto& x : {torch::randn({2, 16, 9, 11}) * 4,
                          torch::randn({3, 8, 7, 5}).contiguous(at::MemoryFormat::ChannelsLast) * 6}) {
      auto got = fake_quant_silu_fake_quant(x, c.pre, c.act);
      auto want = chain(x, c.pre, c.act);
      EXPECT_EQ(got.strides(), x.strides());
      auto diff = (got - want).abs();
      // Equal except where LibTorch's SiLU took its scalar tail (one ulp -> at most one act step).
      EXPECT_LE(diff.max().item<float>(), c.act.scale * 1.001f);
      EXPECT_LE((diff > 0).sum().item<int64_t>(), int64_t(x.numel() / 500) + 2) << c.pre.scale;
    }
  }
}

TEST(FusedAct, GradientEqualsTheThreeOps) {
  torch::manual_seed(42);
  for (const auto& c : cases()) {
    auto x0 = torch::randn({2, 16, 13, 7}) * 4;
    auto g = torch::randn({2, 16, 13, 7});
    auto xa = x0.clone().requires_grad_(true), xb = x0.clone().requires_grad_(true);
    auto ya = fake_quant_silu_fake_quant(xa, c.pre, c.act);
    auto yb = chain(xb, c.pre, c.act);
    ya.backward(g);
    yb.backward(g);
    auto same = (ya - yb).abs() == 0;  // where the forwards agree, the gradients must too
    auto ga = xa.grad().masked_select(same), gb = xb.grad().masked_select(same);
    EXPECT_TRUE(torch::allclose(ga, gb, 1e-6, 1e-7)) << (ga - gb).abs().max().item<float>();
    // Straight-through: no gradient where the pre quantizer clamps.
    auto pre_q = (x0 / c.pre.scale).round() + c.pre.zero_point;
    auto clamped = (pre_q < c.pre.quant_min) | (pre_q > c.pre.quant_max);
    EXPECT_TRUE(xa.grad().masked_select(clamped).eq(0).all().item<bool>());
    EXPECT_GT(clamped.sum().item<int64_t>(), 0);
    EXPECT_GT(xa.grad().ne(0).sum().item<int64_t>(), x0.numel() / 4);
  }
}

TEST(FusedAct, WithoutGradAndOnOtherInputs) {
  torch::manual_seed(43);
  const Case c = cases()[0];
  auto x = torch::randn({1, 4, 6, 6}) * 3;
  {
    torch::NoGradGuard ng;
    EXPECT_LE(
        (fake_quant_silu_fake_quant(x, c.pre, c.act) - chain(x, c.pre, c.act)).abs().max().item<float>(),
        c.act.scale * 1.001f);
  }
  // A non-dense view goes through the three ops.
  auto v = x.transpose(2, 3).narrow(3, 0, 3);
  EXPECT_TRUE(torch::equal(fake_quant_silu_fake_quant(v, c.pre, c.act), chain(v, c.pre, c.act)));
}

}  // namespace
}  // namespace yq::quant
