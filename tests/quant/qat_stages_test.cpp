// QAT stages (quant/qat_stages.h): groups from the layer table, globs, errors, and the switches each
// quantizer gets epoch by epoch (fake quant from its stage's first epoch, observers until the freeze
// and at least in that first epoch, none for a PTQ start).
#include "quant/qat_stages.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "quant/prepare.h"
#include "quant_test_util.h"

namespace yq::quant {
namespace {

using testing::images;
using testing::tiny_model;

TEST(QatStages, GroupsFollowTheLayerTable) {
  auto m = tiny_model();
  EXPECT_EQ(layer_group(*m, "input"), "backbone");
  EXPECT_EQ(layer_group(*m, "model.0"), "backbone");
  EXPECT_EQ(layer_group(*m, "model.9.cv2"), "backbone");  // SPPF
  EXPECT_EQ(layer_group(*m, "model.11"), "neck");
  EXPECT_EQ(layer_group(*m, "model.21.cv1"), "neck");
  EXPECT_EQ(layer_group(*m, "model.22.cv3.2.2"), "head");
  EXPECT_THROW(layer_group(*m, "input_fq.scale"), Error);
}

TEST(QatStages, ResolvesGroupsGlobsAndPlus) {
  auto m = tiny_model();
  QatScheduleOptions o;
  o.stages = {"backbone", "neck", "head"};
  QatSchedule s(*m, o);
  ASSERT_EQ(s.num_stages(), 3);
  EXPECT_EQ(s.stage_of_layer("model.0"), 0);
  EXPECT_EQ(s.stage_of_layer("input"), 0);
  EXPECT_EQ(s.stage_of_layer("model.9.cat"), 0);
  EXPECT_EQ(s.stage_of_layer("model.17"), 1);
  EXPECT_EQ(s.stage_of_layer("model.22.cv2.1.0"), 2);
  EXPECT_EQ(s.stage_of_quantizer("model.2.m.0.cv1.weight_fq"), 0);
  EXPECT_EQ(s.stage_of_quantizer("model.12.cv2.act_fq"), 1);
  EXPECT_EQ(s.stage_of_quantizer("model.22.cv3.0.2.act_fq"), 2);
  EXPECT_EQ(s.stage_of_quantizer("input_fq"), 0);
  size_t total = 0;
  for (int64_t k = 0; k < 3; ++k) total += s.stage_layers(k).size();
  EXPECT_EQ(total, quantizable_layers(*m).size());

  // Globs and '+': the first stage that names a layer keeps it; '*' takes the rest.
  o.stages = {"model.22.*", "neck+model.0", "*"};
  QatSchedule g(*m, o);
  EXPECT_EQ(g.stage_of_layer("model.22.cv2.0.2"), 0);
  EXPECT_EQ(g.stage_of_layer("model.0"), 1);
  EXPECT_EQ(g.stage_of_layer("model.15.cv2"), 1);
  EXPECT_EQ(g.stage_of_layer("model.1"), 2);
  EXPECT_EQ(g.stage_of_layer("input"), 1);  // with the first layer

  // Empty = one stage.
  QatSchedule one(*m, QatScheduleOptions{});
  EXPECT_EQ(one.num_stages(), 1);
  EXPECT_EQ(one.stage_of_layer("model.22.cv2.0.2"), 0);
}

TEST(QatStages, Errors) {
  auto m = tiny_model();
  QatScheduleOptions o;
  o.stages = {"backbone", "neck"};  // the head in no stage
  EXPECT_THROW(QatSchedule(*m, o), UsageError);
  o.stages = {"backbone", "nek", "head"};  // names nothing
  EXPECT_THROW(QatSchedule(*m, o), UsageError);
  o.stages = {"*"};
  o.stage_epochs = 0;
  EXPECT_THROW(QatSchedule(*m, o), UsageError);
}

TEST(QatStages, SwitchesPerEpoch) {
  auto m = tiny_model();
  prepare(*m, QConfigMapping::load("quantization.yaml"));
  QatScheduleOptions o;
  o.stages = {"backbone", "neck", "head"};
  o.stage_epochs = 2;
  o.freeze_observer_epoch = 3;
  QatSchedule s(*m, o);
  EXPECT_EQ(s.stage_start(2), 4);
  const std::vector<std::string> probe = {"input_fq", "model.0.act_fq", "model.12.cv1.weight_fq",
                                          "model.22.cv2.0.0.pre_fq", "model.22.cv3.1.2.act_fq"};
  auto get = [&](const std::string& n) {
    for (auto& [name, fq] : named_quantizers(*m))
      if (name == n) return fq;
    ADD_FAILURE() << "no quantizer " << n;
    return FakeQuantize(nullptr);
  };
  for (const auto& n : probe) ASSERT_TRUE(get(n)) << n;
  for (int64_t e = 0; e < 7; ++e) {
    s.apply(*m, e);
    for (auto& [name, fq] : named_quantizers(*m)) {
      const int64_t k = s.stage_of_quantizer(name);
      ASSERT_GE(k, 0) << name;
      const int64_t start = 2 * k;
      EXPECT_EQ(fq->fake_quant_enabled(), e >= start) << name << " epoch " << e;
      // Observers: from the stage start until epoch 3, and in the stage's first epoch (the head: 4).
      const bool obs = name != "input_fq" && e >= start && (e < 3 || e == start);
      EXPECT_EQ(fq->observer_enabled(), obs) << name << " epoch " << e;
    }
  }
  // Applying an epoch again gives the same state (resume).
  s.apply(*m, 1);
  EXPECT_FALSE(get("model.12.cv1.weight_fq")->fake_quant_enabled());
  EXPECT_TRUE(get("model.0.act_fq")->fake_quant_enabled());
  EXPECT_TRUE(get("input_fq")->fake_quant_enabled());

  // A PTQ start never observes.
  o.observe = false;
  QatSchedule ptq(*m, o);
  ptq.apply(*m, 4);
  for (auto& [name, fq] : named_quantizers(*m)) {
    EXPECT_FALSE(fq->observer_enabled()) << name;
    EXPECT_TRUE(fq->fake_quant_enabled()) << name;
  }
}

TEST(QatStages, LaterStagesComputeInFloat) {
  // Stages [head, *] at epoch 0: only the head is quantized, so the tensors Detect reads are exactly the
  // float model's while the head outputs are not; at epoch 1 the neck outputs change too.
  auto fp = tiny_model();
  auto q = model::copy_model(*fp);
  prepare(*q, QConfigMapping::load("quantization.yaml"));
  const auto x = images(2, 64, 3);
  QatScheduleOptions o;
  o.stages = {"head", "*"};
  o.freeze_observer_epoch = 0;  // observers run in each stage's first epoch only
  QatSchedule s(*q, o);
  std::vector<torch::Tensor> f_in, q_in;
  const auto ref = fp->forward_raw(x, &f_in);
  s.apply(*q, 0);
  auto got = q->forward_raw(x, &q_in);
  ASSERT_EQ(q_in.size(), 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_TRUE(torch::equal(f_in[i], q_in[i])) << "level " << i;
  EXPECT_FALSE(torch::equal(testing::flat(ref), testing::flat(got)));
  s.apply(*q, 1);
  q->forward_raw(x, &q_in);
  for (size_t i = 0; i < 3; ++i) EXPECT_FALSE(torch::equal(f_in[i], q_in[i])) << "level " << i;
}

}  // namespace
}  // namespace yq::quant
