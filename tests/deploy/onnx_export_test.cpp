#include "deploy/onnx_export.h"

#include <gtest/gtest.h>

#include <map>

#include "core/error.h"
#include "test_util.h"
#include "deploy/export_fixtures.h"
#include "deploy/ort_util.h"
#include "fixtures.h"

namespace yq::deploy {
namespace {

using yq::testing::compare;
using yq::testing::Diff;
using yq::testing::TempDir;

// The tiny YOLOv8 of tests/fixtures.h, randomized for export tests.
model::YoloV8 tiny_model(const fs::path& dir, int64_t nc, uint64_t seed) {
  model::YoloV8 m(model::parse_model_name(yq::testing::write_tiny_model_yaml(dir).string(), nc));
  yq::testing::randomize_for_export(m, seed);
  return m;
}

std::map<std::string, std::string> metadata(const onnx::ModelProto& m) {
  std::map<std::string, std::string> out;
  for (const auto& p : m.metadata_props()) out[p.key()] = p.value();
  return out;
}

TEST(OnnxExport, FoldConvBnEqualsConvThenBn) {
  torch::manual_seed(3);
  model::ConvBnAct m(4, 6, 3, 2);
  {
    torch::NoGradGuard ng;
    m->bn->weight.uniform_(0.5, 1.5);
    m->bn->bias.normal_();
    m->bn->running_mean.normal_();
    m->bn->running_var.uniform_(0.2, 3.0);
  }
  m->eval();
  auto x = torch::randn({2, 4, 9, 7});
  auto ref = m->bn->forward(m->conv->forward(x));
  auto [w, b] = fold_conv_bn(*m->conv, *m->bn);
  auto y = torch::conv2d(x, w, b, /*stride=*/2, /*padding=*/1);
  EXPECT_LT((y - ref).abs().max().item<double>(), 1e-5);
  EXPECT_EQ(w.sizes(), m->conv->weight.sizes());
  EXPECT_EQ(b.sizes(), torch::IntArrayRef({6}));
}

TEST(OnnxExport, NamesAsPythonDict) {
  EXPECT_EQ(python_names_dict({}), "{}");
  EXPECT_EQ(python_names_dict({"stop", "no entry"}), "{0: 'stop', 1: 'no entry'}");
  // Python's repr: double quotes when the text holds a single quote only; backslashes escaped.
  EXPECT_EQ(python_names_dict({"driver's", "a\\b", "q'\"x"}), "{0: \"driver's\", 1: 'a\\\\b', 2: 'q\\'\"x'}");
}

TEST(OnnxExport, GraphHasTheReferenceInterface) {
  TempDir t("onnx_iface");
  auto m = tiny_model(t.path(), 3, 1);
  OnnxExportOptions o;
  o.height = 64, o.width = 96;
  const auto r = export_onnx(*m, t / "m.onnx", o);
  EXPECT_EQ(r.anchors, 8 * 12 + 4 * 6 + 2 * 3);
  EXPECT_EQ(r.bytes, int64_t(fs::file_size(t / "m.onnx")));

  const auto model = read_onnx(t / "m.onnx");
  EXPECT_NO_THROW(check_onnx(model));
  ASSERT_EQ(model.graph().input_size(), 1);
  ASSERT_EQ(model.graph().output_size(), 1);
  EXPECT_EQ(model.graph().input(0).name(), "images");
  EXPECT_EQ(onnx_shape_text(model.graph().input(0)), "1 x 3 x 64 x 96");
  EXPECT_EQ(model.graph().output(0).name(), "output0");
  EXPECT_EQ(onnx_shape_text(model.graph().output(0)), "1 x 7 x 126");
  EXPECT_EQ(model.opset_import(0).version(), 17);

  auto meta = metadata(model);
  EXPECT_EQ(meta["stride"], "32");
  EXPECT_EQ(meta["task"], "detect");
  EXPECT_EQ(meta["imgsz"], "[64, 96]");
  EXPECT_EQ(meta["batch"], "1");
  EXPECT_EQ(meta["names"], "{0: 'sign_0', 1: 'sign_1', 2: 'sign_2'}");
  for (const char* k : {"description", "author", "date", "version"}) EXPECT_FALSE(meta[k].empty()) << k;

  // BN is folded: no BatchNormalization node; every conv weight is an initializer named like the
  // reference's state dict, with a bias.
  std::map<std::string, int> ops;
  for (const auto& n : model.graph().node()) ops[n.op_type()]++;
  EXPECT_EQ(ops.count("BatchNormalization"), 0u);
  std::set<std::string> inits;
  for (const auto& i : model.graph().initializer()) inits.insert(i.name());
  EXPECT_TRUE(inits.count("model.0.conv.weight") && inits.count("model.0.conv.bias"));
  EXPECT_TRUE(inits.count("model.22.cv3.2.2.weight") && inits.count("model.22.cv3.2.2.bias"));
  EXPECT_TRUE(inits.count("model.22.dfl.conv.weight"));
  int64_t convs = 0;
  for (auto& mod : m->modules(false)) convs += mod->as<torch::nn::Conv2dImpl>() != nullptr;
  EXPECT_EQ(ops["Conv"], convs);
  EXPECT_EQ(ops["Resize"], 2);
  EXPECT_EQ(ops["MaxPool"], 3);
}

TEST(OnnxExport, DynamicBatchAndOpset13) {
  TempDir t("onnx_dyn");
  auto m = tiny_model(t.path(), 2, 2);
  OnnxExportOptions o;
  o.height = o.width = 64;
  o.dynamic = true;
  o.opset = 13;
  export_onnx(*m, t / "m.onnx", o);
  const auto model = read_onnx(t / "m.onnx");
  EXPECT_EQ(onnx_shape_text(model.graph().input(0)), "batch x 3 x 64 x 64");
  EXPECT_EQ(onnx_shape_text(model.graph().output(0)), "batch x 6 x 84");
  EXPECT_EQ(model.opset_import(0).version(), 13);
  // Shape inference carries the symbolic batch through the whole graph to the output.
  const auto inferred = check_onnx(model);
  EXPECT_EQ(onnx_shape_text(inferred.graph().output(0)), "batch x 6 x 84");
}

TEST(OnnxExport, RefusesBadSizesAndOpsets) {
  TempDir t("onnx_bad");
  auto m = tiny_model(t.path(), 2, 3);
  OnnxExportOptions o;
  o.height = 100;
  EXPECT_THROW(build_onnx_model(*m, o), UsageError);
  o.height = 64;
  o.opset = 11;
  EXPECT_THROW(build_onnx_model(*m, o), UsageError);
  EXPECT_FALSE(fs::exists(t / "m.onnx"));
}

// The exported graph run by ONNX Runtime equals our forward pass.
TEST(OnnxExport, OnnxRuntimeMatchesOurForward) {
  const std::string why = yq::testing::ort_unavailable();
  if (!why.empty()) GTEST_SKIP() << "ONNX Runtime check skipped: " << why;
  TempDir t("onnx_ort");
  auto m = tiny_model(t.path(), 5, 4);
  for (bool dynamic : {false, true}) {
    OnnxExportOptions o;
    o.height = 64, o.width = 96, o.dynamic = dynamic;
    export_onnx(*m, t / "m.onnx", o);
    torch::manual_seed(5);
    auto x = torch::rand({dynamic ? 2 : 1, 3, 64, 96});
    torch::Tensor ref;
    {
      torch::NoGradGuard ng;
      ref = m->forward(x);
    }
    auto y = yq::testing::run_ort(t / "m.onnx", x, t.path());
    ASSERT_EQ(y.sizes(), ref.sizes());
    const Diff d = compare(y, ref);
    const Diff box = compare(y.slice(1, 0, 4), ref.slice(1, 0, 4)),
               cls = compare(y.slice(1, 4), ref.slice(1, 4));
    std::printf(
        "[onnx fp32 vs ours] batch %d: max abs %.3g, max rel %.3g; boxes %.3g abs %.3g rel; scores %.3g "
        "abs\n",
        int(x.size(0)), d.max_abs, d.max_rel, box.max_abs, box.max_rel, cls.max_abs);
    EXPECT_LE(d.max_rel, yq::testing::kFp32RelTol) << "max abs " << d.max_abs;
    // The outputs are not trivial: boxes span pixels, scores are probabilities.
    EXPECT_GT(ref.slice(1, 0, 4).abs().max().item<double>(), 1.0);
    EXPECT_GT(ref.slice(1, 4).max().item<double>(), 0.5);
    EXPECT_LT(ref.slice(1, 4).min().item<double>(), 0.1);
  }
}

}  // namespace
}  // namespace yq::deploy
