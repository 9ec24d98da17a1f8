// Sensitivity analysis: the SQNR accumulator on hand-worked tensors, the ranking rule, the analysis on
// a tiny model (nothing quantized = infinite SQNR; a layer with 2-bit weights ranks first, whichever it
// is), and the qconfig that keeps the critical layers float / at 8 bits (loads and prepares).
#include "quant/sensitivity.h"

#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "core/error.h"
#include "core/fs.h"
#include "model/yolov8.h"
#include "quant/prepare.h"
#include "quant_test_util.h"
#include "test_util.h"

namespace yq::quant {
namespace {

using testing::images;
using testing::tiny_model;

// Named tolerance: SQNR in dB of hand-worked cases.
constexpr double kDbTol = 1e-9;

TEST(Sqnr, HandWorked) {
  // signal 3^2 + 4^2 = 25, noise 0.5^2 = 0.25: 10 log10(100) = 20 dB.
  auto ref = torch::tensor({3.0f, 4.0f});
  EXPECT_NEAR(sqnr_db(ref, torch::tensor({3.0f, 4.5f})), 20.0, kDbTol);
  // Accumulated: + signal 1, noise 1 -> 26 / 1.25 = 20.8 -> 13.18063 dB (not the mean of 20 and 0 dB).
  SqnrAccumulator acc;
  acc.add(ref, torch::tensor({3.0f, 4.5f}));
  acc.add(torch::tensor({{1.0f}}), torch::tensor({{0.0f}}));
  EXPECT_DOUBLE_EQ(acc.signal(), 26.0);
  EXPECT_DOUBLE_EQ(acc.noise(), 1.25);
  EXPECT_NEAR(acc.db(), 10.0 * std::log10(20.8), kDbTol);
  EXPECT_NEAR(acc.db(), 13.180633349627616, 1e-9);
}

TEST(Sqnr, EdgeCases) {
  auto ref = torch::tensor({1.0f, -2.0f});
  EXPECT_TRUE(std::isinf(sqnr_db(ref, ref.clone())) && sqnr_db(ref, ref.clone()) > 0);
  EXPECT_TRUE(std::isinf(sqnr_db(torch::zeros({2}), ref)) && sqnr_db(torch::zeros({2}), ref) < 0);
  EXPECT_TRUE(std::isnan(SqnrAccumulator().db()));
  EXPECT_TRUE(std::isnan(sqnr_db(torch::zeros({2}), torch::zeros({2}))));
  EXPECT_THROW(sqnr_db(ref, torch::zeros({3})), Error);
}

LayerSensitivity layer(const std::string& name, double only, double but) {
  LayerSensitivity l;
  l.name = name, l.kind = "conv", l.only_this = only, l.all_but_this = but;
  return l;
}

TEST(Sensitivity, RankingRule) {
  // only_this ascending: b, a, c; all_but_this descending: b, a, c.
  std::vector<LayerSensitivity> v = {layer("a", 30, 20), layer("b", 10, 25), layer("c", 40, 18)};
  rank_layers(v);
  ASSERT_EQ(v.size(), 3u);
  EXPECT_EQ(v[0].name, "b");
  EXPECT_EQ(v[1].name, "a");
  EXPECT_EQ(v[2].name, "c");
  EXPECT_EQ(v[0].rank, 1);
  EXPECT_EQ(v[2].rank, 3);
  EXPECT_EQ(v[1].rank_only_this, 2);
  EXPECT_EQ(v[1].rank_all_but_this, 2);

  // Equal rank sums (1 + 2 each): the larger all_but_this wins; NaN ranks last.
  std::vector<LayerSensitivity> w = {layer("e", 5, 10), layer("f", 50, 50),
                                     layer("n", std::nan(""), std::nan(""))};
  rank_layers(w);
  EXPECT_EQ(w[0].name, "f");
  EXPECT_EQ(w[1].name, "e");
  EXPECT_EQ(w[2].name, "n");
  EXPECT_EQ(w[0].rank_only_this, 2);
  EXPECT_EQ(w[0].rank_all_but_this, 1);
  EXPECT_EQ(w[2].rank_only_this, 3);
}

// The CPU profile with `two_bit` getting 2-bit weights.
// The CPU profile with full 8-bit activations (target x86-vnni), so that "every other layer" means 8 bits
// throughout, and one layer's weights in 2 bits.
QConfigMapping with_two_bit_weights(const std::string& two_bit) {
  QConfigMapping m = QConfigMapping::load("quantization.yaml");
  m.set_target(Target::kX86Vnni);
  QConfig q = *m.qconfig_for(two_bit);
  q.weight->scheme.bits = 2;
  m.add_rule(two_bit, q);
  return m;
}

// Observers over `batches`, then frozen with fake quant on (what quant::calibrate does with a loader).
void calibrate_on(model::YoloV8Impl& m, const std::vector<torch::Tensor>& batches) {
  torch::NoGradGuard no_grad;
  m.eval();
  enable_observers(m, true);
  enable_fake_quant(m, false);
  for (const auto& x : batches) m.forward_raw(x);
  freeze_quantizers(m);
  enable_fake_quant(m, true);
}

// The tiny model with He-initialized conv weights (normal, std sqrt(2 / fan_in)). With LibTorch's
// default init the activations shrink layer by layer, the raw outputs hardly depend on the image and
// an error deep in the backbone barely reaches them; here the signal carries through, as in a trained
// model.
model::YoloV8 lively_tiny_model(uint64_t seed) {
  auto m = tiny_model(seed);
  torch::NoGradGuard no_grad;
  for (const auto& mod : m->modules(false))
    if (auto* c = mod->as<torch::nn::Conv2dImpl>())
      c->weight.normal_(0, std::sqrt(2.0 / double(c->weight[0].numel())));
  return m;
}

SensitivityResult analyze_tiny(const QConfigMapping& mapping) {
  auto m = lively_tiny_model(11);
  prepare(*m, mapping);
  const std::vector<torch::Tensor> batches = {images(2, 64, 1), images(2, 64, 2)};
  calibrate_on(*m, batches);
  OutputSqnr metric(*m, batches);
  EXPECT_EQ(metric.images(), 4);
  SensitivityOptions opt;
  opt.progress = false;
  auto res = analyze_sensitivity(
      *m, "sqnr", [&](model::YoloV8Impl& x) { return metric(x); }, opt);
  // Every quantizer is on again afterwards.
  for (auto& [name, fq] : named_quantizers(*m)) EXPECT_TRUE(fq->fake_quant_enabled()) << name;
  return res;
}

TEST(Sensitivity, TwoBitLayerRanksFirst) {
  for (const std::string two_bit : {"model.4.cv2", "model.15.m.0.cv1"}) {
    SCOPED_TRACE(two_bit);
    const auto res = analyze_tiny(with_two_bit_weights(two_bit));
    // Nothing quantized: identical outputs, infinite SQNR; everything quantized: finite.
    EXPECT_TRUE(std::isinf(res.fp32) && res.fp32 > 0);
    EXPECT_TRUE(std::isfinite(res.all_quantized));
    EXPECT_EQ(res.evaluations, 2 * int64_t(res.layers.size()) + 2);
    auto m = tiny_model();
    EXPECT_EQ(res.layers.size(), quantizable_layers(*m).size());
    EXPECT_TRUE(res.float_layers.empty());
    ASSERT_FALSE(res.layers.empty());
    EXPECT_EQ(res.layers[0].name, two_bit) << res.table(8);
    EXPECT_EQ(res.layers[0].kind, "conv");
    EXPECT_EQ(res.layers[0].rank_only_this, 1);
    std::set<int> ranks;
    // (Errors do not simply add up: downstream quantizers clip, so one 2-bit layer alone may cost more
    // than everything together, and excluding a layer may give back more than its own cost.)
    for (const auto& l : res.layers) ranks.insert(l.rank);
    EXPECT_EQ(ranks.size(), res.layers.size());
    EXPECT_EQ(*ranks.begin(), 1);
    // Alone it costs far more than any 8-bit layer; excluding it gives SQNR back.
    for (size_t i = 1; i < res.layers.size(); ++i)
      EXPECT_LT(res.layers[0].only_this + 6.0, res.layers[i].only_this) << res.layers[i].name;
    EXPECT_GT(res.layers[0].all_but_this, res.all_quantized);
  }
}

TEST(Sensitivity, FloatLayersAreNotMeasuredAndJson) {
  QConfigMapping m = QConfigMapping::load("quantization.yaml");
  m.add_rule("model.22.cv3.*.2", std::nullopt);
  const auto res = analyze_tiny(m);
  EXPECT_EQ(res.float_layers,
            (std::vector<std::string>{"model.22.cv3.0.2", "model.22.cv3.1.2", "model.22.cv3.2.2"}));
  for (const auto& l : res.layers) EXPECT_EQ(l.name.find("model.22.cv3.0.2"), std::string::npos);
  const auto j = res.to_json();
  EXPECT_EQ(j["metric"], "sqnr");
  EXPECT_TRUE(j["baseline"]["fp32"].is_null());  // infinite
  EXPECT_TRUE(j["baseline"]["all_quantized"].is_number());
  ASSERT_EQ(j["layers"].size(), res.layers.size());
  for (const char* k : {"name", "kind", "only_this", "all_but_this", "rank"})
    EXPECT_TRUE(j["layers"][0].contains(k)) << k;
  EXPECT_EQ(j["layers"][0]["rank"], 1);
  EXPECT_EQ(res.top(2).size(), 2u);
  EXPECT_EQ(res.top(2)[0], res.layers[0].name);
  EXPECT_NE(res.table(3).find(res.layers[0].name), std::string::npos);
}

TEST(Sensitivity, UnpreparedModelIsAnError) {
  auto m = tiny_model();
  EXPECT_THROW(analyze_sensitivity(*m, "sqnr", [](model::YoloV8Impl&) { return 0.0; }), UsageError);
}

TEST(CriticalQConfig, FloatKeepsExactlyTheTopKFloatAndPrepares) {
  const QConfigMapping base = QConfigMapping::load("quantization.yaml");
  const std::vector<std::string> critical = {"model.0", "model.22.cv3.1.2", "model.2.m.0.add"};
  const QConfigMapping q = critical_qconfig(base, critical, CriticalPrecision::kFloat);
  EXPECT_EQ(q.name(), "cpu-sensitivity");
  EXPECT_NE(q.description().find("model.22.cv3.1.2"), std::string::npos);

  // Written and read back as a file, then used to prepare a model.
  yq::testing::TempDir dir("sens_q");
  const fs::path file = dir / "sensitivity_qconfig.yaml";
  atomic_write(file, q.to_yaml());
  const QConfigMapping loaded = QConfigMapping::load(file.string());
  auto m = tiny_model();
  const auto names = quantizable_layers(*m);
  for (const auto& n : names) {
    const bool crit = std::find(critical.begin(), critical.end(), n) != critical.end();
    EXPECT_EQ(loaded.qconfig_for(n).has_value(), !crit) << n;
    if (!crit) EXPECT_EQ(*loaded.qconfig_for(n), *base.qconfig_for(n)) << n;
  }
  auto rep = prepare(*m, loaded);
  std::set<std::string> floats;
  for (const auto& l : rep.layers)
    if (!l.weight && !l.activation) floats.insert(l.name);
  EXPECT_EQ(floats, std::set<std::string>(critical.begin(), critical.end()));
  // The first layer is float, so the image stays float too.
  EXPECT_FALSE(m->input_fq);

  // topk = 0: the base mapping unchanged.
  const QConfigMapping none = critical_qconfig(base, {}, CriticalPrecision::kFloat);
  EXPECT_EQ(none.rules().size(), base.rules().size());
}

TEST(CriticalQConfig, Int8RaisesOnlyLowerBitLayers) {
  const QConfigMapping base = QConfigMapping::load("experiments/exp3_mixed_precision.yaml");
  const std::string four = "model.6.m.0.cv1", eight = "model.0", flt = "model.22.cv2.0.2";
  ASSERT_EQ(base.qconfig_for(four)->weight->scheme.bits, 4);
  ASSERT_FALSE(base.qconfig_for(flt));
  const QConfigMapping q = critical_qconfig(base, {four, eight, flt}, CriticalPrecision::kInt8);
  // One rule more: the 4-bit layer; the 8-bit and the float layer are left alone.
  EXPECT_EQ(q.rules().size(), base.rules().size() + 1);
  QConfig expect = *base.qconfig_for(four);
  expect.weight->scheme.bits = 8;  // narrow range and the rest kept
  EXPECT_EQ(*q.qconfig_for(four), expect);
  EXPECT_TRUE(expect.weight->scheme.narrow_range);
  EXPECT_EQ(*q.qconfig_for(eight), *base.qconfig_for(eight));
  EXPECT_FALSE(q.qconfig_for(flt));
  EXPECT_EQ(q.qconfig_for("model.6.m.0.cv2")->weight->scheme.bits, 4);
  auto m = tiny_model();
  const QConfigMapping loaded = QConfigMapping::from_yaml(q.to_yaml(), "test");
  prepare(*m, loaded);
  EXPECT_EQ(m->named_modules()["model.6.m.0.cv1.weight_fq"]->as<FakeQuantizeImpl>()->scheme().bits, 8);
  EXPECT_EQ(m->named_modules()["model.6.m.0.cv2.weight_fq"]->as<FakeQuantizeImpl>()->scheme().bits, 4);
  EXPECT_THROW(parse_critical("int4"), UsageError);
}

}  // namespace
}  // namespace yq::quant
