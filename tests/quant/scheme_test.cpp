// Hand-worked quantization math (STYLE.md #9): ranges, qparams formulas, round half to even,
// saturation at quant_min / quant_max, zero points; and the plain-loop reference against ATen's kernels.
#include "quant/scheme.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>

#include "core/error.h"

namespace yq::quant {
namespace {

QScheme make(int bits, bool is_signed, bool symmetric, bool narrow = false) {
  QScheme s;
  s.bits = bits;
  s.is_signed = is_signed;
  s.symmetric = symmetric;
  s.narrow_range = narrow;
  return s;
}

TEST(QScheme, IntegerRanges) {
  EXPECT_EQ(make(8, true, true).quant_min(), -128);
  EXPECT_EQ(make(8, true, true).quant_max(), 127);
  EXPECT_EQ(make(8, true, true, true).quant_min(), -127);
  EXPECT_EQ(make(8, true, true, true).quant_max(), 127);
  EXPECT_EQ(make(8, false, false).quant_min(), 0);
  EXPECT_EQ(make(8, false, false).quant_max(), 255);
  EXPECT_EQ(make(8, false, false, true).quant_min(), 1);
  EXPECT_EQ(make(4, true, true).quant_min(), -8);
  EXPECT_EQ(make(4, true, true).quant_max(), 7);
  EXPECT_EQ(make(4, true, true, true).quant_min(), -7);
  EXPECT_EQ(make(2, false, false).quant_max(), 3);
  EXPECT_EQ(make(7, false, false).quant_max(), 127);  // PyTorch's quint8 reduce_range
  EXPECT_EQ(make(7, true, false).quant_min(), -64);   // qint8 reduce_range
  EXPECT_EQ(make(8, true, false).levels(), 256);
}

TEST(QScheme, SymmetricZeroPoints) {
  EXPECT_EQ(make(8, true, true).symmetric_zero_point(), 0);
  EXPECT_EQ(make(8, false, true).symmetric_zero_point(), 128);        // PyTorch's quint8 default
  EXPECT_EQ(make(4, false, true).symmetric_zero_point(), 7);          // (0 + 15) // 2, customized range
  EXPECT_EQ(make(8, false, true, true).symmetric_zero_point(), 128);  // (1 + 255) // 2
}

TEST(QScheme, ValidateRejectsBadFields) {
  EXPECT_THROW(make(1, true, true).validate(), UsageError);
  EXPECT_THROW(make(9, true, true).validate(), UsageError);
  QScheme s;
  s.axis = -1;
  EXPECT_THROW(s.validate(), UsageError);
  EXPECT_NO_THROW(QScheme::int8_symmetric_per_channel(1).validate());
  EXPECT_EQ(QScheme::int8_symmetric_per_channel(1).to_string(), "int8 symmetric per-channel(axis 1)");
  EXPECT_EQ(make(4, false, false, true).to_string(), "uint4 affine per-tensor narrow");
}

TEST(Qparams, AsymmetricHandWorked) {
  // [-1, 3] on uint8: scale = 4 / 255, zero point = 0 - round(-1 / scale) = round(63.75) = 64.
  auto qp = calculate_qparams(-1.0f, 3.0f, make(8, false, false));
  EXPECT_EQ(qp.scale, 4.0f / 255.0f);
  EXPECT_EQ(qp.zero_point, 64);
  // int8 affine: -128 - round(-63.75) = -128 + 64 = -64.
  EXPECT_EQ(calculate_qparams(-1.0f, 3.0f, make(8, true, false)).zero_point, -64);
  // A range without 0 is widened to hold it: [2, 6] -> [0, 6]; [-6, -2] -> [-6, 0].
  auto pos = calculate_qparams(2.0f, 6.0f, make(8, false, false));
  EXPECT_EQ(pos.scale, 6.0f / 255.0f);
  EXPECT_EQ(pos.zero_point, 0);
  auto neg = calculate_qparams(-6.0f, -2.0f, make(8, false, false));
  EXPECT_EQ(neg.scale, 6.0f / 255.0f);
  EXPECT_EQ(neg.zero_point, 255);
}

TEST(Qparams, SymmetricHandWorked) {
  // max(|-1|, 3) / ((127 - -128) / 2) = 3 / 127.5
  auto s8 = calculate_qparams(-1.0f, 3.0f, make(8, true, true));
  EXPECT_EQ(s8.scale, 3.0f / 127.5f);
  EXPECT_EQ(s8.zero_point, 0);
  auto u8 = calculate_qparams(-1.0f, 3.0f, make(8, false, true));
  EXPECT_EQ(u8.scale, 3.0f / 127.5f);
  EXPECT_EQ(u8.zero_point, 128);
  // Narrow range: 3 / ((127 - -127) / 2) = 3 / 127 (TensorRT's amax / 127).
  EXPECT_EQ(calculate_qparams(-3.0f, 1.0f, make(8, true, true, true)).scale, 3.0f / 127.0f);
  // 4 bits: 3 / 7.5
  EXPECT_EQ(calculate_qparams(-1.0f, 3.0f, make(4, true, true)).scale, 3.0f / 7.5f);
}

TEST(Qparams, ZeroPointRoundsHalfToEven) {
  // [-126.5, 128.5] on uint8: scale = 255 / 255 = 1, min / scale = -126.5 -> -126 (half to even;
  // half away from zero would give -127), zero point 126.
  auto qp = calculate_qparams(-126.5f, 128.5f, make(8, false, false));
  EXPECT_EQ(qp.scale, 1.0f);
  EXPECT_EQ(qp.zero_point, 126);
  // -127.5 -> -128: zero point 128.
  EXPECT_EQ(calculate_qparams(-127.5f, 127.5f, make(8, false, false)).zero_point, 128);
}

TEST(Qparams, DegenerateRanges) {
  // Empty range: scale = eps (float32 epsilon), zero point at 0.
  auto zero = calculate_qparams(0.0f, 0.0f, make(8, false, false));
  EXPECT_EQ(zero.scale, std::numeric_limits<float>::epsilon());
  EXPECT_EQ(zero.zero_point, 0);
  // Nothing observed (+inf, -inf): PyTorch's defaults 1 and 0.
  const float inf = std::numeric_limits<float>::infinity();
  auto none = calculate_qparams(inf, -inf, make(8, true, true));
  EXPECT_EQ(none.scale, 1.0f);
  EXPECT_EQ(none.zero_point, 0);
  EXPECT_THROW(calculate_qparams(2.0f, 1.0f, make(8, true, true)), Error);
  // Empty per-channel statistics.
  QScheme pc = QScheme::int8_symmetric_per_channel();
  auto qp = calculate_qparams(torch::empty({0}), torch::empty({0}), pc);
  EXPECT_EQ(qp.scale.numel(), 1);
  EXPECT_EQ(qp.scale.item<float>(), 1.0f);
}

TEST(Qparams, PerChannelShapes) {
  QScheme pc = QScheme::int8_symmetric_per_channel();
  auto qp = calculate_qparams(torch::tensor({-1.0f, -0.5f, 0.0f}), torch::tensor({0.5f, 2.0f, 0.0f}), pc);
  ASSERT_EQ(qp.scale.sizes(), torch::IntArrayRef({3}));
  EXPECT_EQ(qp.zero_point.scalar_type(), torch::kLong);
  EXPECT_EQ(qp.scale[0].item<float>(), 1.0f / 127.5f);
  EXPECT_EQ(qp.scale[1].item<float>(), 2.0f / 127.5f);
  EXPECT_EQ(qp.scale[2].item<float>(), std::numeric_limits<float>::epsilon());
}

TEST(QuantizeValue, RoundHalfToEven) {
  // scale 1, zero point 0, int8.
  EXPECT_EQ(quantize_value(0.5f, 1.0f, 0, -128, 127), 0);
  EXPECT_EQ(quantize_value(1.5f, 1.0f, 0, -128, 127), 2);
  EXPECT_EQ(quantize_value(2.5f, 1.0f, 0, -128, 127), 2);
  EXPECT_EQ(quantize_value(-0.5f, 1.0f, 0, -128, 127), 0);
  EXPECT_EQ(quantize_value(-1.5f, 1.0f, 0, -128, 127), -2);
  EXPECT_EQ(quantize_value(-2.5f, 1.0f, 0, -128, 127), -2);
  // scale 0.5: 0.75 / 0.5 = 1.5 -> 2; 1.25 / 0.5 = 2.5 -> 2.
  EXPECT_EQ(quantize_value(0.75f, 0.5f, 0, -128, 127), 2);
  EXPECT_EQ(quantize_value(1.25f, 0.5f, 0, -128, 127), 2);
}

TEST(QuantizeValue, SaturatesAtQuantMinMax) {
  EXPECT_EQ(quantize_value(200.0f, 1.0f, 0, -128, 127), 127);
  EXPECT_EQ(quantize_value(-200.0f, 1.0f, 0, -128, 127), -128);
  EXPECT_EQ(quantize_value(-200.0f, 1.0f, 0, -127, 127), -127);  // narrow range
  EXPECT_EQ(quantize_value(127.4f, 1.0f, 0, -128, 127), 127);
  EXPECT_EQ(quantize_value(127.6f, 1.0f, 0, -128, 127), 127);
  EXPECT_EQ(dequantize_value(quantize_value(1e9f, 0.1f, 0, -128, 127), 0.1f, 0), 127 * 0.1f);
}

TEST(QuantizeValue, ZeroPointShiftsTheGrid) {
  // uint8, scale 0.5, zero point 128: 0 -> 128, 1 -> 130, -64 -> 0, -64.5 -> -1 -> clamped 0.
  EXPECT_EQ(quantize_value(0.0f, 0.5f, 128, 0, 255), 128);
  EXPECT_EQ(quantize_value(1.0f, 0.5f, 128, 0, 255), 130);
  EXPECT_EQ(quantize_value(-64.0f, 0.5f, 128, 0, 255), 0);
  EXPECT_EQ(quantize_value(-64.5f, 0.5f, 128, 0, 255), 0);
  EXPECT_EQ(quantize_value(63.5f, 0.5f, 128, 0, 255), 255);
  EXPECT_EQ(quantize_value(64.0f, 0.5f, 128, 0, 255), 255);
  EXPECT_EQ(dequantize_value(130, 0.5f, 128), 1.0f);
  EXPECT_EQ(dequantize_value(0, 0.5f, 128), -64.0f);
  // Zero is exact whatever the scale: the zero point dequantizes to 0.
  EXPECT_EQ(dequantize_value(quantize_value(0.0f, 0.0371f, 77, 0, 255), 0.0371f, 77), 0.0f);
}

// The plain-loop reference and ATen's fake-quantize kernels agree bit for bit (STYLE.md #7).
TEST(QuantizeReference, MatchesATenFakeQuantize) {
  torch::manual_seed(3);
  const QScheme schemes[] = {make(8, false, false), make(8, true, true), make(4, true, true, true),
                             make(2, false, false), make(8, false, true)};
  for (const QScheme& base : schemes) {
    for (int64_t axis : {-1, 0, 1}) {  // -1: per-tensor
      QScheme s = base;
      s.per_channel = axis >= 0;
      s.axis = std::max<int64_t>(axis, 0);
      torch::Tensor x = torch::randn({4, 3, 5}) * 2.0 + 0.3;
      torch::Tensor mn = s.per_channel ? x.transpose(0, s.axis).flatten(1).amin(1) : x.min();
      torch::Tensor mx = s.per_channel ? x.transpose(0, s.axis).flatten(1).amax(1) : x.max();
      QParams qp = calculate_qparams(mn * 0.8, mx * 0.8, s);  // some values saturate
      torch::Tensor ref = fake_quantize_reference(x, qp, s);
      torch::Tensor fast =
          s.per_channel
              ? torch::fake_quantize_per_channel_affine(x, qp.scale, qp.zero_point.to(torch::kInt), s.axis,
                                                        s.quant_min(), s.quant_max())
              : torch::fake_quantize_per_tensor_affine(
                    x, qp.scale.item<double>(), qp.zero_point.item<int64_t>(), s.quant_min(), s.quant_max());
      EXPECT_TRUE(torch::equal(ref, fast))
          << s.to_string() << " max diff " << (ref - fast).abs().max().item<float>();
      torch::Tensor q = quantize_reference(x, qp, s);
      EXPECT_GE(q.min().item<int64_t>(), s.quant_min()) << s.to_string();
      EXPECT_LE(q.max().item<int64_t>(), s.quant_max()) << s.to_string();
      EXPECT_TRUE(((q == s.quant_min()) | (q == s.quant_max())).any().item<bool>())
          << s.to_string() << ": nothing saturated";
    }
  }
}

TEST(QuantizeReference, RejectsWrongQparamCount) {
  QScheme s = QScheme::int8_symmetric_per_channel(0);
  QParams qp{torch::ones({2}), torch::zeros({2}, torch::kLong)};
  EXPECT_THROW(quantize_reference(torch::zeros({3, 4}), qp, s), Error);
}

}  // namespace
}  // namespace yq::quant
