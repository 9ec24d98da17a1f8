// analyze: the error statistics by hand, histograms, the taps leaving the model as it was, and the
// analysis of a tiny calibrated model (8-bit layers well above 0 dB, accumulated error at the head not
// smaller than the best single layer alone), and the accuracy drift read from results.csv files.
#include <gtest/gtest.h>

#include <cmath>

#include "../quant/quant_test_util.h"
#include "../test_util.h"
#include "core/error.h"
#include "eval/analyze.h"
#include "quant/prepare.h"

namespace yq::eval {
namespace {

TEST(Analyze, ErrorStatsByHand) {
  ErrorAccumulator a;
  a.add(torch::tensor({1.0, 1.0}), torch::tensor({1.0, 0.0}));
  ErrorStats s = a.stats();
  EXPECT_NEAR(s.sqnr_db, 10 * std::log10(2.0), 1e-9);
  EXPECT_NEAR(s.mse, 0.5, 1e-12);
  EXPECT_NEAR(s.cosine, 1 / std::sqrt(2.0), 1e-12);
  EXPECT_EQ(s.values, 2);
  ErrorAccumulator same;
  same.add(torch::tensor({2.0, -1.0}), torch::tensor({2.0, -1.0}));
  EXPECT_TRUE(std::isinf(same.stats().sqnr_db));
  EXPECT_DOUBLE_EQ(same.stats().cosine, 1.0);
}

TEST(Analyze, HistogramCountsEveryValue) {
  Histogram h = make_histogram({0.f, 0.1f, 0.9f, 1.f, 0.5f}, 2, -1, 1);
  ASSERT_EQ(h.counts.size(), 2u);
  EXPECT_DOUBLE_EQ(h.edges.front(), -1);
  EXPECT_DOUBLE_EQ(h.edges.back(), 1);
  EXPECT_DOUBLE_EQ(h.counts[0], 0);  // [-1, 0)
  EXPECT_DOUBLE_EQ(h.counts[1], 5);  // [0, 1], the maximum in the last bin
  EXPECT_FLOAT_EQ(float(h.max), 1.f);
}

TEST(Analyze, TinyCalibratedModel) {
  auto m = quant::testing::tiny_model();
  quant::prepare(*m, quant::QConfigMapping::load("quantization.yaml"));
  quant::enable_fake_quant(*m, false);
  quant::enable_observers(*m, true);
  torch::NoGradGuard ng;
  m->forward(quant::testing::images(4, 64, 1));
  quant::freeze_quantizers(*m);
  quant::enable_fake_quant(*m, true);
  const torch::Tensor x = quant::testing::images(2, 64, 2);
  const torch::Tensor before = m->forward(x);

  AnalyzeOptions o;
  o.bins = 16;
  QuantAnalyzer an(m, model::YoloV8{nullptr}, o);
  an.add_batch(x);
  an.add_batch(quant::testing::images(1, 64, 3));
  AnalyzeResult r = an.finish();
  EXPECT_EQ(r.images, 3);
  // The model is as it was: switches restored, no taps, same output.
  for (auto& [n, fq] : quant::named_quantizers(*m)) {
    EXPECT_FALSE(fq->has_tap()) << n;
    EXPECT_TRUE(fq->fake_quant_enabled()) << n;
  }
  EXPECT_TRUE(torch::equal(before, m->forward(x)));

  ASSERT_FALSE(r.layers.empty());
  EXPECT_EQ(r.layers.front().name, "input");
  int convs = 0;
  double best_alone = -1e9;
  for (const auto& l : r.layers) {
    if (l.kind == "conv") {
      ++convs;
      ASSERT_TRUE(l.weight_hist && l.act_hist && l.alone && l.accumulated) << l.name;
      EXPECT_GT(l.alone->sqnr_db, 15) << l.name;  // one 8-bit layer: far above the noise
      EXPECT_GT(l.alone->cosine, 0.95) << l.name;
      EXPECT_LE(l.weight_hist->clip_lo, l.weight_hist->min + 1e-6) << l.name;  // weights never clip (min/max)
      EXPECT_EQ(l.weight_hist->clipped_fraction, 0) << l.name;
      double total = 0;
      for (double c : l.act_hist->counts) total += c;
      EXPECT_GT(total, 0);
      best_alone = std::max(best_alone, l.alone->sqnr_db);
    }
  }
  EXPECT_GT(convs, 20);
  // The last head layer accumulates the error of everything before it: never better than alone.
  const auto& head = *std::find_if(r.layers.rbegin(), r.layers.rend(),
                                   [](const LayerAnalysis& l) { return l.kind == "head"; });
  ASSERT_TRUE(head.accumulated && head.alone);
  EXPECT_LT(best_alone, 200);  // some error everywhere: the layers really were quantized
  EXPECT_LE(head.accumulated->sqnr_db, head.alone->sqnr_db + 1e-6);

  yq::testing::TempDir dir("analyze");
  auto files = write_analysis(r, dir.path(), 2);
  EXPECT_GE(files.size(), 4u);
  auto j = nlohmann::json::parse(read_text(dir / "analyze.json"));
  EXPECT_EQ(j["layers"].size(), r.layers.size());
  EXPECT_TRUE(j["drift"].is_null());
}

TEST(Analyze, AccuracyDriftFromResultsCsv) {
  yq::testing::TempDir dir("drift");
  const std::string header = "epoch,train/box_loss,metrics/mAP50(B),metrics/mAP50-95(B)\n";
  yq::testing::write_file(dir / "fp32.csv", header + "1,1,0.3,0.1\n2,1,0.6,0.4\n3,1,0.7,0.35\n");
  yq::testing::write_file(dir / "qat.csv", header + "1,1,0.55,0.36\n2,1,0.58,0.38\n");
  AccuracyDrift d = read_accuracy_drift(dir / "qat.csv", dir / "fp32.csv");
  EXPECT_DOUBLE_EQ(d.fp32_map50, 0.6);  // best fitness row (0.1 mAP50 + 0.9 mAP50-95)
  EXPECT_DOUBLE_EQ(d.fp32_map5095, 0.4);
  ASSERT_EQ(d.epoch.size(), 2u);
  EXPECT_DOUBLE_EQ(d.map5095[1], 0.38);
  yq::testing::write_file(dir / "m.json", R"({"mAP50": 0.9, "mAP50-95": 0.5})");
  EXPECT_DOUBLE_EQ(read_accuracy_drift(dir / "qat.csv", dir / "m.json").fp32_map5095, 0.5);
  yq::testing::write_file(dir / "bad.csv", "epoch,x\n1,2\n");
  EXPECT_THROW(read_accuracy_drift(dir / "bad.csv", dir / "m.json"), UsageError);
}

}  // namespace
}  // namespace yq::eval
