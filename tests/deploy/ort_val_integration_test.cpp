// `yoloqat val runtime=onnxruntime` (deploy/ort_session.h) against our own runtime, on the tiny model
// exported to onnx (fp32) and onnx-qdq (from a PTQ checkpoint of the same weights), at one square input
// (rect=false for ours). The tiny model has random weights, so the data set's labels are made from the
// fp32 model's own confident detections (pseudo labels): mAP is then far from 0 and moves with any
// difference in boxes or scores between the runtimes. Checked:
//  - per image, our top detections are found in ONNX Runtime's (same class, IoU > 0.9, score close);
//  - mAP50-95 within 0.5 points (issue 5);
//  - `val predictions=` on ONNX Runtime's predictions.json reproduces its metrics.json exactly;
//  - clear usage errors: a non-.onnx file, a class count mismatch.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <regex>

#include "cli/command.h"
#include "core/error.h"
#include "core/rng.h"
#include "data/boxes.h"
#include "deploy/export_fixtures.h"
#include "deploy/ort_session.h"
#include "deploy/ort_util.h"
#include "eval/validator.h"
#include "fixtures.h"
#include "model/checkpoint.h"
#include "quant/prepare.h"
#include "quant/qcheckpoint.h"
#include "test_util.h"

namespace yq::deploy {
namespace {

using yq::testing::TempDir;

constexpr int kImgsz = 96;
// Pseudo labels: fp32 detections above this score, at most kLabelsPerImage per image.
constexpr double kLabelScore = 0.3;
constexpr size_t kLabelsPerImage = 4;
constexpr double kJitter = 0.12;
// Detection agreement, over each image's top kTopK detections of ours.
constexpr size_t kTopK = 10;
constexpr double kMatchIou = 0.9;
constexpr double kFp32ScoreTol = 1e-4;  // fp32 export: the same math in another runtime
constexpr double kQdqScoreTol = 0.05;   // QDQ: ONNX Runtime's integer kernels vs fake quantization
constexpr double kFp32MinMatched = 0.98;
constexpr double kQdqMinMatched = 0.9;
// issue 5: "mAP within 0.5 points of ours" (on 12 images one detection crossing one IoU threshold moves
// mAP50-95 by 0.2-0.6 points, so this is tight; the set-up is seeded end to end and reproducible).
constexpr double kMaxMapPoints = 0.5;
// issue 12: our int8 model's mAP50-95 within 0.3 points of its fake-quant model, under every ISA cap.
constexpr double kMaxInt8Points = 0.3;

nlohmann::json read_json(const fs::path& p) {
  return nlohmann::json::parse(read_text(p));
}

struct Det {
  int cls = 0;
  float score = 0;
  data::BoxPx box;
};

// predictions.json -> detections by image id, highest score first.
std::map<std::string, std::vector<Det>> by_image(const fs::path& file) {
  std::map<std::string, std::vector<Det>> out;
  for (const auto& e : read_json(file)) {
    Det d;
    d.cls = e["category_id"].get<int>();
    d.score = e["score"].get<float>();
    const auto& b = e["bbox"];
    d.box = {d.cls, b[0].get<float>(), b[1].get<float>(), b[0].get<float>() + b[2].get<float>(),
             b[1].get<float>() + b[3].get<float>()};
    out[e["image_id"].get<std::string>()].push_back(d);
  }
  for (auto& [id, v] : out)
    std::stable_sort(v.begin(), v.end(), [](const Det& a, const Det& b) { return a.score > b.score; });
  return out;
}

// The fraction of our top-k detections (per image) that ONNX Runtime also has.
double matched_fraction(const fs::path& ours_file, const fs::path& ort_file, double score_tol,
                        const std::string& what) {
  const auto ours = by_image(ours_file), ort = by_image(ort_file);
  int64_t total = 0, matched = 0;
  for (const auto& [id, dets] : ours) {
    const auto it = ort.find(id);
    for (size_t k = 0; k < std::min(kTopK, dets.size()); ++k) {
      ++total;
      if (it == ort.end()) continue;
      for (const auto& o : it->second)
        if (o.cls == dets[k].cls && data::iou(o.box, dets[k].box) > kMatchIou &&
            std::abs(o.score - dets[k].score) <= score_tol) {
          ++matched;
          break;
        }
    }
  }
  std::printf("[ ort val ] %s: %lld of %lld of our top-%zu detections per image found in ONNX Runtime's\n",
              what.c_str(), (long long)matched, (long long)total, kTopK);
  EXPECT_GT(total, 20) << what;
  return total > 0 ? double(matched) / double(total) : 0;
}

// Rewrites the split's label files from `predictions` (pseudo labels) and drops the label cache.
// Each box's sides move by up to kJitter of its size (seeded), so that matches spread over the IoU
// thresholds 0.5..0.95 and mAP50-95 sits mid-range, where box differences move it.
void write_pseudo_labels(const fs::path& split_dir, const fs::path& predictions) {
  const auto dets = by_image(predictions);
  Rng rng(21);
  int64_t written = 0;
  // Sorted: directory order differs between runs, and the jitter's random sequence must meet the images
  // in the same order every time (else the labels, and the mAPs compared below, change from run to run).
  std::vector<fs::path> images;
  for (const auto& e : fs::directory_iterator(split_dir / "images")) images.push_back(e.path());
  std::sort(images.begin(), images.end());
  for (const auto& path : images) {
    const cv::Mat img = cv::imread(path.string());
    ASSERT_FALSE(img.empty()) << path;
    const std::string id = path.stem().string();
    std::string text;
    size_t n = 0;
    if (auto it = dets.find(id); it != dets.end())
      for (const auto& d : it->second) {
        if (d.score < kLabelScore || n >= kLabelsPerImage) break;
        const float bw = d.box.x2 - d.box.x1, bh = d.box.y2 - d.box.y1;
        auto jit = [&](float v, float size, float hi) {
          return std::clamp(v + float(rng.uniform(-kJitter, kJitter)) * size, 0.01f, hi - 0.01f);
        };
        const float x1 = jit(d.box.x1, bw, float(img.cols)), x2 = jit(d.box.x2, bw, float(img.cols));
        const float y1 = jit(d.box.y1, bh, float(img.rows)), y2 = jit(d.box.y2, bh, float(img.rows));
        if (x2 - x1 < 3 || y2 - y1 < 3) continue;
        text += fmt::format("{} {:.6f} {:.6f} {:.6f} {:.6f}\n", d.cls, (x1 + x2) / 2 / img.cols,
                            (y1 + y2) / 2 / img.rows, (x2 - x1) / img.cols, (y2 - y1) / img.rows);
        ++n;
      }
    written += int64_t(n);
    atomic_write(split_dir / "labels" / (id + ".txt"), text);
  }
  std::error_code ec;
  fs::remove(split_dir / "labels.yoloqat.json", ec);
  std::printf("[ ort val ] %lld pseudo labels written\n", (long long)written);
  ASSERT_GT(written, 10);
}

// After randomize_for_export: box branches that predict small distances (DFL bins 0..3 most likely)
// so that boxes are objects of 1-8 strides, not the whole image, and differ from anchor to anchor.
void localize_boxes(model::YoloV8& m, uint64_t seed) {
  torch::manual_seed(seed);
  torch::NoGradGuard ng;
  const std::regex last_box_conv(R"(cv2\.\d+\.2$)");
  int found = 0;
  for (const auto& item : m->named_modules()) {
    auto* conv = item.value()->as<torch::nn::Conv2dImpl>();
    if (conv == nullptr || !std::regex_search(item.key(), last_box_conv)) continue;
    const int64_t bins = conv->bias.size(0) / 4;  // reg_max
    conv->weight.mul_(0.5);
    conv->bias.copy_((-0.8 * torch::arange(bins, torch::kFloat)).repeat({4}) +
                     0.5 * torch::randn({4 * bins}));
    ++found;
  }
  ASSERT_EQ(found, 3);
}

class OrtVal : public ::testing::Test {
 protected:
  void SetUp() override {
    why_ = yq::testing::ort_unavailable();
    if (!why_.empty()) GTEST_SKIP() << "ONNX Runtime validation not tested: " << why_;
  }
  std::vector<std::string> args(std::vector<std::string> a, const std::string& name) {
    a.insert(a.end(), {"data=" + data_.string(), "project=" + dir_.path().string(), "name=" + name,
                       "split=val", "workers=0", "plots=false", "threads=2", "log=warn"});
    return a;
  }
  fs::path report(const std::string& name, const std::string& file) const {
    return dir_.path() / "reports" / name / file;
  }
  std::string why_;
  TempDir dir_{"ortval"};
  fs::path data_;
};

TEST_F(OrtVal, OursAndOnnxRuntimeAgreeAndPredictionsReproduceMetrics) {
  data_ = yq::testing::write_tiny_dataset(dir_.path(), 2, 12, 2, 128, 96);
  // The model's initial weights come from the global generator, whose state after the data set's writing
  // is not fixed: seed it here.
  torch::manual_seed(5);
  model::YoloV8 m(model::parse_model_name(yq::testing::write_tiny_model_yaml(dir_.path()).string(), 7));
  yq::testing::randomize_for_export(m, 11);
  ASSERT_NO_FATAL_FAILURE(localize_boxes(m, 12));
  const fs::path fp32 = dir_ / "fp32.pt";
  model::save_checkpoint(fp32, m, nullptr, nullptr, nlohmann::json::object());
  // PTQ of the same weights, calibrated on random images.
  const auto mapping = quant::QConfigMapping::load("quantization.yaml");
  model::YoloV8 q = model::copy_model(*m);
  quant::prepare(*q, mapping);
  q->eval();
  quant::enable_observers(*q, true);
  quant::enable_fake_quant(*q, false);
  {
    torch::NoGradGuard ng;
    for (int b = 0; b < 3; ++b) {
      torch::manual_seed(100 + b);
      q->forward(torch::randint(0, 256, {2, 3, kImgsz, kImgsz}).to(torch::kFloat) / 255.0);
    }
  }
  quant::freeze_quantizers(*q);
  quant::enable_fake_quant(*q, true);
  const fs::path ptq = dir_ / "ptq.pt";
  quant::save_quantized_checkpoint(ptq, q, nullptr, nullptr, nlohmann::json::object(), mapping, "ptq");

  const std::string sz = "imgsz=" + std::to_string(kImgsz);
  // Pseudo labels from our fp32 model at the square input.
  cli::run_subcommand("val", args({"weights=" + fp32.string(), sz, "rect=false", "save_json=true"}, "label"));
  ASSERT_NO_FATAL_FAILURE(
      write_pseudo_labels(data_.parent_path() / "valid", report("label", "predictions.json")));

  for (const auto& [format, weights] : {std::pair<std::string, fs::path>{"onnx", fp32}, {"onnx-qdq", ptq}}) {
    SCOPED_TRACE(format);
    cli::run_subcommand("export", {"weights=" + weights.string(), "format=" + format, sz,
                                   "project=" + dir_.path().string(), "name=tiny", "threads=2", "log=warn"});
    const fs::path onnx = dir_ / ("models/exported/" + format + "/tiny.onnx");
    ASSERT_TRUE(fs::is_regular_file(onnx));
    const auto info = read_onnx_info(onnx);
    EXPECT_EQ(info.batch, 1);
    EXPECT_EQ(info.height, kImgsz);
    EXPECT_EQ(info.nc, 7);
    EXPECT_EQ(info.qdq, format == "onnx-qdq");
    // The QDQ export says what it is exact on: target x86, pairs up to 2 x 127 x 128.
    EXPECT_EQ(info.target, format == "onnx-qdq" ? "x86" : "");
    EXPECT_EQ(info.pair_bound, format == "onnx-qdq" ? 32512 : 0);

    const std::string ours = format + "-ours", ort = format + "-ort", scored = format + "-scored";
    // Ours with rect=false at the export's size; ONNX Runtime at the file's size (imgsz= and batch=
    // given here are overridden by the file's).
    cli::run_subcommand("val",
                        args({"weights=" + weights.string(), sz, "rect=false", "save_json=true"}, ours));
    cli::run_subcommand("val", args({"weights=" + onnx.string(), "runtime=onnxruntime", "imgsz=160",
                                     "batch=4", "save_json=true"},
                                    ort));
    cli::run_subcommand("val", args({"predictions=" + report(ort, "predictions.json").string()}, scored));

    const auto mo = read_json(report(ours, "metrics.json")), mr = read_json(report(ort, "metrics.json"));
    EXPECT_EQ(mr["source"]["runtime"], "onnxruntime");
    EXPECT_EQ(mr["source"]["model"], onnx.string());
    EXPECT_EQ(mr["source"]["kind"], format);
    EXPECT_EQ(mr["source"]["imgsz"], kImgsz);
    EXPECT_EQ(mr["source"]["batch"], 1);
    EXPECT_EQ(mr["source"]["rect"], false);
    EXPECT_EQ(mo["source"]["runtime"], "yoloqat");
    EXPECT_EQ(mo["source"]["rect"], false);

    const double ours_map = mo["mAP50-95"].get<double>(), ort_map = mr["mAP50-95"].get<double>();
    std::printf("[ ort val ] %s: mAP50-95 ours %.4f, ONNX Runtime %.4f (%+.3f points); mAP50 %.4f / %.4f\n",
                format.c_str(), ours_map, ort_map, 100 * (ort_map - ours_map), mo["mAP50"].get<double>(),
                mr["mAP50"].get<double>());
    // Pseudo labels of this very model, jittered: mid-range, away from both ends.
    EXPECT_GT(ours_map, 0.2);
    EXPECT_LT(ours_map, 0.9);
    EXPECT_LE(std::abs(100 * (ort_map - ours_map)), kMaxMapPoints);
    const double frac = matched_fraction(report(ours, "predictions.json"), report(ort, "predictions.json"),
                                         format == "onnx" ? kFp32ScoreTol : kQdqScoreTol, format);
    EXPECT_GE(frac, format == "onnx" ? kFp32MinMatched : kQdqMinMatched);

    // The predictions file scored again gives ONNX Runtime's metrics exactly (all but "source").
    auto ms = read_json(report(scored, "metrics.json"));
    auto mr_cmp = mr;
    ms.erase("source"), mr_cmp.erase("source");
    EXPECT_EQ(ms, mr_cmp);
    EXPECT_EQ(read_text(report(scored, "confusion_matrix.json")),
              read_text(report(ort, "confusion_matrix.json")));
  }

  // The int8 model of the same PTQ checkpoint against its fake quant, same input and labels.
  cli::run_subcommand("convert", {"weights=" + ptq.string(), "project=" + dir_.path().string(), "name=tiny",
                                  "threads=2", "log=warn"});
  cli::run_subcommand(
      "val", args({"weights=" + (dir_ / "models/int8/tiny.int8").string(), sz, "rect=false"}, "int8"));
  const double fq_map = read_json(report("onnx-qdq-ours", "metrics.json"))["mAP50-95"].get<double>();
  const double q_map = read_json(report("int8", "metrics.json"))["mAP50-95"].get<double>();
  std::printf("[ ort val ] int8: mAP50-95 %.4f vs fake quant %.4f (%+.3f points)\n", q_map, fq_map,
              100 * (q_map - fq_map));
  EXPECT_LE(std::abs(100 * (q_map - fq_map)), kMaxInt8Points);

  // Usage errors: not an .onnx file; a model of another class count.
  EXPECT_THROW(cli::run_subcommand("val", args({"weights=" + fp32.string(), "runtime=onnxruntime"}, "bad")),
               UsageError);
  model::YoloV8 m3(model::parse_model_name(yq::testing::write_tiny_model_yaml(dir_.path()).string(), 3));
  const fs::path three = dir_ / "three.pt";
  model::save_checkpoint(three, m3, nullptr, nullptr, nlohmann::json::object());
  cli::run_subcommand("export", {"weights=" + three.string(), "imgsz=64", "project=" + dir_.path().string(),
                                 "name=three", "threads=2", "log=warn"});
  try {
    cli::run_subcommand(
        "val", args({"weights=" + (dir_ / "models/exported/onnx/three.onnx").string(), "runtime=onnxruntime"},
                    "bad3"));
    ADD_FAILURE() << "a 3-class model on a 7-class data set was accepted";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("has 3 classes"), std::string::npos) << e.what();
  }
}

TEST_F(OrtVal, SessionReportsRefusalsAndKeepsServing) {
  model::YoloV8 m(model::parse_model_name(yq::testing::write_tiny_model_yaml(dir_.path()).string(), 3));
  yq::testing::randomize_for_export(m, 5);
  const fs::path ck = dir_ / "m.pt";
  model::save_checkpoint(ck, m, nullptr, nullptr, nlohmann::json::object());
  cli::run_subcommand("export", {"weights=" + ck.string(), "imgsz=64", "project=" + dir_.path().string(),
                                 "name=m", "threads=1", "log=warn"});
  const fs::path onnx = dir_ / "models/exported/onnx/m.onnx";
  std::string why;
  const fs::path ort_dir = find_ort_dir("", why);
  ASSERT_FALSE(ort_dir.empty()) << why;
  OrtSession s(ort_dir, onnx, 1);
  EXPECT_EQ(s.input_name(), "images");
  EXPECT_EQ(s.output_name(), "output0");
  torch::manual_seed(3);
  const auto x = torch::rand({1, 3, 64, 64});
  std::vector<int64_t> dims;
  // A shape the model does not take: ONNX Runtime's message, and the session still serves.
  const auto bad = torch::rand({1, 3, 32, 32});
  EXPECT_THROW(s.run(bad.data_ptr<float>(), {1, 3, 32, 32}, dims), Error);
  const auto y = s.run(x.data_ptr<float>(), {1, 3, 64, 64}, dims);
  EXPECT_EQ(dims, (std::vector<int64_t>{1, 7, 84}));
  ASSERT_EQ(y.size(), size_t(7 * 84));
  // Same as our forward pass (the export tests check this more closely; here: the transport).
  torch::Tensor ref;
  {
    torch::NoGradGuard ng;
    ref = m->forward(x);
  }
  const auto got = torch::from_blob(const_cast<float*>(y.data()), {1, 7, 84}, torch::kFloat32);
  EXPECT_LT(yq::testing::compare(got, ref).max_rel, yq::testing::kFp32RelTol);
  // The detector runs a batch of 3 through the batch-1 model image by image.
  const eval::Detector det = ort_detector(std::make_shared<OrtSession>(ort_dir, onnx, 1), 1);
  const auto x3 = torch::rand({3, 3, 64, 64});
  const auto y3 = det.forward(x3);
  ASSERT_EQ(y3.sizes(), (std::vector<int64_t>{3, 7, 84}));
  torch::Tensor ref3;
  {
    torch::NoGradGuard ng;
    ref3 = m->forward(x3);
  }
  EXPECT_LT(yq::testing::compare(y3, ref3).max_rel, yq::testing::kFp32RelTol);
  // A file ONNX Runtime cannot load.
  atomic_write(dir_ / "junk.onnx", "not a model");
  EXPECT_THROW(OrtSession(ort_dir, dir_ / "junk.onnx", 1), Error);
}

}  // namespace
}  // namespace yq::deploy
