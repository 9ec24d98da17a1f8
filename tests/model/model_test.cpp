// The YOLOv8 model: parameter counts of SPEC-YOLOV8.md, reference state-dict names, init,
// forward shapes and decoding.
#include "model/yolov8.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <map>

#include "core/error.h"
#include "core/fs.h"

namespace yq::model {
namespace {

std::map<std::string, torch::Tensor> state_dict(const torch::nn::Module& m) {
  std::map<std::string, torch::Tensor> sd;
  for (const auto& p : m.named_parameters()) sd[p.key()] = p.value();
  for (const auto& b : m.named_buffers()) sd[b.key()] = b.value();
  return sd;
}

std::vector<int64_t> shape(const torch::Tensor& t) {
  return t.sizes().vec();
}

TEST(YoloV8, ParameterCountsMatchTheSpec) {
  // The reference's summary counts every parameter, the 16 frozen DFL weights included.
  struct Case {
    const char* model;
    int64_t nc;
    int64_t params;
  };
  for (const Case& c : {Case{"yolov8n", 80, 3157200}, Case{"yolov8n", 7, 3012213},
                        Case{"yolov8n", 58, 3022158}, Case{"yolov8s", 80, 11166560}}) {
    YoloV8 m(parse_model_name(c.model, c.nc));
    EXPECT_EQ(count_parameters(*m), c.params) << c.model << " nc=" << c.nc;
    EXPECT_EQ(count_trainable(*m), c.params - kRegMax) << c.model << " nc=" << c.nc;
  }
}

TEST(YoloV8, StateDictNamesAndShapesOfTheReference) {
  torch::manual_seed(0);
  YoloV8 m(parse_model_name("yolov8n"));
  auto sd = state_dict(*m);
  EXPECT_EQ(sd.size(), 355u);
  const std::map<std::string, std::vector<int64_t>> expected = {
      {"model.0.conv.weight", {16, 3, 3, 3}},
      {"model.0.bn.weight", {16}},
      {"model.0.bn.bias", {16}},
      {"model.0.bn.running_mean", {16}},
      {"model.0.bn.running_var", {16}},
      {"model.0.bn.num_batches_tracked", {}},
      {"model.2.cv1.conv.weight", {32, 32, 1, 1}},
      {"model.2.m.0.cv1.conv.weight", {16, 16, 3, 3}},
      {"model.2.m.0.cv2.conv.weight", {16, 16, 3, 3}},
      {"model.2.cv2.conv.weight", {32, 48, 1, 1}},
      {"model.4.m.1.cv2.bn.running_var", {32}},
      {"model.9.cv1.conv.weight", {128, 256, 1, 1}},
      {"model.9.cv2.conv.weight", {256, 512, 1, 1}},
      {"model.12.cv1.conv.weight", {128, 384, 1, 1}},
      {"model.22.cv2.0.0.conv.weight", {64, 64, 3, 3}},
      {"model.22.cv2.0.1.bn.weight", {64}},
      {"model.22.cv2.0.2.weight", {64, 64, 1, 1}},
      {"model.22.cv2.0.2.bias", {64}},
      {"model.22.cv3.2.0.conv.weight", {80, 256, 3, 3}},
      {"model.22.cv3.2.2.weight", {80, 80, 1, 1}},
      {"model.22.cv3.2.2.bias", {80}},
      {"model.22.dfl.conv.weight", {1, 16, 1, 1}},
  };
  for (const auto& [key, dims] : expected) {
    ASSERT_TRUE(sd.count(key)) << key;
    EXPECT_EQ(shape(sd[key]), dims) << key;
  }
  // Junction modules (split, add, cat, pool) hold no state, so they never show in the names.
  for (const auto& [key, t] : sd)
    for (const char* part : {".split.", ".add.", ".cat.", ".m.weight"})
      EXPECT_EQ(key.find(part), std::string::npos) << key;
}

TEST(YoloV8, BatchNormAndHeadInit) {
  torch::manual_seed(0);
  YoloV8 m(parse_model_name("yolov8n", 7));
  int bns = 0;
  for (const auto& mod : m->modules()) {
    if (auto* bn = mod->as<torch::nn::BatchNorm2dImpl>()) {
      ++bns;
      EXPECT_DOUBLE_EQ(bn->options.eps(), 1e-3);
      EXPECT_DOUBLE_EQ(bn->options.momentum().value(), 0.03);
    }
  }
  EXPECT_EQ(bns, 57);  // one per ConvBnAct of yolov8n
  EXPECT_EQ(m->strides(), (std::vector<int64_t>{8, 16, 32}));
  auto sd = state_dict(*m);
  for (int i = 0; i < 3; ++i) {
    const double s = 8 << i;
    auto box = sd.at("model.22.cv2." + std::to_string(i) + ".2.bias");
    auto cls = sd.at("model.22.cv3." + std::to_string(i) + ".2.bias");
    EXPECT_TRUE(torch::all(box == 1.0).item<bool>());
    const double expect = std::log(5.0 / 7.0 / std::pow(640.0 / s, 2));
    EXPECT_NEAR(cls.min().item<double>(), expect, 1e-6);
    EXPECT_NEAR(cls.max().item<double>(), expect, 1e-6);
  }
  auto dfl = m->detect()->dfl->conv->weight;
  EXPECT_FALSE(dfl.requires_grad());
  EXPECT_TRUE(torch::equal(dfl.flatten(), torch::arange(16, torch::kFloat32)));
}

TEST(YoloV8, LayerTableOfYoloV8n) {
  YoloV8 m(parse_model_name("yolov8n.yaml"));
  const auto& L = m->layers();
  ASSERT_EQ(L.size(), 23u);
  EXPECT_EQ(L[0].args, "[3, 16, 3, 2]");
  EXPECT_EQ(L[4].repeats, 2);
  EXPECT_EQ(L[8].repeats, 1);
  EXPECT_EQ(L[11].from, (std::vector<int64_t>{-1, 6}));
  EXPECT_EQ(L[11].channels, 384);
  EXPECT_EQ(L[15].channels, 64);
  EXPECT_EQ(L[15].stride, 8);
  EXPECT_EQ(L[18].stride, 16);
  EXPECT_EQ(L[21].stride, 32);
  EXPECT_EQ(L[22].module, "Detect");
  EXPECT_EQ(L[22].args, "[80, [64, 128, 256]]");
}

TEST(YoloV8, RepeatsRoundHalfToEvenLikePython) {
  ModelSpec spec = tiny_model_spec(3);
  spec.depth = 0.75;  // 3 * 0.75 = 2.25 -> 2; 6 * 0.75 = 4.5 -> 4 (half to even)
  YoloV8 m(spec);
  EXPECT_EQ(m->layers()[2].repeats, 2);
  EXPECT_EQ(m->layers()[4].repeats, 4);
  EXPECT_EQ(m->layers()[4].args, "[16, 16, 4, True]");
}

TEST(YoloV8, ForwardShapesOfTheTinyModel) {
  torch::manual_seed(1);
  const int64_t nc = 5;
  YoloV8 m(tiny_model_spec(nc));
  EXPECT_LT(count_parameters(*m), 400000);
  m->eval();
  torch::NoGradGuard no_grad;
  for (auto [h, w] : {std::pair<int64_t, int64_t>{64, 64}, {160, 96}}) {
    auto x = torch::rand({2, 3, h, w});
    auto raw = m->forward_raw(x);
    ASSERT_EQ(raw.size(), 3u);
    int64_t anchors = 0;
    for (int i = 0; i < 3; ++i) {
      const int64_t s = m->strides()[i];
      EXPECT_EQ(shape(raw[i]), (std::vector<int64_t>{2, 64 + nc, h / s, w / s}));
      anchors += (h / s) * (w / s);
    }
    auto y = m->forward(x);
    EXPECT_EQ(shape(y), (std::vector<int64_t>{2, 4 + nc, anchors}));
    EXPECT_TRUE(torch::allclose(y, m->decode(raw)));
    auto scores = y.slice(1, 4);
    EXPECT_GE(scores.min().item<double>(), 0.0);
    EXPECT_LE(scores.max().item<double>(), 1.0);
    EXPECT_GT(y.slice(1, 2, 4).min().item<double>(), 0.0);  // widths and heights
  }
}

TEST(YoloV8, InputSizeNotAMultipleOfTheStrideIsAClearError) {
  YoloV8 m(tiny_model_spec(2));
  torch::NoGradGuard no_grad;
  try {
    m->forward(torch::zeros({1, 3, 64, 72}));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("multiples of the largest stride 32"), std::string::npos)
        << e.what();
  }
}

TEST(YoloV8, DecodingOfHandSetHeadOutputs) {
  const int64_t nc = 2;
  YoloV8 m(tiny_model_spec(nc));
  // A 64x64 input: levels 8x8 (stride 8), 4x4 (16), 2x2 (32); 84 anchors.
  std::vector<torch::Tensor> raw = {torch::zeros({1, 64 + nc, 8, 8}), torch::zeros({1, 64 + nc, 4, 4}),
                                    torch::zeros({1, 64 + nc, 2, 2})};
  // Level 0, cell (x=2, y=1): distances l=1, t=2, r=3, b=4 bins (a near one-hot distribution).
  const int64_t dist[4] = {1, 2, 3, 4};
  for (int side = 0; side < 4; ++side) raw[0][0][side * 16 + dist[side]][1][2] = 40.0;
  raw[0][0][64 + 1][1][2] = 2.0;  // class 1 logit
  // Level 2, cell (x=1, y=0): l=t=r=b=0 bins -> a zero-size box at the anchor centre.
  for (int side = 0; side < 4; ++side) raw[2][0][side * 16][0][1] = 40.0;
  torch::NoGradGuard no_grad;
  auto y = m->decode(raw);  // [1, 4 + nc, 84]
  ASSERT_EQ(shape(y), (std::vector<int64_t>{1, 4 + nc, 84}));
  auto box = [&](int64_t a) { return y[0].select(1, a); };
  // Anchor (2.5, 1.5): x1y1 = (1.5, -0.5), x2y2 = (5.5, 5.5) -> cx 3.5, cy 2.5, w 4, h 6, times 8.
  auto a0 = box(1 * 8 + 2);
  EXPECT_NEAR(a0[0].item<double>(), 28.0, 1e-3);
  EXPECT_NEAR(a0[1].item<double>(), 20.0, 1e-3);
  EXPECT_NEAR(a0[2].item<double>(), 32.0, 1e-3);
  EXPECT_NEAR(a0[3].item<double>(), 48.0, 1e-3);
  EXPECT_NEAR(a0[4].item<double>(), 0.5, 1e-6);
  EXPECT_NEAR(a0[5].item<double>(), 1.0 / (1.0 + std::exp(-2.0)), 1e-6);
  // Uniform logits: each distance is the mean bin 7.5 -> a 15 x 15 cell box centred on the anchor.
  auto a1 = box(64 + 3 * 4 + 1);  // level 1, cell (x=1, y=3), anchor (1.5, 3.5), stride 16
  EXPECT_NEAR(a1[0].item<double>(), 24.0, 1e-3);
  EXPECT_NEAR(a1[1].item<double>(), 56.0, 1e-3);
  EXPECT_NEAR(a1[2].item<double>(), 240.0, 1e-3);
  EXPECT_NEAR(a1[3].item<double>(), 240.0, 1e-3);
  auto a2 = box(64 + 16 + 1);  // level 2, cell (x=1, y=0), anchor (1.5, 0.5), stride 32
  EXPECT_NEAR(a2[0].item<double>(), 48.0, 1e-3);
  EXPECT_NEAR(a2[1].item<double>(), 16.0, 1e-3);
  EXPECT_NEAR(a2[2].item<double>(), 0.0, 1e-3);
  EXPECT_NEAR(a2[3].item<double>(), 0.0, 1e-3);
}

TEST(YoloV8, BackwardReachesEveryTrainableParameterButNotTheDfl) {
  torch::manual_seed(2);
  YoloV8 m(tiny_model_spec(3));
  m->train();
  auto raw = m->forward_raw(torch::rand({2, 3, 64, 64}));
  torch::Tensor loss = torch::zeros({});
  for (const auto& r : raw) loss = loss + r.square().mean();
  loss.backward();
  for (const auto& p : m->named_parameters()) {
    if (p.key() == "model.22.dfl.conv.weight") {
      EXPECT_FALSE(p.value().grad().defined());
    } else {
      ASSERT_TRUE(p.value().grad().defined()) << p.key();
      EXPECT_GT(p.value().grad().abs().sum().item<double>(), 0.0) << p.key();
    }
  }
  // Training mode updated the BN running statistics.
  auto sd = state_dict(*m);
  EXPECT_EQ(sd.at("model.0.bn.num_batches_tracked").item<int64_t>(), 1);
}

TEST(YoloV8, CopyModelIsDeepAndEqual) {
  torch::manual_seed(3);
  YoloV8 a(tiny_model_spec(4));
  a->set_names({"stop", "yield", "no_entry", "speed_50"});
  a->train();
  a->forward_raw(torch::rand({2, 3, 64, 64}));  // moves the BN running statistics off their init
  a->eval();
  YoloV8 b = copy_model(*a);
  EXPECT_FALSE(b->is_training());
  EXPECT_EQ(b->names(), a->names());
  auto x = torch::rand({1, 3, 64, 64});
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::equal(a->forward(x), b->forward(x)));
  EXPECT_FALSE(b->detect()->dfl->conv->weight.requires_grad());
  // Independent storage: changing the copy leaves the original alone.
  auto before = a->forward(x);
  for (auto& p : b->parameters()) p.add_(0.1);
  EXPECT_TRUE(torch::equal(a->forward(x), before));
  EXPECT_FALSE(torch::equal(b->forward(x), before));
}

