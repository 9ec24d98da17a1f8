#include "model/pt_load.h"

#include <gtest/gtest.h>

#include <string>

#include "core/error.h"
#include "model/pickle_test_util.h"

namespace yq::model {
namespace {

using yq::testing::fixture_dir;

// Python's float32 forward pass of the tiny EMA (make_reference_pt.py) against ours with its weights.
// Outputs are box coordinates in pixels (0..~40 at 32x32) and sigmoid scores.
constexpr double kForwardTolerance = 1e-4;

TEST(PtLoad, TinyCheckpointForwardMatchesPython) {
  LoadReport report;
  YoloV8 model = model_from_checkpoint(fixture_dir() + "/tiny.pt", {}, &report);
  EXPECT_TRUE(report.complete()) << report.summary();
  EXPECT_EQ(report.loaded, 355);
  EXPECT_EQ(report.expected, 355);
  EXPECT_EQ(model->nc(), 3);
  EXPECT_EQ(model->names(), (std::vector<std::string>{"class0", "class1", "class2"}));
  EXPECT_DOUBLE_EQ(model->width_multiple(), 0.0625);  // from the pickled yaml's scales

  PtArchive fwd = PtArchive::open(fixture_dir() + "/tiny_forward.pt");
  torch::Tensor x = materialize(fwd, *fwd.root()->get("input")->tensor);
  torch::Tensor want = materialize(fwd, *fwd.root()->get("output")->tensor);
  model->eval();
  torch::NoGradGuard no_grad;
  torch::Tensor got = model->forward(x);
  ASSERT_EQ(got.sizes(), want.sizes());
  double max_abs = (got - want).abs().max().item<double>();
  RecordProperty("max_abs_diff", std::to_string(max_abs));
  std::printf("tiny forward: max |C++ - Python| = %.3g over %lld values\n", max_abs,
              static_cast<long long>(want.numel()));
  EXPECT_LT(max_abs, kForwardTolerance);
  // Not a trivial agreement: the outputs vary across anchors and classes.
  EXPECT_GT(want.std().item<double>(), 0.1);
}

TEST(PtLoad, InfersStandardScalesFromShapes) {
  for (const char* name : {"yolov8n", "yolov8s"}) {
    YoloV8 ref(parse_model_name(name, 7));
    PtCheckpoint ck;
    ck.path = std::string(name) + ".pt";
    for (const auto& p : ref->named_parameters(true)) ck.tensors.emplace_back(p.key(), p.value());
    for (const auto& b : ref->named_buffers(true)) ck.tensors.emplace_back(b.key(), b.value());
    ModelSpec spec = infer_spec(ck);  // no yaml: shapes only
    EXPECT_EQ(spec.scale, std::string(name).substr(6)) << name;
    EXPECT_EQ(spec.nc, 7) << name;
    EXPECT_EQ(spec.depth, 0) << name;  // a standard scale: no overrides
  }
  PtCheckpoint tiny = read_pt_checkpoint(fixture_dir() + "/tiny.pt");
  tiny.yaml = nullptr;  // width 1/16 is no standard scale
  EXPECT_THROW(infer_spec(tiny), Error);
  PtCheckpoint pick = read_pt_checkpoint(fixture_dir() + "/pick.pt");
  EXPECT_THROW(infer_spec(pick), Error);  // one Conv: not the YOLOv8 table
}

TEST(PtLoad, TransferLearningSkipsOnlyTheClassHead) {
  LoadReport report;
  ImportOptions opt;
  opt.nc = 7;
  YoloV8 model = model_from_checkpoint(fixture_dir() + "/tiny.pt", opt, &report);
  EXPECT_EQ(model->nc(), 7);
  EXPECT_EQ(report.skipped.size(), 6u);  // cv3.{0,1,2}.2.{weight,bias}
  EXPECT_EQ(report.loaded, 355 - 6);
  EXPECT_TRUE(report.complete()) << report.summary();
  EXPECT_NE(report.summary().find("class head not loaded"), std::string::npos);
  PtCheckpoint ck = read_pt_checkpoint(fixture_dir() + "/tiny.pt");
  for (const auto& p : model->named_parameters(true)) {
    if (p.key().find(".cv3.") != std::string::npos && p.key().find(".2.") != std::string::npos) continue;
    EXPECT_TRUE(p.value().equal(*ck.find(p.key()))) << p.key();
  }
  EXPECT_EQ(model->names().at(6), "class6");  // names belong to the old classes: not taken
}

TEST(PtLoad, StrictLoadsRefusePartialMatchesAndCopyNothing) {
  PtCheckpoint ck = read_pt_checkpoint(fixture_dir() + "/tiny.pt");
  YoloV8 model(infer_spec(ck));
  torch::Tensor before = model->named_parameters()["model.0.conv.weight"].clone();

  auto dropped = ck.tensors;
  dropped.erase(dropped.begin() + 5);
  dropped.emplace_back("model.99.extra", torch::zeros({1}));
  try {
    load_state_dict(*model, dropped);
    FAIL() << "strict load accepted a missing tensor";
  } catch (const Error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("missing: " + ck.tensors[5].first), std::string::npos) << m;
    EXPECT_NE(m.find("unexpected: model.99.extra"), std::string::npos) << m;
  }
  EXPECT_TRUE(model->named_parameters()["model.0.conv.weight"].equal(before));  // nothing copied

  auto wrong = ck.tensors;
  wrong[0].second = torch::zeros({8, 3, 5, 5});
  try {
    load_state_dict(*model, wrong);
    FAIL() << "strict load accepted a wrong shape";
  } catch (const Error& e) {
    EXPECT_NE(
        std::string(e.what()).find("model.0.conv.weight: checkpoint [8, 3, 5, 5] vs model [8, 3, 3, 3]"),
        std::string::npos)
        << e.what();
  }
  LoadOptions lax;
  lax.strict = false;
  LoadReport r = load_state_dict(*model, dropped, lax);
  EXPECT_EQ(r.loaded, 354);
  EXPECT_EQ(r.missing.size(), 1u);
  EXPECT_EQ(r.unexpected.size(), 1u);
  EXPECT_TRUE(model->named_parameters()["model.0.conv.weight"].equal(*ck.find("model.0.conv.weight")));
}

}  // namespace
}  // namespace yq::model
