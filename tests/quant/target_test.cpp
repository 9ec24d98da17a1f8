// Deployment targets: names, the exactness rule per CPU, the qconfig's `target:` key, and the grids
// prepare() gives each quantizer on each target.
#include "quant/target.h"

#include <gtest/gtest.h>

#include <string>

#include "core/error.h"
#include "quant/prepare.h"
#include "quant/qconfig.h"
#include "quant_test_util.h"

namespace yq::quant {
namespace {

using testing::tiny_model;

CpuFeatures x86_cpu(bool vnni) {
  CpuFeatures f;
  f.model = vnni ? "vnni box" : "avx2 box";
  f.x86 = f.avx2 = true;
  f.avx512f = f.avx512bw = f.avx512_vnni = vnni;
  return f;
}

bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(Target, NamesRoundTripAndUnknownOnesListTheKnown) {
  for (Target t : all_targets()) EXPECT_EQ(parse_target(target_name(t)), t);
  try {
    parse_target("tflite");
    FAIL();
  } catch (const UsageError& e) {
    EXPECT_TRUE(has(e.what(), "x86, x86-vnni, arm, tensorrt")) << e.what();
  }
  EXPECT_EQ(default_engine(Target::kArm), "qnnpack");
  EXPECT_EQ(default_engine(Target::kX86), "onednn");
}

// Hand-computed: vpmaddubsw adds two u8 x s8 products into int16 (max 32767).
TEST(Target, PairBoundsAndExactness) {
  EXPECT_EQ(target_pair_bound(Target::kX86), 32512);       // 2 x 127 x 128
  EXPECT_EQ(target_pair_bound(Target::kX86Vnni), 65280);   // 2 x 255 x 128
  EXPECT_EQ(target_pair_bound(Target::kArm), 64770);       // 2 x 255 x 127
  EXPECT_EQ(target_pair_bound(Target::kTensorRT), 64770);  // codes 1..255 in uint8
  const CpuFeatures avx2 = x86_cpu(false), vnni = x86_cpu(true);
  for (Target t : all_targets()) {
    const int64_t b = target_pair_bound(t);
    EXPECT_TRUE(int8_exactness(b, vnni, "onednn").exact) << target_name(t);
    EXPECT_TRUE(int8_exactness(b, vnni, "onnxruntime").exact) << target_name(t);
    EXPECT_TRUE(int8_exactness(b, avx2, "qnnpack").exact) << target_name(t);
    EXPECT_EQ(int8_exactness(b, avx2, "onednn").exact, t == Target::kX86) << target_name(t);
    EXPECT_EQ(int8_exactness(b, avx2, "onnxruntime").exact, t == Target::kX86) << target_name(t);
  }
  EXPECT_TRUE(int8_exactness(kInt16Max, avx2, "onednn").exact);
  EXPECT_FALSE(int8_exactness(kInt16Max + 1, avx2, "onednn").exact);
  // 7-bit weights with full-range activations also fit (2 x 255 x 64 = 32640).
  EXPECT_TRUE(int8_exactness(pair_bound(255, 64), avx2, "onednn").exact);
  CpuFeatures arm;
  arm.arm = true;
  arm.model = "cortex";
  EXPECT_TRUE(int8_exactness(65280, arm, "onnxruntime").exact);
  // The refusal names the file, the target, the missing feature and the ways out.
  const auto e = int8_exactness(65280, avx2, "onednn");
  const std::string msg = inexact_message("m.int8", "x86-vnni", e);
  for (const std::string part : {"m.int8", "target x86-vnni", "avx2 box", "no VNNI", "vpmaddubsw", "65280",
                                 "target=x86", "allow_inexact=true"})
    EXPECT_TRUE(has(msg, part)) << part << " not in: " << msg;
  CpuFeatures capped = apply_onednn_cap(vnni, "AVX2");
  EXPECT_TRUE(has(int8_exactness(65280, capped, "onednn").why, "capped at AVX2"));
}

TEST(Target, QconfigKeyRoundTripsAndChecksTheSpecs) {
  const std::string yaml =
      "name: t\ntarget: x86\nweight: {observer: per_channel_minmax, signed: true, symmetric: true, "
      "per_channel: "
      "true}\nactivation: {observer: minmax}\n";
  const auto m = QConfigMapping::from_yaml(yaml, "t.yaml");
  ASSERT_TRUE(m.target().has_value());
  EXPECT_EQ(*m.target(), Target::kX86);
  const auto back = QConfigMapping::from_yaml(m.to_yaml(), "back");
  EXPECT_EQ(back.to_yaml(), m.to_yaml());
  EXPECT_EQ(*back.target(), Target::kX86);
  // The specs are kept as written; the target applies per quantizer in prepare().
  EXPECT_EQ(m.default_qconfig().activation->scheme.bits, 8);
  // No target: none recorded (checkpoints of before targets).
  EXPECT_FALSE(QConfigMapping::from_yaml("weight: null\nactivation: {observer: minmax}\n", "x").target());
  // Signed activations cannot run on a CPU target: the file, line and key are named.
  try {
    QConfigMapping::from_yaml(
        "target: x86\nweight: null\nactivation: {observer: minmax, signed: true, symmetric: true}\n",
        "bad.yaml");
    FAIL();
  } catch (const UsageError& e) {
    EXPECT_TRUE(has(e.what(), "bad.yaml:1")) << e.what();
    EXPECT_TRUE(has(e.what(), "target=tensorrt")) << e.what();
  }
  EXPECT_THROW(QConfigMapping::from_yaml("target: x87\nweight: null\nactivation: null\n", "bad.yaml"),
               UsageError);
  // TensorRT runs 8-bit activations only.
  EXPECT_THROW(QConfigMapping::from_yaml(
                   "target: tensorrt\nweight: null\nactivation: {observer: minmax, bits: 4}\n", "bad.yaml"),
               UsageError);
  // The built-in profiles carry their targets.
  EXPECT_EQ(*QConfigMapping::load("quantization.yaml").target(), Target::kX86);
  EXPECT_EQ(*QConfigMapping::load("experiments/exp1_symmetric_quant.yaml").target(), Target::kTensorRT);
  EXPECT_EQ(*QConfigMapping::load("experiments/exp2_asymmetric_quant.yaml").target(), Target::kX86);
  EXPECT_EQ(*QConfigMapping::load("experiments/exp3_mixed_precision.yaml").target(), Target::kX86);
}

FakeQuantize quantizer(model::YoloV8Impl& m, const std::string& name) {
  for (auto& [n, fq] : named_quantizers(m))
    if (n == name) return fq;
  ADD_FAILURE() << "no quantizer " << name;
  return FakeQuantize(nullptr);
}

// What each quantizer gets on each target from the default (8-bit uint8) CPU qconfig.
TEST(Target, PrepareGivesEachQuantizerItsTargetGrid) {
  struct Want {
    Target t;
    int64_t act_max, pre_max, head_max, input_max, w_min;
  };
  for (const Want& w :
       {Want{Target::kX86, 127, 255, 255, 127, -128}, Want{Target::kX86Vnni, 255, 255, 255, 255, -128},
        Want{Target::kArm, 255, 255, 255, 255, -127}}) {
    SCOPED_TRACE(target_name(w.t));
    auto mapping = QConfigMapping::load("quantization.yaml");
    mapping.set_target(w.t);
    auto m = tiny_model();
    prepare(*m, mapping);
    EXPECT_EQ(quantizer(*m, "model.0.act_fq")->scheme().quant_max(), w.act_max);
    EXPECT_EQ(quantizer(*m, "model.2.m.0.add.out_fq")->scheme().quant_max(), w.act_max);
    EXPECT_EQ(quantizer(*m, "model.11.out_fq")->scheme().quant_max(), w.act_max);
    EXPECT_EQ(quantizer(*m, "model.0.pre_fq")->scheme().quant_max(), w.pre_max);
    EXPECT_EQ(quantizer(*m, "model.22.cv3.0.2.act_fq")->scheme().quant_max(), w.head_max);
    EXPECT_EQ(quantizer(*m, "input_fq")->scheme().quant_max(), w.input_max);
    // [0, 1] onto the input grid: scale 1 / quant_max.
    EXPECT_FLOAT_EQ(quantizer(*m, "input_fq")->qparams().scale.item<float>(), 1.0f / float(w.input_max));
    EXPECT_EQ(quantizer(*m, "model.0.weight_fq")->scheme().quant_min(), w.w_min);
    EXPECT_EQ(int8_pair_bound(*m), pair_bound(w.act_max, -w.w_min));
  }
  // TensorRT: symmetric int8 activations and weights in [-127, 127].
  auto mapping = QConfigMapping::load("quantization.yaml");
  mapping.set_target(Target::kTensorRT);
  auto m = tiny_model();
  prepare(*m, mapping);
  const QScheme& a = quantizer(*m, "model.0.act_fq")->scheme();
  EXPECT_TRUE(a.is_signed && a.symmetric && a.narrow_range);
  EXPECT_EQ(quantizer(*m, "model.0.weight_fq")->scheme().quant_min(), -127);
  // Without a target the specs are used as they are (checkpoints of before targets).
  auto legacy = QConfigMapping::from_yaml(QConfigMapping::load("quantization.yaml").to_yaml(), "legacy");
  legacy.set_target(std::nullopt);
  auto l = tiny_model();
  prepare(*l, legacy);
  EXPECT_EQ(quantizer(*l, "model.0.act_fq")->scheme().quant_max(), 255);
  EXPECT_EQ(int8_pair_bound(*l), 65280);
}

}  // namespace
}  // namespace yq::quant
