// The int8 ops against their fake-quant equivalents (at most 1 LSB apart; the lookup tables exactly),
// and the fast table lookup against its plain reference.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdio>

#include "core/cpu.h"
#include "core/error.h"
#include "deploy/int8_ops.h"
#include "quant/scheme.h"
#include "quant/target.h"

namespace yq::deploy {
namespace {

constexpr int64_t kMaxLsb = 1;  // tolerance of int8 kernels vs fake quant, in output codes

// Fake quantization on a quint8-domain grid (LibTorch's kernel), float in, float out.
at::Tensor fq(const at::Tensor& x, const QGrid& g) {
  return at::fake_quantize_per_tensor_affine(x, g.scale, g.zero_point, g.qmin, g.qmax);
}

// Output codes of a float tensor that lies on g.
at::Tensor codes_of(const at::Tensor& v, const QGrid& g) {
  return (v / g.scale).round().to(at::kLong) + g.zero_point;
}

int64_t max_lsb(const at::Tensor& q, const at::Tensor& ref_float, const QGrid& g) {
  return (q.int_repr().to(at::kLong) - codes_of(ref_float, g)).abs().max().item<int64_t>();
}

QGrid grid(float scale, int64_t zp, int64_t qmin = 0, int64_t qmax = 255) {
  return QGrid{scale, zp, qmin, qmax};
}

// A grid that covers [lo, hi] on 0..255.
QGrid grid_for(float lo, float hi) {
  auto p = quant::calculate_qparams(lo, hi, quant::QScheme::uint8_affine());
  return grid(p.scale, p.zero_point);
}

TEST(Int8Grid, SignedSymmetricIsQuint8ShiftedBy128) {
  quant::QParams qp{torch::full({1}, 0.05f), torch::zeros({1}, torch::kLong)};
  const QGrid g = grid_of(quant::QScheme::int8_symmetric(), qp, "x");
  EXPECT_EQ(g.zero_point, 128);
  EXPECT_EQ(g.qmin, 0);
  EXPECT_EQ(g.qmax, 255);
  EXPECT_FLOAT_EQ(g.scale, 0.05f);
  // Same values: int8 code c <-> quint8 code c + 128.
  auto x = torch::linspace(-7, 7, 301);
  auto ref = at::fake_quantize_per_tensor_affine(x, 0.05, 0, -128, 127);
  EXPECT_TRUE(torch::equal(fq(x, g), ref));
  // Narrow range (TensorRT): -127..127 -> 1..255.
  quant::QScheme narrow = quant::QScheme::int8_symmetric();
  narrow.narrow_range = true;
  const QGrid gn = grid_of(narrow, qp, "x");
  EXPECT_EQ(gn.qmin, 1);
  EXPECT_EQ(gn.qmax, 255);
  EXPECT_TRUE(torch::equal(fq(x, gn), at::fake_quantize_per_tensor_affine(x, 0.05, 0, -127, 127)));
  // Per-channel activations are refused with the layer's name.
  quant::QScheme pc = quant::QScheme::int8_symmetric_per_channel(1);
  try {
    grid_of(pc, quant::QParams{torch::ones({4}), torch::zeros({4}, torch::kLong)}, "model.3.act_fq");
    FAIL() << "expected a UsageError";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("model.3.act_fq"), std::string::npos);
  }
}

TEST(Int8Table, FastEqualsReference) {
  torch::manual_seed(1);
  const std::vector<std::vector<int64_t>> shapes = {{1, 3, 5, 7}, {2, 16, 9, 13}, {1, 64, 8, 8}, {3, 1000}};
  for (const auto& shape : shapes) {
    for (int t = 0; t < 3; ++t) {
      const QGrid in = grid(0.02f + 0.01f * t, 100 + 20 * t), out = grid(0.015f, 30 + t, t, 255 - t);
      auto x = torch::randn(shape) * 2;
      if (x.dim() == 4 && t == 1) x = x.contiguous(at::MemoryFormat::ChannelsLast);
      auto q = qquantize(x, in);
      const auto table = silu_table(in, out);
      const auto fast = apply_table(q, table, out);
      const auto ref = apply_table_reference(q, table, out);
      EXPECT_TRUE(torch::equal(fast.int_repr(), ref.int_repr()))
          << "shape " << x.sizes() << " in " << in.to_string() << " out " << out.to_string();
      EXPECT_EQ(fast.q_scale(), double(out.scale));
      EXPECT_EQ(fast.q_zero_point(), out.zero_point);
      EXPECT_EQ(fast.suggest_memory_format(), q.suggest_memory_format());
    }
  }
}

TEST(Int8Table, SiluTableEqualsFakeQuantExactly) {
  torch::manual_seed(2);
  // uint8 affine, int8 symmetric (as shifted quint8), and narrow grids.
  const std::vector<std::pair<QGrid, QGrid>> cases = {
      {grid_for(-6, 9), grid_for(-0.3f, 9)},
      {grid(0.05f, 128), grid(0.04f, 128)},
      {grid(0.05f, 128, 1, 255), grid(0.04f, 128, 1, 255)},
      {grid(0.3f, 8, 0, 15), grid(0.5f, 1, 0, 15)},  // 4-bit grids
  };
  for (const auto& [in, out] : cases) {
    auto x = torch::randn({2, 8, 17, 19}) * 4;
    auto ref = fq(torch::silu(fq(x, in)), out);  // the fake-quant model's pre_fq -> SiLU -> act_fq
    auto q = apply_table(qquantize(x, in), silu_table(in, out), out);
    EXPECT_TRUE(torch::equal(q.dequantize(), ref)) << in.to_string() << " -> " << out.to_string();
  }
}

TEST(Int8Quantize, MatchesFakeQuant) {
  torch::manual_seed(3);
  for (const QGrid& g : {grid(1.0f / 255, 0), grid(0.05f, 128, 1, 255), grid_for(-2, 5)}) {
    auto x = torch::randn({2, 3, 16, 16}) * 3;
    auto q = qquantize(x, g);
    EXPECT_EQ(q.suggest_memory_format(), at::MemoryFormat::ChannelsLast);
    EXPECT_LE(max_lsb(q, fq(x, g), g), kMaxLsb) << g.to_string();
    EXPECT_GE(q.int_repr().min().item<int64_t>(), g.qmin);
  }
}

// The fast quantize is fake quant's arithmetic bit for bit, for NCHW, channels-last and flat inputs,
// sizes that leave vector tails, ties, and values far outside the grid.
TEST(Int8Quantize, FastIsFakeQuantArithmeticExactly) {
  torch::manual_seed(31);
  const QGrid narrow = grid(0.05f, 128, 1, 255);
  for (const QGrid& g : {grid(1.0f / 255, 0), narrow, grid_for(-2, 5)}) {
    // Ties, and values far outside the grid (saturate; fake quant's int64 cast of 1e30 would not).
    auto x = torch::randn({2, 3, 7, 9}) * 3;
    x.view({-1}).narrow(0, 0, 4).copy_(torch::tensor({1e6f, -1e6f, 0.5f * g.scale, 2.5f * g.scale}));
    for (const auto& in : {x, x.contiguous(at::MemoryFormat::ChannelsLast), x.reshape({-1})}) {
      auto q = qquantize(in, g);
      auto flat = in.contiguous().reshape({-1});
      auto got = q.int_repr().contiguous().reshape({-1});
      ASSERT_EQ(q.sizes(), in.sizes());
      auto want = torch::empty_like(flat, torch::kLong);
      for (int64_t i = 0; i < flat.numel(); ++i)
        want[i] = quant::quantize_value(flat[i].item<float>(), g.scale, g.zero_point, g.qmin, g.qmax);
      EXPECT_TRUE(torch::equal(got.to(torch::kLong), want)) << g.to_string() << " dims " << in.dim();
      EXPECT_LE(max_lsb(q, qquantize_reference(in, g).dequantize(), g), kMaxLsb);
    }
  }
}

TEST(Int8Dequantize, CatNchwEqualsDequantizeThenCat) {
  torch::manual_seed(32);
  const QGrid g1 = grid_for(-1, 3), g2 = grid_for(-8, 2);
  auto a = qquantize(torch::randn({2, 5, 6, 7}), g1), b = qquantize(torch::randn({2, 3, 6, 7}) * 4, g2);
  auto got = qdequantize_cat_nchw({a, b});
  auto want = at::cat({a.dequantize(), b.dequantize()}, 1).contiguous();
  EXPECT_TRUE(got.is_contiguous());
  EXPECT_TRUE(torch::allclose(got, want, 0, 1e-6)) << (got - want).abs().max().item<float>();
}

struct ConvCase {
  int64_t c1, c2, k, s;
};

// A 7-bit grid [0, 127] that covers [lo, hi]: what target x86 gives the tensors convs read.
QGrid grid7_for(float lo, float hi) {
  quant::QScheme s = quant::QScheme::uint8_affine();
  s.bits = 7;
  auto p = quant::calculate_qparams(lo, hi, s);
  return grid(p.scale, p.zero_point, 0, 127);
}

// The int8 conv against fq_out(conv(fq_in(x), fq_w(w)) + b), input on `in`.
void check_conv(const std::string& engine, const QGrid& in) {
  set_quantized_engine(engine);
  torch::manual_seed(4);
  for (const ConvCase& c : {ConvCase{3, 8, 3, 2}, ConvCase{16, 16, 3, 1}, ConvCase{24, 12, 1, 1}}) {
    const QGrid out = grid_for(-5, 7);
    auto x = torch::randn({2, c.c1, 16, 16}).abs() * 1.5 - 0.2;
    auto w = torch::randn({c.c2, c.c1, c.k, c.k}) * 0.2;
    auto b = torch::randn({c.c2}) * 0.3;
    auto wscale = w.abs().amax({1, 2, 3}) / 127;  // symmetric per channel
    auto codes = (w / wscale.view({-1, 1, 1, 1})).round().clamp(-127, 127);
    auto wq = codes * wscale.view({-1, 1, 1, 1});
    auto ref = fq(torch::conv2d(fq(x, in), wq, b, c.s, c.k / 2), out);
    auto packed = prepack_conv(make_qweight(codes, wscale), b, c.s, c.k / 2);
    auto y = qconv(qquantize(x, in), packed, out);
    EXPECT_EQ(y.sizes(), ref.sizes());
    EXPECT_LE(max_lsb(y, ref, out), kMaxLsb)
        << engine << " c1 " << c.c1 << " c2 " << c.c2 << " k " << c.k << " s " << c.s << " in "
        << in.to_string() << "; " << cpu_onednn().describe();
  }
  set_quantized_engine("onednn");
}

// Target x86's grid is exact on every x86 ISA (here: under every ISA cap the suite runs with).
TEST(Int8Conv, MatchesFakeQuantOnednnX86Grid) {
  check_conv("onednn", grid7_for(-0.3f, 4));
}

// Full-range activations (x86-vnni, arm): exact where oneDNN has VNNI; elsewhere the worst-case test
// below shows the saturation and the runtime refuses such models.
TEST(Int8Conv, MatchesFakeQuantOnednnFullRange) {
  const auto e =
      quant::int8_exactness(quant::target_pair_bound(quant::Target::kX86Vnni), cpu_onednn(), "onednn");
  if (!e.exact) GTEST_SKIP() << "full-range activations are not exact here: " << e.why;
  check_conv("onednn", grid_for(-0.3f, 4));
}

TEST(Int8Conv, MatchesFakeQuantQnnpack) {
  check_conv("qnnpack", grid_for(-0.3f, 4));
}

// Every input code at the grid's top and every weight code at +127 or -128: each vpmaddubsw pair sums to
// 2 x qmax x w. Exact (within 1 LSB) exactly where quant::int8_exactness says so, which is what the
// runtime's refusals rest on: the 7-bit grid always, the full range only with VNNI.
TEST(Int8Conv, WorstCasePairsSaturateExactlyWhereTheCpuModelSays) {
  set_quantized_engine("onednn");
  for (const QGrid& in : {grid(0.01f, 0, 0, 127), grid(0.01f, 0, 0, 255)}) {
    for (int sign : {1, -1}) {
      const int64_t c1 = 16, c2 = 8, k = 3;
      const float wscale = 0.001f;
      auto x = torch::full({1, c1, 8, 8}, in.scale * float(in.qmax));
      auto codes = torch::full({c2, c1, k, k}, sign > 0 ? 127.0f : -128.0f);
      auto scales = torch::full({c2}, wscale);
      auto b = torch::zeros({c2});
      const float top = float(c1 * k * k) * in.scale * float(in.qmax) * 128 * wscale;
      const QGrid out = grid_for(-top, top);
      auto ref = fq(torch::conv2d(fq(x, in), codes * wscale, b, 1, k / 2), out);
      auto y = qconv(qquantize(x, in), prepack_conv(make_qweight(codes, scales), b, 1, k / 2), out);
      const int64_t lsb = max_lsb(y, ref, out);
      const int64_t bound = quant::pair_bound(in.qmax, sign > 0 ? 127 : 128);
      const auto e = quant::int8_exactness(bound, cpu_onednn(), "onednn");
      std::printf("[ worst case ] input codes %lld, weights %s: pair bound %lld, %lld LSB off; %s\n",
                  (long long)in.qmax, sign > 0 ? "+127" : "-128", (long long)bound, (long long)lsb,
                  e.why.c_str());
      if (e.exact)
        EXPECT_LE(lsb, kMaxLsb) << e.why;
      else
        EXPECT_GT(lsb, kMaxLsb) << "the CPU model says oneDNN saturates here, but it computed exactly: "
                                << e.why;
    }
  }
}

TEST(Int8Conv, UnknownEngineNamesTheKnownOnes) {
  try {
    set_quantized_engine("fbgemmx");
    FAIL();
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("onednn, qnnpack"), std::string::npos);
  }
}