TEST(ModelName, BuiltInNamesAndOverrides) {
  EXPECT_EQ(parse_model_name("yolov8n").scale, "n");
  EXPECT_EQ(parse_model_name("yolov8s.yaml").scale, "s");
  EXPECT_EQ(parse_model_name("yolov8x").name, "yolov8x");
  EXPECT_EQ(parse_model_name("yolov8").scale, "n");
  EXPECT_EQ(parse_model_name("yolov8m").nc, 80);
  EXPECT_EQ(parse_model_name("yolov8l", 58).nc, 58);
  EXPECT_TRUE(parse_model_name("yolov8n").yaml.empty());
  for (const char* bad : {"yolov9n", "yolov8q", "models/yolov8n.yaml", "", "resnet50"})
    EXPECT_THROW(parse_model_name(bad), UsageError) << bad;
}

class ModelYaml : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("yq_model_yaml_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& text) {
    auto p = dir_ / name;
    std::ofstream(p) << text;
    return p.string();
  }
  fs::path dir_;
};

TEST_F(ModelYaml, ACustomTableBuildsAndRuns) {
  const std::string path = write("yolov8t-two.yaml", R"(nc: 3
scales:
  t: [0.33, 0.125, 256]
backbone:
  - [-1, 1, Conv, [64, 3, 2]]
  - [-1, 1, Conv, [128, 3, 2]]
  - [-1, 3, C2f, [128, True]]
  - [-1, 1, Conv, [256, 3, 2]]
  - [-1, 1, SPPF, [512, 5]]
head:
  - [-1, 1, nn.Upsample, [None, 2, 'nearest']]
  - [[-1, 2], 1, Concat, [1]]
  - [-1, 1, C2f, [128]]
  - [[7, 4], 1, Detect, [nc]]
)");
  ModelSpec spec = parse_model_name(path);
  EXPECT_EQ(spec.nc, 3);
  EXPECT_EQ(spec.scale, "");  // no yolov8<scale> in the file name: the first scale listed
  YoloV8 m(spec);
  EXPECT_EQ(m->spec().scale, "t");
  EXPECT_EQ(m->strides(), (std::vector<int64_t>{4, 8}));
  EXPECT_EQ(m->layers()[4].channels, 32);  // min(512, 256) * 0.125
  EXPECT_EQ(m->layers()[6].channels, 16 + 32);
  torch::NoGradGuard no_grad;
  auto y = m->forward(torch::rand({1, 3, 32, 64}));
  EXPECT_EQ(shape(y), (std::vector<int64_t>{1, 4 + 3, 8 * 16 + 4 * 8}));
  // nc= overrides the file's nc.
  EXPECT_EQ(YoloV8(parse_model_name(path, 11))->detect()->nc(), 11);
}

