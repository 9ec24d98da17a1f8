// QConfig mapping: globs, last-match-wins, the YAML format and its errors, validation against a
// model's layer names, and every embedded qconfig (configs/quantization.yaml, configs/experiments/*).
#include "quant/qconfig.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "core/config.h"
#include "core/error.h"

namespace yq::quant {
namespace {

// The quantizable layers of yolov8n (SPEC-YOLOV8.md layer table; C2f repeats n = 1, 2, 2, 1, 1, 1, 1, 1).
std::vector<std::string> yolov8n_layers() {
  std::vector<std::string> names;
  auto c2f = [&](int i, int n) {
    names.push_back(fmt::format("model.{}.cv1", i));
    names.push_back(fmt::format("model.{}.cv2", i));
    for (int k = 0; k < n; ++k) {
      names.push_back(fmt::format("model.{}.m.{}.cv1", i, k));
      names.push_back(fmt::format("model.{}.m.{}.cv2", i, k));
    }
  };
  for (int i : {0, 1}) names.push_back(fmt::format("model.{}", i));
  c2f(2, 1);
  names.push_back("model.3");
  c2f(4, 2);
  names.push_back("model.5");
  c2f(6, 2);
  names.push_back("model.7");
  c2f(8, 1);
  names.push_back("model.9.cv1");
  names.push_back("model.9.cv2");
  c2f(12, 1);
  c2f(15, 1);
  names.push_back("model.16");
  c2f(18, 1);
  names.push_back("model.19");
  c2f(21, 1);
  for (const char* branch : {"cv2", "cv3"})
    for (int level = 0; level < 3; ++level)
      for (int k = 0; k < 3; ++k) names.push_back(fmt::format("model.22.{}.{}.{}", branch, level, k));
  return names;
}

TEST(Glob, StarAndQuestionMark) {
  EXPECT_TRUE(glob_match("model.22.cv3.*.2", "model.22.cv3.0.2"));
  EXPECT_TRUE(glob_match("model.22.cv3.*.2", "model.22.cv3.2.2"));
  EXPECT_FALSE(glob_match("model.22.cv3.*.2", "model.22.cv3.0.1"));
  EXPECT_FALSE(glob_match("model.22.cv3.*.2", "model.22.cv2.0.2"));
  EXPECT_TRUE(glob_match("model.22.*", "model.22.cv2.0.2"));  // '*' crosses dots
  EXPECT_FALSE(glob_match("model.22.*", "model.22"));
  EXPECT_TRUE(glob_match("model.?", "model.5"));
  EXPECT_FALSE(glob_match("model.?", "model.15"));
  EXPECT_TRUE(glob_match("*", "model.0"));
  EXPECT_TRUE(glob_match("*cv1", "model.2.m.0.cv1"));
  EXPECT_TRUE(glob_match("model.*.m.*.cv?", "model.4.m.1.cv2"));
  EXPECT_FALSE(glob_match("model.5", "model.50"));
  EXPECT_TRUE(glob_match("", ""));
  EXPECT_FALSE(glob_match("", "x"));
  EXPECT_TRUE(glob_match("a**b", "ab"));
}

QuantSpec int8_sym(int bits = 8) {
  QuantSpec s;
  s.scheme = QScheme::int8_symmetric();
  s.scheme.bits = bits;
  return s;
}

TEST(QConfigMapping, LastMatchingRuleWins) {
  QConfig a{int8_sym(), int8_sym()}, b{int8_sym(4), int8_sym()};
  QConfigMapping m(a);
  m.add_rule("model.*", b).add_rule("model.22.*", std::nullopt).add_rule("model.22.cv2.*", a);
  EXPECT_EQ(m.qconfig_for("model.3"), std::optional<QConfig>(b));
  EXPECT_EQ(m.qconfig_for("model.22.cv3.0.2"), std::nullopt);
  EXPECT_EQ(m.qconfig_for("model.22.cv2.0.2"), std::optional<QConfig>(a));
  EXPECT_EQ(m.qconfig_for("other"), std::optional<QConfig>(a));  // the default
}

TEST(QConfigMapping, ValidateNamesTheDeadPattern) {
  QConfigMapping m = QConfigMapping::from_yaml(R"(
weight: {observer: per_channel_minmax, signed: true, symmetric: true, per_channel: true}
activation: {observer: minmax}
overrides:
  - pattern: model.22.cv3.*.2
    float: true
  - pattern: model.99.*
    float: true
)",
                                               "my.yaml");
  try {
    m.validate(yolov8n_layers());
    FAIL() << "no exception";
  } catch (const UsageError& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("'model.99.*'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("my.yaml:7"), std::string::npos) << msg;
    EXPECT_NE(msg.find("model.0"), std::string::npos) << msg;
  }
}

TEST(QConfigYaml, OverridesMergeOverTheDefault) {
  QConfigMapping m = QConfigMapping::from_yaml(R"(
name: t
weight: {observer: moving_average_per_channel_minmax, signed: true, symmetric: true, per_channel: true, axis: 0}
activation: {observer: histogram, bins: 1024}
overrides:
  - pattern: [model.6.*, model.7]
    weight: {bits: 4, narrow_range: true}
  - pattern: model.9.*
    activation: null
  - pattern: model.22.cv2.*.2
    float: true
)",
                                               "t.yaml");
  EXPECT_EQ(m.name(), "t");
  const QConfig& d = m.default_qconfig();
  ASSERT_TRUE(d.weight && d.activation);
  EXPECT_EQ(d.weight->scheme, QScheme::int8_symmetric_per_channel(0));
  EXPECT_EQ(d.activation->observer, "histogram");
  EXPECT_EQ(d.activation->bins, 1024);
  EXPECT_EQ(d.activation->scheme, QScheme::uint8_affine());
  ASSERT_EQ(m.rules().size(), 4u);
  EXPECT_EQ(m.rules()[0].line, 6);
  auto six = m.qconfig_for("model.6.m.0.cv1");
  ASSERT_TRUE(six && six->weight);
  EXPECT_EQ(six->weight->scheme.bits, 4);
  EXPECT_TRUE(six->weight->scheme.narrow_range);
  EXPECT_TRUE(six->weight->scheme.per_channel) << "unchanged fields come from the default";
  EXPECT_EQ(six->weight->observer, "moving_average_per_channel_minmax");
  EXPECT_EQ(six->activation, d.activation);
  EXPECT_EQ(m.qconfig_for("model.7")->weight->scheme.bits, 4);
  auto nine = m.qconfig_for("model.9.cv1");
  ASSERT_TRUE(nine);
  EXPECT_FALSE(nine->activation);
  EXPECT_EQ(nine->weight, d.weight);
  EXPECT_FALSE(m.qconfig_for("model.22.cv2.1.2").has_value());
  EXPECT_NO_THROW(m.validate(yolov8n_layers()));

