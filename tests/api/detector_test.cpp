// The C++ API (include/yoloqat/detector.h): the same boxes as `yoloqat predict` on the same image, the
// batch overload equal to one image at a time, options and errors.
#include "yoloqat/detector.h"

#include <gtest/gtest.h>

#include <torch/torch.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "data/dataset.h"
#include "fixtures.h"
#include "model/checkpoint.h"
#include "model/yolov8.h"
#include "test_util.h"

namespace yq {
namespace {

using yq::testing::TempDir;

// Box coordinates of the API and of predictions.json (written with full float precision) agree to this.
constexpr double kBoxTol = 1e-3;
constexpr double kScoreTol = 1e-6;

// A tiny fp32 checkpoint (seeded, untrained: conf=0 gives max_det boxes) and images of the synthetic set.
class DetectorApi : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir("api");
    const fs::path yaml = yq::testing::write_tiny_dataset(dir_->path(), 1, 3, 1, 160, 96);
    const auto ds = data::load_dataset_yaml(yaml);
    torch::manual_seed(0);
    model::YoloV8 m(model::tiny_model_spec(ds.nc));
    m->set_names(ds.names);
    m->eval();
    ck_ = dir_->path() / "tiny.pt";
    model::save_checkpoint(ck_, m, nullptr, nullptr, {{"kind", "fp32"}});
    for (const auto& e : fs::directory_iterator(dir_->path() / "data/valid/images"))
      images_.push_back(e.path());
    std::sort(images_.begin(), images_.end());
    names_ = ds.names;
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static yoloqat::DetectorOptions options() {
    yoloqat::DetectorOptions o;
    o.conf = 0, o.max_det = 25, o.imgsz = 160, o.threads = 2;
    return o;
  }
  static TempDir* dir_;
  static fs::path ck_;
  static std::vector<fs::path> images_;
  static std::vector<std::string> names_;
};
TempDir* DetectorApi::dir_ = nullptr;
fs::path DetectorApi::ck_;
std::vector<fs::path> DetectorApi::images_;
std::vector<std::string> DetectorApi::names_;

void expect_same(const std::vector<yoloqat::Detection>& a, const std::vector<yoloqat::Detection>& b,
                 double tol, const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (size_t k = 0; k < a.size(); ++k) {
    EXPECT_EQ(a[k].class_id, b[k].class_id) << what << " box " << k;
    EXPECT_EQ(a[k].class_name, b[k].class_name) << what << " box " << k;
    EXPECT_NEAR(a[k].score, b[k].score, tol) << what << " box " << k;
    EXPECT_NEAR(a[k].x1, b[k].x1, tol) << what << " box " << k;
    EXPECT_NEAR(a[k].y1, b[k].y1, tol) << what << " box " << k;
    EXPECT_NEAR(a[k].x2, b[k].x2, tol) << what << " box " << k;
    EXPECT_NEAR(a[k].y2, b[k].y2, tol) << what << " box " << k;
  }
}

TEST_F(DetectorApi, SameBoxesAsCliPredict) {
  ASSERT_FALSE(images_.empty());
  const fs::path img = images_.front();
  cli::run_subcommand("predict", {"weights=" + ck_.string(), "source=" + img.string(), "conf=0", "max_det=25",
                                  "imgsz=160", "threads=2", "save=false", "save_txt=false", "log=warn",
                                  "project=" + dir_->path().string(), "name=cli", "exist_ok=true"});
  const auto preds = nlohmann::json::parse(read_text(dir_->path() / "reports/cli/predictions.json"));

  yoloqat::Detector det(ck_.string(), options());
  EXPECT_EQ(det.model_kind(), "fp32");
  EXPECT_EQ(det.num_classes(), int(names_.size()));
  EXPECT_EQ(det.class_names(), names_);
  EXPECT_EQ(det.stride(), 32);
  const auto boxes = det.detect(cv::imread(img.string(), cv::IMREAD_COLOR));
  ASSERT_EQ(boxes.size(), preds.size());
  ASSERT_EQ(boxes.size(), 25u);
  for (size_t k = 0; k < boxes.size(); ++k) {
    const auto& p = preds[k];
    const auto& b = boxes[k];
    EXPECT_EQ(b.class_id, p["category_id"].get<int>()) << k;
    EXPECT_EQ(b.class_name, p["name"].get<std::string>()) << k;
    EXPECT_NEAR(b.score, p["score"].get<double>(), kScoreTol) << k;
    const auto bb = p["bbox"];
    EXPECT_NEAR(b.x1, bb[0].get<double>(), kBoxTol) << k;
    EXPECT_NEAR(b.y1, bb[1].get<double>(), kBoxTol) << k;
    EXPECT_NEAR(b.x2 - b.x1, bb[2].get<double>(), kBoxTol) << k;
    EXPECT_NEAR(b.y2 - b.y1, bb[3].get<double>(), kBoxTol) << k;
    EXPECT_LE(b.x1, b.x2);
    EXPECT_LE(b.y1, b.y2);
  }
}

TEST_F(DetectorApi, BatchEqualsOneAtATime) {
  yoloqat::Detector det(ck_.string(), options());
  std::vector<cv::Mat> batch;
  for (const auto& p : images_) batch.push_back(cv::imread(p.string(), cv::IMREAD_COLOR));
  cv::Mat tall;  // another letterboxed size: its own forward
  cv::resize(batch.front(), tall, {64, 120});
  batch.push_back(tall);
  const auto all = det.detect(batch);
  ASSERT_EQ(all.size(), batch.size());
  for (size_t i = 0; i < batch.size(); ++i) {
    const auto one = det.detect(batch[i]);
    EXPECT_FALSE(one.empty());
    for (const auto& d : one) {
      EXPECT_GE(d.x1, 0);
      EXPECT_LE(d.x2, batch[i].cols);
      EXPECT_GE(d.y1, 0);
      EXPECT_LE(d.y2, batch[i].rows);
    }
    expect_same(all[i], one, 1e-3, "image " + std::to_string(i));
  }
  EXPECT_TRUE(det.detect(std::vector<cv::Mat>{}).empty());
}

TEST_F(DetectorApi, OptionsApply) {
  yoloqat::Detector det(ck_.string(), options());
  const cv::Mat img = cv::imread(images_.front().string(), cv::IMREAD_COLOR);
  const auto all = det.detect(img);
  ASSERT_FALSE(all.empty());

  auto o = options();
  o.max_det = 3;
  det.set_options(o);
  EXPECT_EQ(det.options().max_det, 3);
  expect_same(det.detect(img), {all.begin(), all.begin() + 3}, 0, "max_det=3");

  o = options();
  o.classes = {all.front().class_id};
  det.set_options(o);
  for (const auto& d : det.detect(img)) EXPECT_EQ(d.class_id, all.front().class_id);

  o = options();
  o.conf = 1;  // score > 1 never holds
  det.set_options(o);
  EXPECT_TRUE(det.detect(img).empty());

  // Grey and BGRA images are converted to BGR.
  det.set_options(options());
  cv::Mat grey, bgra, grey_bgr;
  cv::cvtColor(img, grey, cv::COLOR_BGR2GRAY);
  cv::cvtColor(grey, grey_bgr, cv::COLOR_GRAY2BGR);
  cv::cvtColor(img, bgra, cv::COLOR_BGR2BGRA);
  expect_same(det.detect(grey), det.detect(grey_bgr), 0, "grey");
  expect_same(det.detect(bgra), all, 0, "bgra");

  yoloqat::Detector moved = std::move(det);
  expect_same(moved.detect(img), all, 0, "moved");
}

TEST_F(DetectorApi, Errors) {
  auto bad = options();
  bad.conf = 2;
  EXPECT_THROW(yoloqat::Detector(ck_.string(), bad), yoloqat::UsageError);
  bad = options();
  bad.imgsz = 16;
  EXPECT_THROW(yoloqat::Detector(ck_.string(), bad), yoloqat::UsageError);

  yoloqat::Detector det(ck_.string(), options());
  bad = options();
  bad.classes = {99};
  EXPECT_THROW(det.set_options(bad), yoloqat::UsageError);
  EXPECT_THROW(det.detect(cv::Mat()), yoloqat::UsageError);
  EXPECT_THROW(det.detect(cv::Mat(32, 32, CV_32FC3)), yoloqat::UsageError);
  EXPECT_THROW(yoloqat::set_log_level("loud"), yoloqat::UsageError);

  // A file that is no model: an error naming it, derived from yoloqat::Error and std::runtime_error.
  const fs::path junk = dir_->path() / "junk.pt";
  yq::testing::write_file(junk, "not a model");
  try {
    yoloqat::Detector d(junk.string());
    FAIL() << "no exception";
  } catch (const yoloqat::Error& e) {
    EXPECT_NE(std::string(e.what()).find("junk.pt"), std::string::npos) << e.what();
  }
  EXPECT_THROW(yoloqat::Detector((dir_->path() / "missing.pt").string()), std::runtime_error);
}

// The reference YOLOv8 .pt fixture (nc 3) through the same API.
TEST(DetectorApiFiles, ReferencePt) {
  yoloqat::DetectorOptions o;
  o.conf = 0, o.max_det = 5, o.imgsz = 64, o.threads = 2;
  yoloqat::Detector det(std::string(YOLOQAT_SOURCE_DIR) + "/tests/model/fixtures/tiny.pt", o);
  EXPECT_EQ(det.num_classes(), 3);
  cv::Mat img(48, 80, CV_8UC3);
  cv::randu(img, 0, 255);
  const auto boxes = det.detect(img);
  EXPECT_EQ(boxes.size(), 5u);
  for (size_t k = 1; k < boxes.size(); ++k) EXPECT_LE(boxes[k].score, boxes[k - 1].score);
}

TEST(DetectorApiFiles, Version) {
  EXPECT_EQ(yoloqat::version(), YOLOQAT_VERSION_STRING);
  EXPECT_EQ(yoloqat::version(), YOLOQAT_VERSION);
}

}  // namespace
}  // namespace yq
