// fake_quantize_per_tensor against LibTorch's at::fake_quantize_per_tensor_affine: outputs, masks and
// gradients bit for bit (signed zeros included) over random shapes, grids and scales, round-half-to-even
// ties, saturation, non-finite inputs, memory layouts and the fallbacks.
#include "quant/fused_fake_quant.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>
#include <vector>

#include "core/error.h"
#include "core/rng.h"

namespace yq::quant {
namespace {

struct Grid {
  int64_t qmin, qmax;
};

// uint8, int8, int8 narrow, 4-bit unsigned, 2-bit signed.
const Grid kGrids[] = {{0, 255}, {-128, 127}, {-127, 127}, {0, 15}, {-2, 1}};

// Bitwise equality of two float tensors (so -0.0 != +0.0), same shape.
::testing::AssertionResult same_bits(const torch::Tensor& a, const torch::Tensor& b) {
  if (a.sizes() != b.sizes()) return ::testing::AssertionFailure() << "shapes differ";
  torch::Tensor ai = a.contiguous().view(torch::kInt), bi = b.contiguous().view(torch::kInt);
  torch::Tensor diff = ai.ne(bi);
  const int64_t n = diff.sum().item<int64_t>();
  if (n == 0) return ::testing::AssertionSuccess();
  const int64_t i = diff.reshape({-1}).nonzero()[0][0].item<int64_t>();
  return ::testing::AssertionFailure() << n << " of " << a.numel() << " elements differ, first at " << i
                                       << ": " << a.contiguous().reshape({-1})[i].item<float>() << " vs "
                                       << b.contiguous().reshape({-1})[i].item<float>();
}

// Values that exercise the rounding: random ones, exact ties (k + 0.5 steps from the zero point),
// values just inside and outside the grid.
torch::Tensor test_values(int64_t n, float scale, int64_t zp, const Grid& g, Rng& rng) {
  std::vector<float> v(n);
  for (int64_t i = 0; i < n; ++i) {
    const double u = rng.uniform();
    const double span = double(g.qmax - g.qmin + 8);
    const double steps = (rng.uniform() - 0.5) * span * 1.5;
    if (u < 0.5)
      v[i] = float(steps * scale);
    else if (u < 0.8)
      v[i] = float((std::floor(steps) + 0.5) * scale);  // a tie, as nearly as float allows
    else
      v[i] = float(double(rng.randint(g.qmin - 3 - zp, g.qmax + 3 - zp)) * scale);
  }
  return torch::from_blob(v.data(), {n}, torch::kFloat).clone();
}

TEST(FusedFakeQuant, ForwardAndMaskMatchLibTorchBitForBit) {
  Rng rng(2024);
  const int64_t sizes[] = {1, 7, 33, 1000, 100003};  // the last spans several parallel chunks
  for (const Grid& g : kGrids) {
    for (int64_t n : sizes) {
      for (int rep = 0; rep < 3; ++rep) {
        const float scale = float(std::exp((rng.uniform() - 0.5) * 12.0));  // e^-6 .. e^6
        const int64_t zp = rng.randint(g.qmin, g.qmax);
        SCOPED_TRACE(::testing::Message() << "grid [" << g.qmin << ", " << g.qmax << "] n " << n << " scale "
                                          << scale << " zero point " << zp);
        torch::Tensor x = test_values(n, scale, zp, g, rng);
        auto [ref, ref_mask] = at::fake_quantize_per_tensor_affine_cachemask(x, scale, zp, g.qmin, g.qmax);
        torch::Tensor mask;
        torch::Tensor y = fake_quantize_per_tensor_forward(x, scale, zp, g.qmin, g.qmax, &mask);
        EXPECT_TRUE(same_bits(y, ref));
        EXPECT_TRUE(torch::equal(mask, ref_mask));
        EXPECT_TRUE(same_bits(fake_quantize_per_tensor(x, scale, zp, g.qmin, g.qmax), ref));
      }
    }
  }
}

TEST(FusedFakeQuant, HandWorkedTiesAndSaturation) {
  // scale 0.5, uint8 affine, zero point 10: x / 0.5 = 1.25 -> 1, 1.5 -> 2 (even), 2.5 -> 2, -0.5 -> -0,
  // -1.5 -> -2; q = 10 + that, clamped to [0, 255].
  const std::vector<float> xs = {0.625f, 0.75f, 1.25f, -0.25f, -0.75f, -5.0f, -5.5f, 122.5f, 123.0f, 200.0f};
  const std::vector<float> want = {0.5f, 1.0f, 1.0f, -0.0f, -1.0f, -5.0f, -5.0f, 122.5f, 122.5f, 122.5f};
  const std::vector<bool> in_range = {true, true, true, true, true, true, false, true, false, false};
  torch::Tensor x = torch::tensor(xs);
  torch::Tensor mask;
  torch::Tensor y = fake_quantize_per_tensor_forward(x, 0.5f, 10, 0, 255, &mask);
  for (size_t i = 0; i < xs.size(); ++i) {
    SCOPED_TRACE(::testing::Message() << "x " << xs[i]);
    EXPECT_EQ(y[i].item<float>(), want[i]);
    EXPECT_EQ(mask[i].item<bool>(), in_range[i]);
  }
  EXPECT_TRUE(same_bits(y, at::fake_quantize_per_tensor_affine(x, 0.5, 10, 0, 255)));
}

TEST(FusedFakeQuant, ExtremeAndNonFiniteInputsMatchLibTorch) {
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  torch::Tensor x = torch::tensor({0.0f, -0.0f, 1e-30f, -1e-30f, 4194304.5f, 8388609.0f, -8388609.0f, 3e18f,
                                   -3e18f, 1e19f, -1e19f, 1e30f, -1e30f, inf, -inf, nan});
  for (const Grid& g : kGrids) {
    for (float scale : {1.0f, 0.01f, 3.0f}) {
      const int64_t zp = (g.qmin + g.qmax) / 2;
      SCOPED_TRACE(::testing::Message() << "grid [" << g.qmin << ", " << g.qmax << "] scale " << scale);
      torch::Tensor mask;
      torch::Tensor y = fake_quantize_per_tensor_forward(x, scale, zp, g.qmin, g.qmax, &mask);
#if defined(__x86_64__)
      // NaN and values beyond int64 follow x86's float -> int64 conversion inside LibTorch's kernel.
      auto [ref, ref_mask] = at::fake_quantize_per_tensor_affine_cachemask(x, scale, zp, g.qmin, g.qmax);
      EXPECT_TRUE(same_bits(y, ref));
      EXPECT_TRUE(torch::equal(mask, ref_mask));
#else
      auto [ref, ref_mask] =
          at::fake_quantize_per_tensor_affine_cachemask(x.slice(0, 0, 9), scale, zp, g.qmin, g.qmax);
      EXPECT_TRUE(same_bits(y.slice(0, 0, 9), ref));
      EXPECT_TRUE(torch::equal(mask.slice(0, 0, 9), ref_mask));
#endif
      EXPECT_FALSE(torch::isnan(y).any().item<bool>());
    }
  }
}

TEST(FusedFakeQuant, GradientMatchesLibTorchBitForBit) {
  Rng rng(7);
  torch::manual_seed(7);
  for (const Grid& g : kGrids) {
    const float scale = 0.05f;
    const int64_t zp = (g.qmin + g.qmax + 1) / 2;
    SCOPED_TRACE(::testing::Message() << "grid [" << g.qmin << ", " << g.qmax << "]");
    torch::Tensor x0 = test_values(7 * 73 * 137, scale, zp, g, rng).reshape({7, 73, 137});
    torch::Tensor up = torch::randn({7, 73, 137});  // negative upstream gradients give -0.0 where masked
    torch::Tensor xa = x0.clone().requires_grad_(true), xb = x0.clone().requires_grad_(true);
    torch::Tensor ya = fake_quantize_per_tensor(xa, scale, zp, g.qmin, g.qmax);
    torch::Tensor yb = at::fake_quantize_per_tensor_affine(xb, scale, zp, g.qmin, g.qmax);
    EXPECT_TRUE(same_bits(ya, yb));
    ASSERT_TRUE(ya.requires_grad());
    (ya * up).sum().backward();
    (yb * up).sum().backward();
    EXPECT_TRUE(same_bits(xa.grad(), xb.grad()));
    // Straight-through: the gradient is zero exactly where the value saturated.
    torch::Tensor clipped = xa.grad().eq(0) & up.ne(0);
    EXPECT_GT(clipped.sum().item<int64_t>(), 0);
    EXPECT_LT(clipped.sum().item<int64_t>(), x0.numel());
  }
}

TEST(FusedFakeQuant, LayoutsAndFallbacksMatchLibTorch) {
  torch::manual_seed(3);
  const double scale = 0.03;
  const int64_t zp = 100;
  torch::Tensor base = torch::randn({2, 6, 9, 11}) * 3;
  // Channels-last: the output keeps the input's strides.
  torch::Tensor cl = base.contiguous(torch::MemoryFormat::ChannelsLast).requires_grad_(true);
  torch::Tensor y = fake_quantize_per_tensor(cl, float(scale), zp, 0, 255);
  EXPECT_EQ(y.strides(), cl.strides());
  EXPECT_TRUE(same_bits(y, at::fake_quantize_per_tensor_affine(base, scale, zp, 0, 255)));
  // A contiguous upstream gradient for a channels-last output: the mask's layout differs (fallback).
  torch::Tensor up = torch::randn({2, 6, 9, 11});
  (y * up).sum().backward();
  torch::Tensor xr = base.clone().requires_grad_(true);
  (at::fake_quantize_per_tensor_affine(xr, scale, zp, 0, 255) * up).sum().backward();
  EXPECT_TRUE(same_bits(cl.grad(), xr.grad()));
  // Not dense (a strided slice) and another dtype: LibTorch's kernel.
  torch::Tensor sl = base.slice(3, 0, 11, 2);
  EXPECT_TRUE(same_bits(fake_quantize_per_tensor(sl, float(scale), zp, 0, 255),
                        at::fake_quantize_per_tensor_affine(sl.contiguous(), scale, zp, 0, 255)));
  torch::Tensor d = base.to(torch::kDouble);
  EXPECT_EQ(fake_quantize_per_tensor(d, float(scale), zp, 0, 255).scalar_type(), torch::kDouble);
  // No gradient wanted: no graph.
  {
    torch::NoGradGuard no_grad;
    EXPECT_FALSE(fake_quantize_per_tensor(cl, float(scale), zp, 0, 255).requires_grad());
  }
  EXPECT_FALSE(fake_quantize_per_tensor(base, float(scale), zp, 0, 255).requires_grad());
}

TEST(FusedFakeQuant, RejectsBadQParams) {
  torch::Tensor x = torch::zeros({4});
  EXPECT_THROW(fake_quantize_per_tensor(x, 0.0f, 0, 0, 255), Error);
  EXPECT_THROW(fake_quantize_per_tensor(x, 1.0f, 300, 0, 255), Error);
}

}  // namespace
}  // namespace yq::quant
