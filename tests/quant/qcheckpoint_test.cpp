// Quantized checkpoints: a PTQ model saved and loaded through model::load_checkpoint comes back
// prepared with the same quantizer state and outputs; float / mismatching checkpoints give clear errors.
#include "quant/qcheckpoint.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "test_util.h"
#include "quant/prepare.h"
#include "quant_test_util.h"

namespace yq::quant {
namespace {

using yq::testing::TempDir;

model::YoloV8 calibrated(const QConfigMapping& mapping) {
  auto m = testing::tiny_model();
  prepare(*m, mapping);
  enable_fake_quant(*m, false);
  torch::NoGradGuard no_grad;
  for (int i = 0; i < 2; ++i) m->forward_raw(testing::images(2, 64, 50 + i));
  freeze_quantizers(*m);
  enable_fake_quant(*m, true);
  return m;
}

TEST(QCheckpoint, PtqRoundTripThroughLoadCheckpoint) {
  TempDir dir("qck");
  const auto mapping = QConfigMapping::load("experiments/exp3_mixed_precision.yaml");
  auto m = calibrated(mapping);
  save_quantized_checkpoint(dir / "ptq.pt", m, nullptr, nullptr, {{"note", "test"}}, mapping, "ptq");
  auto ck = model::load_checkpoint(dir / "ptq.pt");
  EXPECT_EQ(ck.meta["kind"], "ptq");
  EXPECT_TRUE(is_quantized_meta(ck.meta));
  ASSERT_TRUE(is_prepared(*ck.model));
  EXPECT_EQ(checkpoint_qconfig(ck.meta, "x").to_yaml(), mapping.to_yaml());
  ck.model->eval();
  auto x = testing::images(1, 64, 77);
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::equal(testing::flat(m->forward_raw(x)), testing::flat(ck.model->forward_raw(x))));
  auto a = named_quantizers(*m), b = named_quantizers(*ck.model);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].first, b[i].first);
    EXPECT_TRUE(torch::equal(a[i].second->scale(), b[i].second->scale())) << a[i].first;
    EXPECT_EQ(a[i].second->observer_enabled(), b[i].second->observer_enabled());
  }
  EXPECT_NO_THROW(load_quantized_checkpoint(dir / "ptq.pt"));
}

TEST(QCheckpoint, FloatCheckpointWhereAQuantizedOneIsNeeded) {
  TempDir dir("qck");
  auto m = testing::tiny_model();
  model::save_checkpoint(dir / "fp32.pt", m, nullptr, nullptr, {{"kind", "fp32"}});
  try {
    load_quantized_checkpoint(dir / "fp32.pt");
    FAIL() << "expected UsageError";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("float checkpoint"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(is_prepared(*model::load_checkpoint(dir / "fp32.pt").model));
  EXPECT_THROW(save_quantized_checkpoint(dir / "x.pt", m, nullptr, nullptr, {}, QConfigMapping(), "ptq"),
               Error);
}

TEST(QCheckpoint, OtherArchitectureOrClassCount) {
  auto a = model::tiny_model_spec(3), b = model::tiny_model_spec(5), c = model::tiny_model_spec(3);
  c.width = 0.125;
  EXPECT_NO_THROW(check_same_model(a, "a.pt", model::tiny_model_spec(3), "b.pt"));
  EXPECT_THROW(check_same_model(a, "a.pt", b, "data"), UsageError);
  EXPECT_THROW(check_same_model(a, "a.pt", c, "b.pt"), UsageError);
}

}  // namespace
}  // namespace yq::quant
