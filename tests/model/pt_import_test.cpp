#include "model/pt_import.h"
#include "model/pt_load.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <string>

#include "test_util.h"
#include "core/error.h"
#include "model/pickle_test_util.h"

namespace yq::model {
namespace {

using pickle::Kind;
using yq::testing::fixture_dir;
using yq::testing::PickleBytes;
using yq::testing::read_bytes;
using yq::testing::ZipBytes;

void expect_error(const std::function<void()>& fn, const std::string& needle) {
  try {
    fn();
    FAIL() << "no error; expected one containing: " << needle;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

// Compares a checkpoint's tensors with the summaries make_reference_pt.py wrote from Python's
// state_dict(): same names in the same order, shapes, and values (sums, first and last elements).
void expect_matches_python(const PtCheckpoint& ck, const nlohmann::json& entries) {
  ASSERT_EQ(ck.tensors.size(), entries.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    const auto& e = entries[i];
    const auto& [name, t] = ck.tensors[i];
    ASSERT_EQ(name, e["name"].get<std::string>()) << "entry " << i;
    EXPECT_EQ(t.sizes().vec(), e["shape"].get<std::vector<int64_t>>()) << name;
    bool integral = e["dtype"] == "int64";
    EXPECT_EQ(t.scalar_type(), integral ? torch::kInt64 : torch::kFloat32) << name;
    torch::Tensor d = t.to(torch::kFloat64).flatten();
    double tol = 1e-9 * (1.0 + e["abs_sum"].get<double>());
    EXPECT_NEAR(d.sum().item<double>(), e["sum"].get<double>(), tol) << name;
    EXPECT_NEAR(d.abs().sum().item<double>(), e["abs_sum"].get<double>(), tol) << name;
    auto first = e["first"].get<std::vector<double>>();
    for (size_t k = 0; k < first.size(); ++k)
      EXPECT_EQ(d[static_cast<int64_t>(k)].item<double>(), first[k]) << name;
    EXPECT_EQ(d[-1].item<double>(), e["last"].get<double>()) << name;
  }
}

TEST(PtImport, TinyCheckpointMatchesPythonStateDict) {
  PtCheckpoint ck = read_pt_checkpoint(fixture_dir() + "/tiny.pt");
  auto meta = nlohmann::json::parse(read_bytes(fixture_dir() + "/tiny.json"));
  EXPECT_EQ(ck.module_key, "model");  // a stripped (finished) checkpoint: ema is None
  EXPECT_EQ(ck.model_class, "ultralytics.nn.tasks.DetectionModel");
  expect_matches_python(ck, meta["entries"]);
  EXPECT_EQ(ck.tensors.size(), 355u);  // yolov8's 355 state-dict entries at any width
  ASSERT_NE(ck.find("model.22.dfl.conv.weight"), nullptr);
  EXPECT_TRUE(ck.find("model.22.dfl.conv.weight")->flatten().equal(torch::arange(16, torch::kFloat32)));
  EXPECT_EQ(ck.find("model.22.cv3.2.2.bias")->sizes().vec(), (std::vector<int64_t>{3}));
  EXPECT_EQ(ck.find("model.0.bn.num_batches_tracked")->item<int64_t>(), 1234);
  EXPECT_EQ(ck.find("nope"), nullptr);

  EXPECT_EQ(ck.names, (std::vector<std::string>{"class0", "class1", "class2"}));
  ASSERT_TRUE(ck.nc.has_value());
  EXPECT_EQ(*ck.nc, 3);
  EXPECT_EQ(ck.stride, (std::vector<double>{8, 16, 32}));
  EXPECT_EQ(ck.yaml["nc"], 3);
  EXPECT_EQ(ck.yaml["scale"], "t");
  EXPECT_EQ(ck.yaml["head"].size(), 13u);
  EXPECT_EQ(ck.train_args["imgsz"], 640);
  EXPECT_TRUE(ck.train_args["name"].is_null());
  EXPECT_EQ(ck.info["epoch"], -1);
  EXPECT_EQ(ck.info["version"], "8.0.200");
  EXPECT_EQ(ck.info["best_fitness"], 0.125);
}

TEST(PtImport, PicksEmaOverModel) {
  PtCheckpoint ck = read_pt_checkpoint(fixture_dir() + "/pick.pt");
  EXPECT_EQ(ck.module_key, "ema");
  const torch::Tensor* w = ck.find("model.0.conv.weight");
  ASSERT_NE(w, nullptr);
  EXPECT_TRUE(w->eq(0.5).all().item<bool>());  // the raw model's weights are -0.5
  EXPECT_EQ(ck.names, (std::vector<std::string>{"stop", "yield"}));
  EXPECT_EQ(ck.nc, 2);  // from yaml: this module has no `nc` attribute
  EXPECT_TRUE(ck.stride.empty());
  EXPECT_EQ(ck.tensors.size(),
            6u);  // conv.weight + bn.{weight,bias,running_mean,running_var,num_batches_tracked}
}

TEST(PtImport, ViewsKeepOffsetsAndStrides) {
  PtArchive a = PtArchive::open(fixture_dir() + "/views.pt");
  EXPECT_EQ(a.prefix(), "views");
  auto get = [&](const char* k) {
    const pickle::Value* v = a.root()->get(k);
    EXPECT_TRUE(v && v->is(Kind::Tensor)) << k;
    return materialize(a, *v->tensor);
  };
  torch::Tensor base = torch::arange(24, torch::kFloat32).view({4, 6});
  EXPECT_TRUE(get("base").equal(base));
  EXPECT_TRUE(get("rows").equal(base.slice(0, 1, 3)));
  EXPECT_TRUE(get("cols").equal(base.slice(1, 1, 6, 2)));
  EXPECT_TRUE(get("t").equal(base.t()));
  EXPECT_EQ(get("scalar").dim(), 0);
  EXPECT_EQ(get("scalar").item<float>(), 15.0f);
  EXPECT_EQ(get("empty").sizes().vec(), (std::vector<int64_t>{0, 3}));
  EXPECT_TRUE(get("t").is_contiguous());
}

TEST(PtImport, ReadsEveryDtype) {
  PtArchive a = PtArchive::open(fixture_dir() + "/dtypes.pt");
  auto values = [&](const char* k, bool keep) {
    const pickle::Value* v = a.root()->get(k);
    EXPECT_TRUE(v && v->is(Kind::Tensor)) << k;
    return materialize(a, *v->tensor, keep);
  };
  torch::Tensor f = torch::tensor({1.5, -2.0, 0.0, 3.0}, torch::kFloat32);
  for (const char* k : {"float16", "bfloat16", "float32", "float64"}) {
    EXPECT_TRUE(values(k, false).equal(f)) << k;
  }
  EXPECT_EQ(values("float16", true).scalar_type(), torch::kHalf);
  EXPECT_EQ(values("bfloat16", true).scalar_type(), torch::kBFloat16);
  EXPECT_EQ(values("float64", true).scalar_type(), torch::kFloat64);
  EXPECT_TRUE(values("int64", false).equal(torch::tensor({1, -2, 0, 3}, torch::kInt64)));
  EXPECT_TRUE(values("int32", false).equal(torch::tensor({1, -2, 0, 3}, torch::kInt32)));
  EXPECT_TRUE(values("int16", false).equal(torch::tensor({1, -2, 0, 3}, torch::kInt16)));
  EXPECT_TRUE(values("int8", false).equal(torch::tensor({1, -2, 0, 3}, torch::kInt8)));
  EXPECT_TRUE(values("uint8", false).equal(torch::tensor({1, 254, 0, 3}, torch::kUInt8)));
  EXPECT_TRUE(values("bool", false).equal(torch::tensor({true, true, false, true}, torch::kBool)));
}

TEST(PtImport, ReadsTheSavedForwardPass) {
  PtArchive a = PtArchive::open(fixture_dir() + "/tiny_forward.pt");
  torch::Tensor x = materialize(a, *a.root()->get("input")->tensor);
  torch::Tensor y = materialize(a, *a.root()->get("output")->tensor);
  EXPECT_EQ(x.sizes().vec(), (std::vector<int64_t>{1, 3, 32, 32}));
  EXPECT_EQ(y.sizes().vec(), (std::vector<int64_t>{1, 4 + 3, 16 + 4 + 1}));  // anchors at strides 8, 16, 32
  EXPECT_TRUE(x.ge(0).all().item<bool>() && x.lt(1).all().item<bool>());
  EXPECT_TRUE(torch::isfinite(y).all().item<bool>());
}

TEST(PtImport, RefusesHostileCheckpoint) {
  // torch.load would run os.system here (hostile.pt's pickle names posix.system and REDUCEs it).
  expect_error([] { read_pt_checkpoint(fixture_dir() + "/hostile.pt"); }, "posix.system");
  expect_error([] { read_pt_checkpoint(fixture_dir() + "/hostile.pt"); }, "nothing was imported or executed");
}

TEST(PtImport, RefusesCorruptArchives) {
  std::string tiny = read_bytes(fixture_dir() + "/tiny.pt");
  for (size_t n :
       {size_t{0}, size_t{100}, tiny.size() / 3, tiny.size() / 2, tiny.size() - 23, tiny.size() - 1}) {
    EXPECT_THROW(read_pt_checkpoint(PtArchive(ZipReader(tiny.substr(0, n), "cut.pt"))), Error) << n;
  }
  std::string flipped = tiny;
  flipped[tiny.size() / 2] ^= 0x55;  // inside some storage: its CRC-32 no longer matches
  expect_error([&] { read_pt_checkpoint(PtArchive(ZipReader(flipped, "flip.pt"))); }, "CRC-32 mismatch");

  std::string pkl = PickleBytes().tensor("FloatStorage", "0", 4, 0, {4}, {1}).stop();
  expect_error([&] { PtArchive(ZipReader(ZipBytes().add("a/data.pkl", pkl).build(), "m.pt")); },
               "has no entry 'a/data/0'");
  expect_error(
      [&] {
        PtArchive(ZipReader(ZipBytes().add("a/data.pkl", pkl).add("a/data/0", "12345").build(), "s.pt"));
      },
      "has 5 bytes; 4 float32 elements need 16");
  expect_error([&] { PtArchive(ZipReader(ZipBytes().add("a/version", "3").build(), "n.pt")); },
               "expected one '<folder>/data.pkl' entry, found 0");
  expect_error(
      [&] { PtArchive(ZipReader(ZipBytes().add("a/data.pkl", pkl).add("b/data.pkl", pkl).build(), "2.pt")); },
      "found 2");
  std::string ok = ZipBytes().add("x/data.pkl", pkl).add("x/data/0", std::string(16, '\0')).build();
  EXPECT_NO_THROW(PtArchive(ZipReader(ok, "ok.pt")));
  expect_error(
      [&] {
        PtArchive(ZipReader(ZipBytes()
                                .add("x/data.pkl", pkl)
                                .add("x/byteorder", "big")
                                .add("x/data/0", std::string(16, '\0'))
                                .build(),
                            "be.pt"));
      },
      "'big' byte order");
  // A checkpoint whose module is not a module.
  std::string notmod = PickleBytes().op('}').str("model").i(3).op('s').stop();
  expect_error(
      [&] { read_pt_checkpoint(PtArchive(ZipReader(ZipBytes().add("a/data.pkl", notmod).build(), "x"))); },
      "not a pickled torch.nn.Module");
}

// A pickled module: NEWOBJ of `cls`, then BUILD with {_parameters, _buffers, _modules}; the state dict's
// memo slot is 1 and the module's is 0.
PickleBytes module_with(const std::string& params, const std::string& modules) {
  PickleBytes p;
  p.global("ultralytics.nn.modules", "Conv").op(')').op(0x81).put(0);
  p.op('}')
      .put(1)
      .op('(')
      .str("_parameters")
      .op('}')
      .raw(params)
      .str("_buffers")
      .op('}')
      .str("_modules")
      .op('}');
  p.raw(modules).op('u').op('b');
  return p;
}

TEST(PtImport, ModuleWalkRefusesMalformedTrees) {
  // A module containing itself: the walk stops at its depth limit.
  std::string cyc = module_with("", PickleBytes().str("self").get(0).op('s').bytes().substr(2)).stop();
  pickle::Pickle c = pickle::parse(cyc);
  expect_error([&] { module_state(c.root()); }, "deeper than 64 levels");
  // A parameter that is not a tensor.
  std::string notensor = module_with(PickleBytes().str("weight").i(1).op('s').bytes().substr(2), "").stop();
  pickle::Pickle n = pickle::parse(notensor);
  expect_error([&] { module_state(n.root()); }, "parameter 'weight' is int 1, not a tensor");
  // A key with a dot would make names ambiguous.
  std::string dotted = module_with("", PickleBytes().str("a.b").op('N').op('s').bytes().substr(2)).stop();
  pickle::Pickle d = pickle::parse(dotted);
  expect_error([&] { module_state(d.root()); }, "invalid key");
}

// The full-size yolov8n-shaped checkpoint (~13 MB with model and EMA) is not committed: it is made
// here with Debian's python3-torch, and the test is skipped where that is not installed.
TEST(PtImport, FullSizeYolov8nFromPython) {
  const char* env = std::getenv("YOLOQAT_PYTHON");
  std::string python = env ? env : "/usr/bin/python3";
  if (std::system((python + " -c 'import torch' >/dev/null 2>&1").c_str()) != 0)
    GTEST_SKIP() << python << " has no torch module (apt-get install python3-torch)";
  yq::testing::TempDir dir("pt_full");
  std::string out = (dir.path() / "yolov8n.pt").string();
  std::string cmd = python + " " + fixture_dir() + "/make_reference_pt.py full " + out + " 80";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  PtCheckpoint ck = read_pt_checkpoint(out);
  auto meta = nlohmann::json::parse(read_bytes(out + ".json"));
  EXPECT_EQ(ck.module_key, "ema");
  EXPECT_EQ(ck.tensors.size(), 355u);
  expect_matches_python(ck, meta["entries"]);
  int64_t params = 0;
  for (const auto& [name, t] : ck.tensors) {
    bool stat = name.find("running_") != std::string::npos || name.find("num_batches") != std::string::npos;
    if (!stat) params += t.numel();
  }
  EXPECT_EQ(params, 3157200);  // SPEC-YOLOV8.md: yolov8n at nc=80
  EXPECT_EQ(ck.nc, 80);
  EXPECT_EQ(ck.find("model.22.cv3.0.2.weight")->sizes().vec(), (std::vector<int64_t>{80, 80, 1, 1}));

  // Our yolov8n built from it: every tensor loads, and the parameter count is the reference's.
  LoadReport report;
  YoloV8 model = model_from_checkpoint(ck, {}, &report);
  EXPECT_TRUE(report.complete()) << report.summary();
  EXPECT_EQ(report.loaded, 355);
  EXPECT_EQ(count_parameters(*model), 3157200);
  EXPECT_EQ(model->nc(), 80);
}

}  // namespace
}  // namespace yq::model