TEST(Int8Junctions, AddMatchesFakeQuant) {
  torch::manual_seed(5);
  const QGrid ga = grid_for(-0.3f, 3), gb = grid_for(-0.3f, 5), out = grid_for(-0.6f, 7);
  auto a = fq(torch::randn({2, 8, 10, 12}) * 2, ga), b = fq(torch::randn({2, 8, 10, 12}) * 2, gb);
  auto y = qadd(qquantize(a, ga), qquantize(b, gb), out);
  EXPECT_LE(max_lsb(y, fq(a + b, out), out), kMaxLsb);
  // The same arithmetic as the fake-quant model: exact, also for mixed layouts and vector tails.
  for (const auto& shape : {std::vector<int64_t>{2, 8, 10, 12}, std::vector<int64_t>{1, 3, 5, 7}}) {
    auto fa = fq(torch::randn(shape) * 2, ga), fb = fq(torch::randn(shape) * 2, gb);
    auto qa = qquantize(fa, ga), qb = qquantize(fb, gb).contiguous();  // channels-last + NCHW
    auto z = qadd(qa, qb, out);
    EXPECT_EQ(max_lsb(z, fq(fa + fb, out), out), 0);
    EXPECT_LE(max_lsb(z, qadd_reference(qa, qb, out).dequantize(), out), kMaxLsb);
  }
}

