// The converted int8 model against the fake-quant model it came from (SQNR), its float layers, its
// file (save -> load -> same outputs, corrupt files) and the inference loader.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>
#include <iostream>

#include "core/cpu.h"
#include "core/error.h"
#include "deploy/int8_model.h"
#include "deploy/runtime.h"
#include "quant/prepare.h"
#include "quant/qcheckpoint.h"
#include "quant/quant_test_util.h"
#include "test_util.h"

namespace yq::deploy {
namespace {

using quant::testing::flat;
using quant::testing::images;
using quant::testing::sqnr_db;
using yq::testing::TempDir;

// Whole-model agreement of int8 with fake quant on the tiny model, raw head outputs (dB). Measured
// about 30-40 dB; a broken layer drops it far below.
constexpr double kMinSqnrDb = 20.0;

// A tiny model prepared with `mapping` and calibrated on random images (observers, then frozen).
model::YoloV8 calibrated(const quant::QConfigMapping& mapping, uint64_t seed = 7) {
  auto m = quant::testing::tiny_model(seed);
  quant::prepare(*m, mapping);
  m->eval();
  quant::enable_fake_quant(*m, false);
  quant::enable_observers(*m, true);
  torch::NoGradGuard ng;
  for (uint64_t b = 0; b < 3; ++b) m->forward_raw(images(2, 64, 100 + b));
  quant::freeze_quantizers(*m);
  quant::enable_fake_quant(*m, true);
  return m;
}

double model_sqnr(model::YoloV8& fake, Int8Model& q, const torch::Tensor& x) {
  torch::NoGradGuard ng;
  return sqnr_db(flat(fake->forward_raw(x)), flat(q.forward_raw(x)));
}

TEST(Int8Model, MatchesFakeQuantUint8Profile) {
  at::set_num_threads(1);
  auto m = calibrated(quant::QConfigMapping::load("quantization.yaml"));
  Int8Model q = convert(*m);
  const auto x = images(2, 64, 11);
  const double db = model_sqnr(m, q, x);
  std::cout << "int8 vs fake quant (uint8 affine activations), raw outputs: SQNR " << db << " dB\n";
  EXPECT_GT(db, kMinSqnrDb);
  // Every quantizable layer runs int8.
  for (const auto& r : q.report()) EXPECT_TRUE(r.int8) << r.name << " " << r.detail;
  // Decoded output has the float model's interface.
  torch::NoGradGuard ng;
  auto y = q.forward(x), ref = m->forward(x);
  EXPECT_EQ(y.sizes(), ref.sizes());
  std::cout << "decoded outputs: SQNR " << sqnr_db(ref, y) << " dB\n";
  EXPECT_GT(sqnr_db(ref, y), kMinSqnrDb);
}

TEST(Int8Model, MatchesFakeQuantTensorRTProfile) {
  at::set_num_threads(1);
  auto m = calibrated(quant::QConfigMapping::load("experiments/exp1_symmetric_quant.yaml"));
  Int8Model q = convert(*m);
  // Symmetric int8 activations cover codes 1..255 in our uint8 domain: exact with VNNI only.
  if (const auto e = q.exactness(cpu_onednn()); !e.exact) GTEST_SKIP() << "not exact here: " << e.why;
  const double db = model_sqnr(m, q, images(2, 64, 12));
  std::cout << "int8 vs fake quant (int8 symmetric activations), raw outputs: SQNR " << db << " dB\n";
  EXPECT_GT(db, kMinSqnrDb);
}

TEST(Int8Model, LayersKeptFloatRunInFloat) {
  at::set_num_threads(1);
  auto mapping = quant::QConfigMapping::load("quantization.yaml");
  mapping.add_rule("model.22.cv*.*.2", std::nullopt);  // head's final convs float
  mapping.add_rule("model.4.*", std::nullopt);         // a whole C2f float
  auto m = calibrated(mapping);
  Int8Model q = convert(*m);
  int64_t floats = 0;
  for (const auto& r : q.report()) {
    const bool should_be_float =
        r.name.rfind("model.4.", 0) == 0 || (r.name.rfind("model.22.", 0) == 0 && r.name.size() > 2 &&
                                             r.name.compare(r.name.size() - 2, 2, ".2") == 0);
    EXPECT_EQ(r.int8, !should_be_float) << r.name << " " << r.detail;
    floats += r.int8 ? 0 : 1;
  }
  EXPECT_GT(floats, 6);
  const double db = model_sqnr(m, q, images(2, 64, 13));
  std::cout << "int8 with float layers vs fake quant: SQNR " << db << " dB\n";
  EXPECT_GT(db, kMinSqnrDb);
}

TEST(Int8Model, DecodeIsDetectDecode) {
  auto m = quant::testing::tiny_model(3);
  auto m2 = calibrated(quant::QConfigMapping::load("quantization.yaml"), 3);
  Int8Model q = convert(*m2);
  torch::NoGradGuard ng;
  auto raw = m->forward_raw(images(1, 64, 14));
  EXPECT_TRUE(torch::allclose(q.decode(raw), m->decode(raw), 1e-5, 1e-4));
}

TEST(Int8Model, FloatModelIsRefused) {
  auto m = quant::testing::tiny_model(3);
  EXPECT_THROW(convert(*m), UsageError);
}

TEST(Int8Model, SaveLoadGivesIdenticalOutputs) {
  at::set_num_threads(1);
  TempDir dir("int8io");
  auto m = calibrated(quant::QConfigMapping::load("quantization.yaml"));
  m->set_names({"a", "b", "c"});
  Int8Model q = convert(*m);
  q.meta()["kind"] = "ptq";
  const fs::path p = dir / "tiny.int8";
  q.save(p);
  EXPECT_TRUE(Int8Model::is_int8_file(p));
  Int8Model r = Int8Model::load(p);
  EXPECT_EQ(r.names(), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(r.meta()["kind"], "ptq");
  EXPECT_EQ(r.engine(), "onednn");
  const auto x = images(2, 64, 15);
  EXPECT_TRUE(torch::equal(q.forward(x), r.forward(x)));
  // About a quarter of the fp32 parameters (small layers make per-channel scales and biases weigh
  // more here than in yolov8n).
  const double ratio = double(fs::file_size(p)) / double(4 * model::count_parameters(*m));
  std::cout << "tiny model: int8 file " << fs::file_size(p) << " bytes, " << ratio << " x fp32\n";
  EXPECT_LT(ratio, 0.45);
}

TEST(Int8Model, CorruptFilesNameTheFile) {
  TempDir dir("int8bad");
  auto m = calibrated(quant::QConfigMapping::load("quantization.yaml"));
  const fs::path good = dir / "good.int8";
  convert(*m).save(good);
  std::string bytes = read_text(good);
  auto expect_error = [&](const std::string& name, const std::string& content, const std::string& what) {
    const fs::path p = dir / name;
    yq::testing::write_file(p, content);
    try {
      Int8Model::load(p);
      ADD_FAILURE() << name << ": loaded";
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(p.string()), std::string::npos) << msg;
      EXPECT_NE(msg.find(what), std::string::npos) << msg;
    }
  };
  expect_error("truncated.int8", bytes.substr(0, bytes.size() / 2), "truncated");
  std::string flipped = bytes;
  flipped[bytes.size() / 2] = char(flipped[bytes.size() / 2] ^ 0x5a);
  expect_error("flipped.int8", flipped, "CRC-32");
  expect_error("other.int8", "PK\x03\x04 not ours", "not a yoloqat int8 model");
  expect_error("empty.int8", "", "not a yoloqat int8 model");
}

TEST(Int8Model, RuntimeLoadsInt8Files) {
  at::set_num_threads(1);
  TempDir dir("int8rt");
  auto m = calibrated(quant::QConfigMapping::load("quantization.yaml"));
  Int8Model q = convert(*m);
  const fs::path p = dir / "m.int8";
  q.save(p);
  auto im = load_inference_model(p);
  EXPECT_EQ(im.kind, "int8");
  EXPECT_EQ(im.nc, 3);
  EXPECT_EQ(im.max_stride, 32);
  EXPECT_EQ(im.file_bytes, int64_t(fs::file_size(p)));
  const auto x = images(1, 64, 16);
  EXPECT_TRUE(torch::equal(im.detector.forward(x), q.forward(x)));
}

// The pair bound of each target's int8 model, and the runtime's refusal where it is not exact: target
// x86 loads on every CPU (and ISA cap); x86-vnni loads where oneDNN has VNNI, else is refused with a line
// naming the file, the target and the CPU feature, unless allow_inexact.
TEST(RuntimeExact, TargetsAndRefusals) {
  at::set_num_threads(1);
  TempDir dir("int8exact");
  for (const std::string target : {"x86", "x86-vnni"}) {
    SCOPED_TRACE(target);
    auto mapping = quant::QConfigMapping::load("quantization.yaml");
    mapping.set_target(quant::parse_target(target));
    auto m = calibrated(mapping);
    EXPECT_EQ(quant::int8_pair_bound(*m), target == "x86" ? 2 * 127 * 128 : 2 * 255 * 128);
    Int8Model q = convert(*m);
    q.meta()["target"] = target;
    EXPECT_LE(q.pair_bound(), quant::int8_pair_bound(*m));  // stored codes are within the schemes' ranges
    if (target == "x86") EXPECT_LE(q.pair_bound(), quant::kInt16Max);
    if (target == "x86-vnni") EXPECT_GT(q.pair_bound(), quant::kInt16Max);
    const fs::path p = dir / (target + ".int8");
    q.save(p);
    const auto e = quant::int8_exactness(q.pair_bound(), cpu_onednn(), "onednn");
    std::cout << target << ": pair bound " << q.pair_bound() << ", " << (e.exact ? "exact" : "inexact")
              << " here: " << e.why << "\n";
    if (e.exact) {
      EXPECT_EQ(load_inference_model(p).kind, "int8");
      // Where it runs, it matches its fake-quant model.
      EXPECT_GT(model_sqnr(m, q, images(2, 64, 13)), kMinSqnrDb);
      continue;
    }
    EXPECT_EQ(target, "x86-vnni");
    try {
      load_inference_model(p);
      ADD_FAILURE() << "an inexact model was loaded";
    } catch (const UsageError& err) {
      const std::string what = err.what();
      for (const std::string& part : std::vector<std::string>{
               p.string(), "target x86-vnni", "VNNI", "vpmaddubsw", "target=x86", "allow_inexact=true"})
        EXPECT_NE(what.find(part), std::string::npos) << part << " not in: " << what;
    }
    EXPECT_EQ(load_inference_model(p, LoadOptions{true}).kind, "int8");
  }
  // QNNPACK accumulates in int32: a full-range model is exact on it everywhere.
  EXPECT_TRUE(quant::int8_exactness(2 * 255 * 128, cpu_onednn(), "qnnpack").exact);
}

}  // namespace
}  // namespace yq::deploy
