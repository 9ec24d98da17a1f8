#include "deploy/onnx_qdq.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <map>
#include <set>

#include "core/error.h"
#include "core/log.h"
#include "deploy/export_fixtures.h"
#include "deploy/ort_util.h"
#include "fixtures.h"
#include "quant/fusion.h"
#include "quant/prepare.h"
#include "quant/qat_modules.h"
#include "test_util.h"

namespace yq::deploy {
namespace {

using yq::testing::TempDir;

// SQNR of ONNX Runtime's QDQ output against our fake-quant forward, in dB over the whole output0
// (boxes in pixels and scores). The onnx-qdq graph is the fake-quant model op for op; what remains is
// ONNX Runtime's integer conv requantizing in a different order (a rare 1-LSB flip) plus float
// rounding, far below the quantization noise itself (~40 dB for 8 bits).
constexpr double kOrtMinSqnrDb = 45.0;
// The TensorRT flavour differs from the fake-quant model on purpose (no pre-SiLU quantizer, symmetric
// activations with half the levels of the affine uint8 ones), so it is only "a working int8 model".
constexpr double kTrtMinSqnrDb = 20.0;

double sqnr_db(const torch::Tensor& ref, const torch::Tensor& x) {
  const double s = ref.to(torch::kFloat64).pow(2).sum().item<double>();
  const double n = (ref.to(torch::kFloat64) - x.to(torch::kFloat64)).pow(2).sum().item<double>();
  return 10.0 * std::log10(s / std::max(n, 1e-30));
}

// The tiny YOLOv8 with random BN statistics, prepared with `qconfig` and calibrated on three random
// batches (observers on, fake quant off), then frozen with fake quant on: a PTQ model.
model::YoloV8 calibrated_model(const fs::path& dir, const std::string& qconfig, uint64_t seed) {
  model::YoloV8 m(model::parse_model_name(yq::testing::write_tiny_model_yaml(dir).string(), 3));
  yq::testing::randomize_for_export(m, seed);
  quant::prepare(*m, quant::QConfigMapping::load(qconfig));
  m->eval();
  quant::enable_observers(*m, true);
  quant::enable_fake_quant(*m, false);
  torch::NoGradGuard ng;
  for (int b = 0; b < 3; ++b) {
    torch::manual_seed(seed * 10 + b);
    m->forward(torch::randint(0, 256, {2, 3, 64, 64}).to(torch::kFloat) / 255.0);
  }
  quant::freeze_quantizers(*m);
  quant::enable_fake_quant(*m, true);
  return m;
}

torch::Tensor images(uint64_t seed, int64_t h = 64, int64_t w = 64) {
  torch::manual_seed(seed);
  return torch::randint(0, 256, {1, 3, h, w}).to(torch::kFloat) / 255.0;
}

std::map<std::string, int> op_counts(const onnx::ModelProto& m) {
  std::map<std::string, int> n;
  for (const auto& node : m.graph().node()) ++n[node.op_type()];
  return n;
}

const onnx::TensorProto* initializer(const onnx::ModelProto& m, const std::string& name) {
  for (const auto& t : m.graph().initializer())
    if (t.name() == name) return &t;
  return nullptr;
}

torch::Tensor to_tensor(const onnx::TensorProto& t) {
  std::vector<int64_t> dims(t.dims().begin(), t.dims().end());
  torch::ScalarType type = torch::kFloat32;
  switch (t.data_type()) {
    case onnx::TensorProto::INT8:
      type = torch::kInt8;
      break;
    case onnx::TensorProto::UINT8:
      type = torch::kUInt8;
      break;
    case onnx::TensorProto::INT32:
      type = torch::kInt32;
      break;
    case onnx::TensorProto::INT64:
      type = torch::kInt64;
      break;
    default:
      break;
  }
  auto out = torch::empty(dims, type);
  EXPECT_EQ(int64_t(t.raw_data().size()), out.numel() * out.element_size()) << t.name();
  std::memcpy(out.data_ptr(), t.raw_data().data(), t.raw_data().size());
  return out;
}

// Which node writes each tensor.
std::map<std::string, const onnx::NodeProto*> producers(const onnx::ModelProto& m) {
  std::map<std::string, const onnx::NodeProto*> p;
  for (const auto& n : m.graph().node())
    for (const auto& o : n.output()) p[o] = &n;
  return p;
}

QdqExportOptions small_options(QdqFlavour flavour) {
  QdqExportOptions o;
  o.flavour = flavour;
  o.onnx.height = o.onnx.width = 64;
  return o;
}

TEST(QdqExport, SymmetricScaleCoversTheAffineRange) {
  // uint8 [0, 255], scale 0.1, zero point 10: range [-1.0, 24.5] -> 24.5 / 127.
  EXPECT_FLOAT_EQ(symmetric_int8_scale(0.1f, 10, 0, 255), float(24.5 / 127));
  // The image quantizer (1/255, zp 0): [0, 1] -> 1/127.
  EXPECT_FLOAT_EQ(symmetric_int8_scale(1.f / 255, 0, 0, 255), float(1.0 / 127));
  // A range mostly below zero: zero point 200 -> [-20, 5.5] -> 20 / 127.
  EXPECT_FLOAT_EQ(symmetric_int8_scale(0.1f, 200, 0, 255), float(20.0 / 127));
  // Already symmetric signed [-128, 127], zp 0: max(12.8, 12.7) / 127.
  EXPECT_FLOAT_EQ(symmetric_int8_scale(0.1f, 0, -128, 127), float(12.8 / 127));
}

TEST(QdqExport, FloatModelIsRefused) {
  TempDir t("qdq_float");
  model::YoloV8 m(model::parse_model_name(yq::testing::write_tiny_model_yaml(t.path()).string(), 3));
  m->eval();
  for (auto flavour : {QdqFlavour::kOnnxRuntime, QdqFlavour::kTensorRt}) {
    try {
      export_qdq(*m, t / "m.onnx", small_options(flavour));
      FAIL() << "a float model was exported as " << qdq_format_name(flavour);
    } catch (const UsageError& e) {
      EXPECT_NE(std::string(e.what()).find("calibrate or qat first"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(qdq_format_name(flavour)), std::string::npos) << e.what();
    }
  }
  EXPECT_FALSE(fs::exists(t / "m.onnx"));
}

TEST(QdqExport, OnePairPerQuantizerAndCheckerPasses) {
  TempDir t("qdq_pairs");
  auto m = calibrated_model(t.path(), "quantization.yaml", 1);
  int64_t acts = 0, weights = 0;
  for (auto& [name, fq] : quant::named_quantizers(*m))
    (name.find("weight_fq") != std::string::npos ? weights : acts) += 1;

  // Only the model's quantizers: one pair each.
  auto o = small_options(QdqFlavour::kOnnxRuntime);
  o.concat_input_qdq = o.passthrough_qdq = false;
  QdqExportResult r;
  const auto model = build_qdq_model(*m, o, &r);
  EXPECT_NO_THROW(check_onnx(model));
  EXPECT_EQ(r.qdq_pairs, acts);
  EXPECT_EQ(r.quantizer_pairs, acts);
  EXPECT_EQ(r.weight_dq, weights);
  auto n = op_counts(model);
  EXPECT_EQ(n["QuantizeLinear"], acts);
  EXPECT_EQ(n["DequantizeLinear"], acts + weights);
  // Target x86: every quantizer of a tensor a conv reads is 7-bit [0, 127], so a Clip to its range
  // precedes its QuantizeLinear (uint8 saturates at 255 only); pre_fq and the head's outputs keep 8 bits.
  int64_t narrow = 0;
  for (auto& [name, fq] : quant::named_quantizers(*m))
    if (name.find("weight_fq") == std::string::npos && fq->scheme().quant_max() < 255) ++narrow;
  EXPECT_GT(narrow, 10);
  EXPECT_EQ(r.clips, narrow);
  EXPECT_EQ(n["Clip"], narrow);
  // The float tail is untouched: the fp32 graph's nodes plus exactly the Q/DQ (and Clip) nodes.
  const auto fp32 = build_onnx_model(*m, o.onnx);
  for (const auto& [op, count] : op_counts(fp32)) EXPECT_EQ(n[op], count) << op;
  EXPECT_EQ(model.graph().node_size(), fp32.graph().node_size() + 2 * acts + weights + narrow);
  // The metadata records the target and the pair bound (2 x 127 x 128).
  std::map<std::string, std::string> meta;
  for (const auto& p : model.metadata_props()) meta[p.key()] = p.value();
  EXPECT_EQ(meta["quantization_target"], "");  // build_qdq_model alone: the caller names the target
  EXPECT_EQ(meta["int8_pair_bound"], "32512");

  // Every activation Q/DQ is uint8 (the CPU profile); the image pair is 1/127 (7 bits), zero point 0.
  const auto prod = producers(model);
  int image_pairs = 0;
  for (const auto& node : model.graph().node()) {
    if (node.op_type() != "QuantizeLinear") continue;
    const auto* zp = initializer(model, node.input(2));
    ASSERT_NE(zp, nullptr);
    EXPECT_EQ(zp->data_type(), onnx::TensorProto::UINT8) << node.name();
    const std::string in = node.input(0);
    if (in == "images" ||
        (prod.count(in) && prod.at(in)->op_type() == "Clip" && prod.at(in)->input(0) == "images")) {
      EXPECT_FLOAT_EQ(to_tensor(*initializer(model, node.input(1))).item<float>(), 1.f / 127);
      EXPECT_EQ(to_tensor(*zp).item<int>(), 0);
      ++image_pairs;
    }
  }
  EXPECT_EQ(image_pairs, 1);
  // Conv -> Q/DQ (pre) -> Sigmoid and Mul -> Q/DQ (act): each Sigmoid of a ConvBnAct reads a
  // DequantizeLinear.
  int sigmoids = 0;
  for (const auto& node : model.graph().node()) {
    if (node.op_type() != "Sigmoid" || node.name().find(".act.sigmoid") == std::string::npos) continue;
    ++sigmoids;
    EXPECT_EQ(prod.at(node.input(0))->op_type(), "DequantizeLinear") << node.name();
  }
  EXPECT_GT(sigmoids, 20);

  // The defaults add exact extra pairs (concat inputs, after split / max-pool / resize) only.
  QdqExportResult r2;
  build_qdq_model(*m, small_options(QdqFlavour::kOnnxRuntime), &r2);
  EXPECT_EQ(r2.quantizer_pairs, acts);
  EXPECT_GT(r2.qdq_pairs, acts);
}

TEST(QdqExport, Int8WeightsAreTheFakeQuantGrid) {
  TempDir t("qdq_weights");
  auto m = calibrated_model(t.path(), "quantization.yaml", 2);
  const auto model = build_qdq_model(*m, small_options(QdqFlavour::kOnnxRuntime));
  int checked = 0;
  torch::NoGradGuard ng;
  for (const auto& item : m->named_modules("", false)) {
    auto* c = item.value()->as<model::ConvBnActImpl>();
    if (c == nullptr || c->weight_fq.is_empty()) continue;
    const std::string base = item.key() + ".conv";
    const auto* q = initializer(model, base + ".weight_quantized");
    const auto* s = initializer(model, base + ".weight_scale");
    const auto* z = initializer(model, base + ".weight_zero_point");
    ASSERT_TRUE(q && s && z) << base;
    EXPECT_EQ(q->data_type(), onnx::TensorProto::INT8);
    auto qi = to_tensor(*q).to(torch::kFloat32);
    auto scale = to_tensor(*s);
    EXPECT_EQ(scale.numel(), c->options().c2()) << "per-channel scale [C]";
    EXPECT_EQ(to_tensor(*z).abs().sum().item<int>(), 0) << "zero points 0";
    // round(w / s) of the weight the fake-quant forward uses (as ATen's kernel computes it: w * (1 / s),
    // half to even) ...
    const auto folded = quant::fold_conv_bn(c->conv->weight, {}, *c->bn).weight;
    const auto qp = c->weight_fq->qparams();
    const auto inv = 1.0f / qp.scale.view({-1, 1, 1, 1});
    EXPECT_TRUE(torch::equal(qi, torch::clamp(torch::round(folded * inv), -128, 127))) << base;
    // ... so that DequantizeLinear gives exactly the fake-quantized weight.
    EXPECT_TRUE(torch::equal(qi * scale.view({-1, 1, 1, 1}), c->weight_fq->forward(folded))) << base;
    ++checked;
  }
  EXPECT_GT(checked, 40);
}

TEST(QdqExport, OnnxRuntimeMatchesFakeQuant) {
  const std::string why = yq::testing::ort_unavailable();
  if (!why.empty()) GTEST_SKIP() << "ONNX Runtime check skipped: " << why;
  TempDir t("qdq_ort");
  auto m = calibrated_model(t.path(), "quantization.yaml", 3);
  const auto x = images(33);
  torch::Tensor ref;
  {
    torch::NoGradGuard ng;
    ref = m->forward(x);  // [1, 7, A]
  }
  struct Variant {
    const char* name;
    bool concat_in, passthrough, int32_bias;
  };
  for (const Variant v : {Variant{"faithful", false, false, false}, Variant{"default", true, true, false},
                          Variant{"int32-bias", true, true, true}}) {
    auto o = small_options(QdqFlavour::kOnnxRuntime);
    o.concat_input_qdq = v.concat_in, o.passthrough_qdq = v.passthrough, o.int32_bias = v.int32_bias;
    const fs::path f = t / (std::string(v.name) + ".onnx");
    const auto r = export_qdq(*m, f, o);
    auto y = yq::testing::run_ort(f, x, t.path());
    ASSERT_EQ(y.sizes(), ref.sizes());
    const double db = sqnr_db(ref, y);
    const double db_scores = sqnr_db(ref.narrow(1, 4, 3), y.narrow(1, 4, 3));
    std::printf(
        "[ onnx-qdq ] %-10s SQNR vs fake-quant %.1f dB (scores %.1f dB), max |d| %.4g, %lld pairs, %lld "
        "bytes\n",
        v.name, db, db_scores, (ref - y).abs().max().item<double>(), (long long)r.qdq_pairs,
        (long long)r.onnx.bytes);
    EXPECT_GT(db, kOrtMinSqnrDb) << v.name;
    EXPECT_GT(db_scores, kOrtMinSqnrDb - 10) << v.name;
  }
}

TEST(QdqExport, TensorRtFlavourFollowsItsRules) {
  TempDir t("qdq_trt");
  // The CPU profile (uint8 affine activations): every activation quantizer must become symmetric.
  auto m = calibrated_model(t.path(), "quantization.yaml", 4);
  fs::create_directories(t / "trt");
  const auto o = small_options(QdqFlavour::kTensorRt);
  const auto r = export_qdq(*m, t / "trt" / "m.onnx", o);
  const auto model = read_onnx(t / "trt" / "m.onnx");
  EXPECT_NO_THROW(check_onnx(model));
  int64_t acts = 0, pres = 0;
  for (auto& [name, fq] : quant::named_quantizers(*m)) {
    if (name.find("weight_fq") == std::string::npos) ++acts;
    if (name.find("pre_fq") != std::string::npos) ++pres;
  }
  // Each other activation quantizer is converted, unless its tensor only feeds Concats.
  EXPECT_EQ(r.made_symmetric + r.subsumed, acts - pres);
  EXPECT_GT(r.made_symmetric, r.subsumed);
  EXPECT_EQ(r.dropped_pre, pres);

  // All Q/DQ zero points 0 and int8.
  for (const auto& node : model.graph().node()) {
    if (node.op_type() != "QuantizeLinear" && node.op_type() != "DequantizeLinear") continue;
    const auto* zp = initializer(model, node.input(2));
    ASSERT_NE(zp, nullptr) << node.name();
    EXPECT_EQ(zp->data_type(), onnx::TensorProto::INT8) << node.name();
    EXPECT_EQ(to_tensor(*zp).abs().sum().item<int>(), 0) << node.name();
  }
  const auto prod = producers(model);
  auto from = [&](const std::string& tensor) {
    auto it = prod.find(tensor);
    return it == prod.end() ? std::string("graph input") : it->second->op_type();
  };
  int convs = 0, adds = 0, cats = 0;
  for (const auto& node : model.graph().node()) {
    const std::string& name = node.name();
    if (node.op_type() == "Sigmoid" && name.find(".act.sigmoid") != std::string::npos) {
      EXPECT_EQ(from(node.input(0)), "Conv") << name << ": nothing between Conv and SiLU";
    } else if (node.op_type() == "Conv" && name.find(".dfl.") == std::string::npos) {
      ++convs;
      EXPECT_EQ(from(node.input(0)), "DequantizeLinear") << name << ": Q/DQ on conv inputs";
      EXPECT_EQ(from(node.input(1)), "DequantizeLinear") << name << ": int8 weights";
    } else if (node.op_type() == "Add" && name.find(".add") != std::string::npos) {
      ++adds;
      for (const auto& in : node.input())
        EXPECT_EQ(from(in), "DequantizeLinear") << name << ": residual input";
    } else if (node.op_type() == "Concat" && name.find("model.22") == std::string::npos) {
      ++cats;
      std::set<std::string> scales;
      for (const auto& in : node.input()) {
        ASSERT_EQ(from(in), "DequantizeLinear") << name;
        scales.insert(prod.at(in)->input(1));
      }
      EXPECT_EQ(scales.size(), 1u) << name << ": concat inputs share one scale";
    }
  }
  EXPECT_GT(convs, 40);
  EXPECT_GT(adds, 0);
  EXPECT_GT(cats, 5);

  const std::string readme = read_text(t / "trt" / "README.md");
  EXPECT_NE(readme.find("trtexec --onnx=m.onnx --int8"), std::string::npos) << readme;
  EXPECT_NE(readme.find("--saveEngine=m.engine"), std::string::npos) << readme;
  EXPECT_EQ(readme.find("--calib"), std::string::npos) << readme;

  const std::string why = yq::testing::ort_unavailable();
  if (!why.empty()) GTEST_SKIP() << "ONNX Runtime part skipped: " << why;
  const auto x = images(44);
  torch::Tensor ref;
  {
    torch::NoGradGuard ng;
    ref = m->forward(x);
  }
  auto y = yq::testing::run_ort(t / "trt" / "m.onnx", x, t.path());
  const double db = sqnr_db(ref, y);
  std::printf("[ tensorrt ] SQNR vs fake-quant (run in ONNX Runtime) %.1f dB, %lld pairs\n", db,
              (long long)r.qdq_pairs);
  EXPECT_GT(db, kTrtMinSqnrDb);
}

TEST(QdqExport, TensorRtKeepsSymmetricQuantizers) {
  TempDir t("qdq_trt_sym");
  // The TensorRT profile: int8 symmetric narrow-range activations are used as they are.
  auto m = calibrated_model(t.path(), "experiments/exp1_symmetric_quant.yaml", 6);
  QdqExportResult r;
  const auto model = build_qdq_model(*m, small_options(QdqFlavour::kTensorRt), &r);
  EXPECT_NO_THROW(check_onnx(model));
  EXPECT_EQ(r.made_symmetric, 0);
  EXPECT_GT(r.qdq_pairs, 50);
  for (const auto& node : model.graph().node()) {
    if (node.op_type() != "QuantizeLinear" || node.input(0) != "images") continue;
    EXPECT_FLOAT_EQ(to_tensor(*initializer(model, node.input(1))).item<float>(), 1.f / 127);
  }
}

TEST(QdqExport, TensorRtRefusesAsymmetricWeights) {
  TempDir t("qdq_trt_asym");
  atomic_write(
      t / "asym.yaml",
      "weight: {observer: per_channel_minmax, bits: 8, signed: true, symmetric: false, per_channel: true}\n"
      "activation: {observer: minmax, bits: 8, signed: true, symmetric: true}\n");
  auto m = calibrated_model(t.path(), (t / "asym.yaml").string(), 5);
  EXPECT_THROW(build_qdq_model(*m, small_options(QdqFlavour::kTensorRt)), UsageError);
  // ONNX Runtime takes per-channel zero points.
  EXPECT_NO_THROW(check_onnx(build_qdq_model(*m, small_options(QdqFlavour::kOnnxRuntime))));
}

}  // namespace
}  // namespace yq::deploy
