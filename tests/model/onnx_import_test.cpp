#include "model/onnx_import.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "test_util.h"
#include "deploy/export_fixtures.h"
#include "deploy/onnx_export.h"

namespace yq::model {
namespace {

using yq::testing::TempDir;

TEST(OnnxImport, NamesMetadataRoundTrip) {
  const std::vector<std::string> names = {"stop", "driver's", "a\\b", "q'\"x", "tab\there", ""};
  EXPECT_EQ(parse_python_names(deploy::python_names_dict(names)), names);
  EXPECT_EQ(parse_python_names(" { 1 : 'b' , 0: \"a\", } "), (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(parse_python_names("{}").empty());
  for (const char* bad : {"", "{0: 'a'", "{0: a}", "{1: 'a'}", "{0: 'a', 0: 'b'}", "[0, 1]", "{0: 'a'} x"})
    EXPECT_THROW(parse_python_names(bad), Error) << bad;
}

// yolov8n with 3 classes and random BN statistics, exported at 64x96.
YoloV8 exported_model(const fs::path& onnx_path) {
  YoloV8 m(parse_model_name("yolov8n", 3));
  yq::testing::randomize_for_export(m, 21);
  deploy::OnnxExportOptions o;
  o.height = 64, o.width = 96;
  deploy::export_onnx(*m, onnx_path, o);
  return m;
}

void expect_same_outputs(YoloV8& a, YoloV8& b) {
  torch::manual_seed(22);
  auto x = torch::rand({2, 3, 64, 96});
  torch::NoGradGuard ng;
  const auto d = yq::testing::compare(b->forward(x), a->forward(x));
  std::printf("[onnx import vs original] max abs %.3g, max rel %.3g\n", d.max_abs, d.max_rel);
  EXPECT_LE(d.max_rel, yq::testing::kFp32RelTol) << "max abs " << d.max_abs;
}

TEST(OnnxImport, RoundTripByName) {
  TempDir t("onnx_import");
  auto m = exported_model(t / "m.onnx");
  OnnxImportReport r;
  auto back = model_from_onnx(t / "m.onnx", &r);
  EXPECT_TRUE(r.by_name);
  EXPECT_EQ(r.scale, "n");
  EXPECT_EQ(r.convs, 64);  // 57 ConvBnAct + 6 head output convs + the DFL
  EXPECT_EQ(r.height, 64);
  EXPECT_EQ(r.width, 96);
  EXPECT_EQ(back->nc(), 3);
  EXPECT_EQ(back->names(), m->names());
  EXPECT_FALSE(back->is_training());
  // BN is the identity carrying the conv bias.
  EXPECT_TRUE(
      torch::allclose(back->named_buffers()["model.0.bn.running_var"], torch::full({16}, 1 - kBnEps)));
  expect_same_outputs(m, back);
}

// Files whose initializers lost the reference names (onnx::Conv_123) load by graph order.
TEST(OnnxImport, RoundTripByGraphOrder) {
  TempDir t("onnx_import_order");
  auto m = exported_model(t / "m.onnx");
  onnx::ModelProto mp = deploy::read_onnx(t / "m.onnx");
  auto* g = mp.mutable_graph();
  std::map<std::string, std::string> renamed;
  for (auto& init : *g->mutable_initializer()) {
    const std::string fresh = "onnx::Conv_" + std::to_string(renamed.size());
    renamed[init.name()] = fresh;
    init.set_name(fresh);
  }
  for (auto& n : *g->mutable_node())
    for (auto& in : *n.mutable_input())
      if (renamed.count(in)) in = renamed[in];
  deploy::write_onnx(mp, t / "renamed.onnx");
  OnnxImportReport r;
  auto back = model_from_onnx(t / "renamed.onnx", &r);
  EXPECT_FALSE(r.by_name);
  expect_same_outputs(m, back);
  // Exactly the weights the names give.
  auto named = model_from_onnx(t / "m.onnx");
  auto ref = named->named_parameters();
  for (const auto& p : back->named_parameters())
    EXPECT_TRUE(torch::equal(p.value(), ref[p.key()])) << p.key();
}

TEST(OnnxImport, RefusesWhatIsNotAYoloV8Export) {
  TempDir t("onnx_import_bad");
  exported_model(t / "m.onnx");
  const std::string bytes = read_text(t / "m.onnx");
  atomic_write(t / "truncated.onnx", bytes.substr(0, bytes.size() / 3));
  EXPECT_THROW(model_from_onnx(t / "truncated.onnx"), Error);
  EXPECT_THROW(model_from_onnx(t / "missing.onnx"), Error);

  onnx::ModelProto mp = deploy::read_onnx(t / "m.onnx");
  mp.mutable_graph()->mutable_output(0)->set_name("scores");
  mp.mutable_graph()->mutable_node(mp.graph().node_size() - 1)->set_output(0, "scores");
  deploy::write_onnx(mp, t / "renamed_out.onnx");
  try {
    model_from_onnx(t / "renamed_out.onnx");
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("output0"), std::string::npos) << e.what();
  }

  // A conv of another shape is named in the error.
  mp = deploy::read_onnx(t / "m.onnx");
  for (auto& init : *mp.mutable_graph()->mutable_initializer()) {
    if (init.name() == "model.4.m.0.cv1.conv.weight") {
      init.set_dims(1, init.dims(1) / 2);
      init.set_raw_data(init.raw_data().substr(0, init.raw_data().size() / 2));
    }
  }
  atomic_write(t / "bad_shape.onnx", mp.SerializeAsString());
  try {
    model_from_onnx(t / "bad_shape.onnx");
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("model.4.m.0.cv1.conv.weight"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace yq::model