TEST_F(ModelYaml, ErrorsNameTheFileAndLine) {
  auto error_of = [&](const std::string& text) {
    const std::string path = write("bad.yaml", text);
    try {
      YoloV8 m(parse_model_name(path));
    } catch (const UsageError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  const std::string head = "nc: 2\nbackbone:\n  - [-1, 1, Conv, [16, 3, 2]]\n";
  auto e1 = error_of(head + "  - [-1, 1, Transformer, [16]]\nhead:\n  - [[1], 1, Detect, [nc]]\n");
  EXPECT_NE(e1.find("bad.yaml:4"), std::string::npos) << e1;
  EXPECT_NE(e1.find("unknown module 'Transformer'"), std::string::npos) << e1;
  auto e2 = error_of(head + "head:\n  - [[-1, 3], 1, Concat, [1]]\n  - [[1], 1, Detect, [nc]]\n");
  EXPECT_NE(e2.find("bad.yaml:5"), std::string::npos) << e2;
  EXPECT_NE(e2.find("not an earlier layer"), std::string::npos) << e2;
  auto e3 = error_of(head + "head:\n  - [-1, 1, Conv, [16, 3, 2]]\n");
  EXPECT_NE(e3.find("last layer must be Detect"), std::string::npos) << e3;
  auto e4 = error_of("nc: 2\nscales:\n  n: [0.33, 0.25, 1024]\n" + head.substr(6) +
                     "head:\n  - [[0], 1, Detect, [nc]]\n");
  EXPECT_EQ(e4, "no error");
  auto e5 = error_of(
      head +
      "head:\n  - [-1, 1, Conv, [16, 3, 2]]\n  - [[-1, 0], 1, Concat, [1]]\n  - [[2], 1, Detect, [nc]]\n");
  EXPECT_NE(e5.find("bad.yaml:6"), std::string::npos) << e5;
  EXPECT_NE(e5.find("Concat of inputs at strides 4 and 2"), std::string::npos) << e5;
}

}  // namespace
}  // namespace yq::model
