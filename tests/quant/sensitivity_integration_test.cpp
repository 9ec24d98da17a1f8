// `yoloqat sensitivity` end to end on the tiny data set: from an fp32 checkpoint (prepared and
// calibrated by the command) with metric=sqnr, from a PTQ checkpoint with metric=map; the JSON and the
// qconfig YAML it writes (which loads and prepares a model with exactly the top-k layers float); the
// errors for a wrong nc and for a quantized checkpoint asked for another qconfig.
#include <gtest/gtest.h>

#include <set>

#include "cli/command.h"
#include "core/error.h"
#include "core/fs.h"
#include "fixtures.h"
#include "model/checkpoint.h"
#include "quant/prepare.h"
#include "quant/qcheckpoint.h"
#include "quant/qconfig.h"
#include "quant_test_util.h"
#include "test_util.h"

namespace yq::quant {
namespace {

using yq::testing::TempDir;

// Four quantized layers (conv, conv, add, head), the rest float: 10 evaluations per analysis.
constexpr const char* kFewLayers = R"(name: few
weight: null
activation: null
overrides:
  - pattern: [model.0, model.2.cv1, model.2.m.0.add, model.22.cv3.0.2]
    weight: {observer: per_channel_minmax, bits: 8, signed: true, symmetric: true, per_channel: true}
    activation: {observer: minmax, bits: 8}
)";
const std::set<std::string> kQuantized = {"model.0", "model.2.cv1", "model.2.m.0.add", "model.22.cv3.0.2"};

class SensitivityCli : public ::testing::Test {
 protected:
  void SetUp() override {
    at::set_num_threads(2);
    data_yaml_ = yq::testing::write_tiny_dataset(dir_.path(), 8, 8, 2, 96, 64);
    qconfig_ = dir_ / "few.yaml";
    atomic_write(qconfig_, kFewLayers);
  }
  std::vector<std::string> args(const std::string& weights, const std::string& name) {
    return {"data=" + data_yaml_.string(),
            "weights=" + weights,
            "imgsz=64",
            "batch=4",
            "batches=2",
            "workers=1",
            "project=" + dir_.path().string(),
            "name=" + name,
            "threads=2"};
  }
  TempDir dir_{"senscli"};
  fs::path data_yaml_, qconfig_;
};

TEST_F(SensitivityCli, Fp32SqnrPtqMapAndErrors) {
  // An fp32 checkpoint of the tiny model with the data set's 7 classes.
  auto fp = testing::tiny_model(5, 7);
  const fs::path fp_path = dir_ / "fp32.pt";
  model::save_checkpoint(fp_path, fp, nullptr, nullptr, {{"kind", "fp32"}});

  auto a = args(fp_path.string(), "s1");
  a.insert(a.end(), {"topk=3", "qconfig=" + qconfig_.string()});
  cli::run_subcommand("sensitivity", a);
  const fs::path out = dir_ / "reports/s1";
  ASSERT_TRUE(fs::exists(out / "sensitivity.json"));
  ASSERT_TRUE(fs::exists(out / "sensitivity_qconfig.yaml"));
  EXPECT_TRUE(fs::exists(out / "args.yaml"));
  const auto j = nlohmann::json::parse(read_text(out / "sensitivity.json"));
  EXPECT_EQ(j["metric"], "sqnr");
  EXPECT_EQ(j["checkpoint_kind"], "fp32");
  EXPECT_EQ(j["images"], 8);
  EXPECT_TRUE(j["baseline"]["fp32"].is_null());  // infinite: same outputs
  ASSERT_TRUE(j["baseline"]["all_quantized"].is_number());
  auto m = testing::tiny_model(5, 7);
  const auto names = quantizable_layers(*m);
  ASSERT_EQ(j["layers"].size(), kQuantized.size());
  EXPECT_EQ(j["float_layers"].size(), names.size() - kQuantized.size());
  std::vector<std::string> top;
  for (size_t i = 0; i < j["layers"].size(); ++i) {
    const auto& l = j["layers"][i];
    EXPECT_EQ(l["rank"], int(i) + 1);
    EXPECT_TRUE(l["only_this"].is_number()) << l.dump();
    EXPECT_GE(l["all_but_this"].get<double>(), j["baseline"]["all_quantized"].get<double>() - 1.0)
        << l.dump();
    EXPECT_TRUE(kQuantized.count(l["name"])) << l.dump();
    if (i < 3) top.push_back(l["name"]);
  }
  EXPECT_EQ(j["topk"], top);

  // The qconfig: loads, keeps the top 3 float (of the 4 quantized layers one stays quantized), prepares.
  const auto q = QConfigMapping::load((out / "sensitivity_qconfig.yaml").string());
  EXPECT_EQ(q.name(), "few-sensitivity");
  auto rep = prepare(*m, q);
  std::set<std::string> quantized, expect = kQuantized;
  for (const auto& l : rep.layers)
    if ((l.weight || l.activation) && l.kind != "input") quantized.insert(l.name);
  for (const auto& t : top) expect.erase(t);
  EXPECT_EQ(quantized.size(), 1u);
  EXPECT_EQ(quantized, expect);

  // A PTQ checkpoint is analysed with its own qconfig; metric=map validates on the split.
  auto p = testing::tiny_model(5, 7);
  const auto mapping = QConfigMapping::load(qconfig_.string());
  prepare(*p, mapping);
  {
    torch::NoGradGuard no_grad;
    enable_observers(*p, true);
    enable_fake_quant(*p, false);
    p->forward_raw(testing::images(2, 64, 3));
    freeze_quantizers(*p);
    enable_fake_quant(*p, true);
  }
  const fs::path ptq_path = dir_ / "ptq.pt";
  save_quantized_checkpoint(ptq_path, p, nullptr, nullptr, {}, mapping, "ptq");
  auto b = args(ptq_path.string(), "s2");
  b.insert(b.end(), {"metric=map", "critical=int8", "topk=2"});
  cli::run_subcommand("sensitivity", b);
  const auto j2 = nlohmann::json::parse(read_text(dir_ / "reports/s2/sensitivity.json"));
  EXPECT_EQ(j2["metric"], "map");
  EXPECT_EQ(j2["checkpoint_kind"], "ptq");
  EXPECT_EQ(j2["qconfig"]["name"], "few");
  EXPECT_EQ(j2["layers"].size(), kQuantized.size());
  for (const auto& l : j2["layers"]) {
    EXPECT_GE(l["only_this"].get<double>(), 0.0);
    EXPECT_LE(l["only_this"].get<double>(), 1.0);
  }
  // critical=int8 on an all-8-bit qconfig changes nothing: the written qconfig equals the base.
  const auto q2 = QConfigMapping::load((dir_ / "reports/s2/sensitivity_qconfig.yaml").string());
  EXPECT_EQ(q2.rules().size(), mapping.rules().size());

  // Errors: another qconfig than the PTQ checkpoint's; a checkpoint with another nc.
  auto c = args(ptq_path.string(), "bad");
  c.push_back("qconfig=quantization.yaml");
  EXPECT_THROW(cli::run_subcommand("sensitivity", c), UsageError);
  auto wrong = testing::tiny_model(5, 3);
  const fs::path wrong_path = dir_ / "nc3.pt";
  model::save_checkpoint(wrong_path, wrong, nullptr, nullptr, {{"kind", "fp32"}});
  try {
    cli::run_subcommand("sensitivity", args(wrong_path.string(), "bad2"));
    ADD_FAILURE() << "a 3-class checkpoint on a 7-class data set was accepted";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("3 classes"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace yq::quant