  // to_yaml reads back as the same mapping.
  QConfigMapping back = QConfigMapping::from_yaml(m.to_yaml(), "roundtrip");
  EXPECT_EQ(back.default_qconfig(), m.default_qconfig());
  ASSERT_EQ(back.rules().size(), m.rules().size());
  for (size_t i = 0; i < m.rules().size(); ++i) {
    EXPECT_EQ(back.rules()[i].pattern, m.rules()[i].pattern);
    EXPECT_EQ(back.rules()[i].qconfig, m.rules()[i].qconfig);
  }
}

void expect_error(const std::string& yaml, const std::string& needle) {
  try {
    QConfigMapping::from_yaml(yaml, "bad.yaml");
    ADD_FAILURE() << "no exception for: " << yaml;
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(QConfigYaml, ErrorsNameFileLineAndKey) {
  expect_error("weight: {bit: 4}\nactivation: null\n",
               "bad.yaml:1: unknown key 'bit' in weight (did you mean 'bits'?)");
  expect_error("weight: null\nactivation:\n  bits: 9\n", "bad.yaml:3");
  expect_error("weight: null\nactivation:\n  bits: 9\n", "bits must be in 2..8");
  expect_error("weight: {observer: minmax, per_channel: true}\nactivation: null\n", "per-channel");
  expect_error("weight: {observer: minmaxx}\nactivation: null\n", "unknown observer 'minmaxx'");
  expect_error("weight: {bits: four}\nactivation: null\n", "'bits' must be an integer, found 'four'");
  expect_error("weight: null\n", "needs both 'weight' and 'activation'");
  expect_error(
      "weight: null\nactivation: null\noverrides:\n  - pattern: model.1\n    float: true\n    weight: {bits: "
      "4}\n",
      "bad.yaml:4");
  expect_error("weight: null\nactivation: null\noverrides:\n  - float: true\n", "needs 'pattern'");
  expect_error("weight: null\nactivation: null\nlayers: []\n", "unknown key 'layers'");
  expect_error("weight: [1, 2\n", "invalid YAML");
}

TEST(QConfigYaml, EveryEmbeddedQconfigParses) {
  std::vector<std::string> qconfigs;
  for (const auto& n : builtin_config_names())
    if (n == "quantization.yaml" || n.rfind("experiments/", 0) == 0) qconfigs.push_back(n);
  ASSERT_GE(qconfigs.size(), 4u);
  for (const auto& n : qconfigs) {
    SCOPED_TRACE(n);
    QConfigMapping m = QConfigMapping::from_yaml(builtin_config(n), n);
    EXPECT_NO_THROW(m.validate(yolov8n_layers()));
    EXPECT_FALSE(m.name().empty());
    EXPECT_TRUE(m.default_qconfig().weight && m.default_qconfig().activation);
  }
}

TEST(QConfigYaml, Profiles) {
  auto trt = QConfigMapping::load("configs/experiments/exp1_symmetric_quant.yaml").default_qconfig();
  EXPECT_TRUE(trt.weight->scheme.symmetric && trt.weight->scheme.per_channel && trt.weight->scheme.is_signed);
  EXPECT_TRUE(trt.activation->scheme.symmetric && trt.activation->scheme.is_signed);
  EXPECT_FALSE(trt.activation->scheme.per_channel);
  EXPECT_EQ(trt.activation->scheme.symmetric_zero_point(), 0);

  auto cpu = QConfigMapping::load("experiments/exp2_asymmetric_quant.yaml").default_qconfig();
  EXPECT_TRUE(cpu.weight->scheme.symmetric && cpu.weight->scheme.per_channel && cpu.weight->scheme.is_signed);
  EXPECT_FALSE(cpu.activation->scheme.symmetric || cpu.activation->scheme.is_signed);
  EXPECT_EQ(QConfigMapping::load("quantization.yaml").default_qconfig(), cpu)
      << "the default is the CPU profile";

  auto mixed = QConfigMapping::load("experiments/exp3_mixed_precision.yaml");
  EXPECT_EQ(mixed.qconfig_for("model.6.m.1.cv2")->weight->scheme.bits, 4);
  EXPECT_EQ(mixed.qconfig_for("model.5")->weight->scheme.bits, 4);
  EXPECT_EQ(mixed.qconfig_for("model.0")->weight->scheme.bits, 8);
  EXPECT_EQ(mixed.qconfig_for("model.22.cv3.1.1")->weight->scheme.bits, 8);
  EXPECT_FALSE(mixed.qconfig_for("model.22.cv3.1.2").has_value());
  EXPECT_FALSE(mixed.qconfig_for("model.22.cv2.0.2").has_value());

  EXPECT_THROW(QConfigMapping::load("no_such_qconfig.yaml"), UsageError);
}

TEST(QConfigYaml, LoadsAFile) {
  const auto path = std::filesystem::temp_directory_path() / "yq_qconfig_test.yaml";
  {
    std::ofstream f(path);
    f << "weight: null\nactivation: {observer: percentile, percentile: 99.9}\n";
  }
  QConfigMapping m = QConfigMapping::load(path.string());
  EXPECT_EQ(m.origin(), path.string());
  EXPECT_FALSE(m.default_qconfig().weight);
  EXPECT_EQ(m.default_qconfig().activation->percentile, 99.9);
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace yq::quant