TEST(Int8Junctions, CatRequantizesDifferingScales) {
  torch::manual_seed(6);
  const QGrid g1 = grid_for(-0.3f, 3), g2 = grid_for(-1, 8), out = grid_for(-0.5f, 6);
  auto a = fq(torch::randn({1, 4, 6, 6}) * 2, g1), b = fq(torch::randn({1, 6, 6, 6}) * 3, g2);
  auto c = fq(torch::randn({1, 2, 6, 6}), out);
  auto y = qcat({qquantize(a, g1), qquantize(b, g2), qquantize(c, out)}, out);
  auto ref = fq(torch::cat({a, b, c}, 1), out);
  // Requantization by table is exact.
  EXPECT_TRUE(torch::equal(y.dequantize(), ref));
  EXPECT_EQ(y.q_scale(), double(out.scale));
}

TEST(Int8Junctions, MaxPoolAndUpsampleKeepTheGrid) {
  torch::manual_seed(7);
  const QGrid g = grid_for(-0.3f, 4);
  auto x = fq(torch::randn({2, 5, 8, 8}) * 2, g);
  auto q = qquantize(x, g);
  auto p = qmaxpool(q, 5);
  EXPECT_TRUE(torch::equal(p.dequantize(), at::max_pool2d(x, {5, 5}, {1, 1}, {2, 2})));
  auto u = qupsample(q, 2);
  EXPECT_EQ(u.sizes(), (std::vector<int64_t>{2, 5, 16, 16}));
  EXPECT_TRUE(torch::equal(u.dequantize(), at::upsample_nearest2d(x, {16, 16})));
  EXPECT_EQ(p.q_scale(), double(g.scale));
  EXPECT_EQ(u.q_zero_point(), g.zero_point);
}

}  // namespace
}  // namespace yq::deploy
