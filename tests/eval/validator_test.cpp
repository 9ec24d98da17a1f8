#include "eval/validator.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "test_util.h"

namespace yq::eval {
namespace {

using yq::testing::TempDir;

TEST(Validator, ScaleToOriginalUndoesTheLetterbox) {
  // A 200x100 image letterboxed into 128x128: ratio 0.64, the 64-pixel-high content centred with
  // 32 pixels of padding above.
  data::LetterboxInfo lb;
  lb.ratio = 0.64, lb.pad_x = 0, lb.pad_y = 32, lb.out_w = 128, lb.out_h = 128;
  auto d = torch::tensor({{6.4f, 38.4f, 64.f, 96.f, 0.9f, 2.f}, {-5.f, 0.f, 200.f, 40.f, 0.5f, 1.f}});
  auto o = scale_to_original(d, lb, 100, 200);
  EXPECT_TRUE(torch::allclose(o[0], torch::tensor({10.f, 10.f, 100.f, 100.f, 0.9f, 2.f}), 1e-4, 1e-4));
  // Clipped to the image.
  EXPECT_FLOAT_EQ(o[1][0].item<float>(), 0.f);
  EXPECT_FLOAT_EQ(o[1][2].item<float>(), 200.f);
  EXPECT_FLOAT_EQ(o[1][1].item<float>(), 0.f);
}

std::vector<data::Sample> two_images() {
  data::Sample a{
      "/d/images/img_a.jpg", 200, 100, {{0, 0.5f, 0.5f, 0.2f, 0.4f}, {1, 0.25f, 0.25f, 0.1f, 0.1f}}};
  data::Sample b{"/d/images/img_b.jpg", 100, 100, {{1, 0.5f, 0.5f, 0.5f, 0.5f}}};
  return {a, b};
}

TEST(Validator, PredictionsFileScoresLikeTheLabels) {
  TempDir t("predfile");
  // Exact boxes for every label: a perfect file (AP 0.995 per class, the reference's ceiling).
  yq::testing::write_file(t / "p.json", R"([
    {"image_id": "img_a", "category_id": 0, "bbox": [80, 30, 40, 40], "score": 0.9},
    {"image_id": "img_a", "category_id": 1, "bbox": [40, 20, 20, 10], "score": 0.8},
    {"image_id": "img_b", "category_id": 1, "bbox": [25, 25, 50, 50], "score": 0.7},
    {"image_id": "nope", "category_id": 1, "bbox": [25, 25, 50, 50], "score": 0.7},
    {"image_id": "img_b", "category_id": 9, "bbox": [25, 25, 50, 50], "score": 0.7},
    {"image_id": "img_b", "bbox": [25, 25, 50, 50], "score": 0.7},
    {"image_id": "img_b", "category_id": 1, "bbox": [25, 25, 50], "score": 0.7}
  ])");
  DetectionMetrics m(2);
  ConfusionMatrix cm(2);
  auto r = score_predictions_file(t / "p.json", two_images(), m, cm);
  EXPECT_EQ(r.entries, 7);
  EXPECT_EQ(r.used, 3);
  EXPECT_EQ(r.unknown_images, 1);
  EXPECT_EQ(r.malformed, 3);
  EXPECT_NEAR(m.map50(), 0.995, 1e-9);
  EXPECT_NEAR(m.map(), 0.995, 1e-9);
  EXPECT_EQ(cm.at(1, 1), 2);
}

TEST(Validator, PredictionsFileIsScoredInDescendingScore) {
  // metrics_test's crowded case B at 10x scale in a 200x100 image: L0 = [0, 0, 100, 100], L1 = [30, 0,
  // 130, 100]; the exact box of L0 (score 0.9) and [10, 0, 110, 100] (0.8; IoU 0.818 with L0, 0.667 with
  // L1), listed low score first. Ranked by score, the reference rule gives L0 to the 0.9 box and leaves
  // the other unmatched: 0.6225 at every threshold (DetectionMetrics.ReferenceAndGreedyDifferInACrowd);
  // greedy also matches the 0.8 box to L1 at 0.50..0.65: mAP50 0.995, mAP50-95 0.7715.
  TempDir t("predorder");
  yq::testing::write_file(t / "p.json", R"([
    {"image_id": "img", "category_id": 0, "bbox": [10, 0, 100, 100], "score": 0.8},
    {"image_id": "img", "category_id": 0, "bbox": [0, 0, 100, 100], "score": 0.9}
  ])");
  std::vector<data::Sample> s{
      {"/d/images/img.jpg", 200, 100, {{0, 0.25f, 0.5f, 0.5f, 1.f}, {0, 0.4f, 0.5f, 0.5f, 1.f}}}};
  DetectionMetrics ref(1), greedy(1, MatchRule::greedy);
  ConfusionMatrix cm(1);
  score_predictions_file(t / "p.json", s, ref, cm);
  score_predictions_file(t / "p.json", s, greedy, cm);
  EXPECT_NEAR(ref.map50(), 0.6225, 1e-9);
  EXPECT_NEAR(ref.map(), 0.6225, 1e-9);
  EXPECT_NEAR(greedy.map50(), 0.995, 1e-9);
  EXPECT_NEAR(greedy.map(), 0.7715, 1e-9);
  // Both labels are 100x100 = 10^4 pixels: large.
  EXPECT_NEAR(ref.map_area(AreaRange::large), 0.6225, 1e-9);
  EXPECT_EQ(ref.map_area(AreaRange::small), -1.0);
}

TEST(Validator, PredictionsFileErrors) {
  TempDir t("predbad");
  DetectionMetrics m(2);
  ConfusionMatrix cm(2);
  yq::testing::write_file(t / "bad.json", "{ not json");
  EXPECT_THROW(score_predictions_file(t / "bad.json", two_images(), m, cm), UsageError);
  yq::testing::write_file(t / "obj.json", "{\"a\": 1}");
  EXPECT_THROW(score_predictions_file(t / "obj.json", two_images(), m, cm), UsageError);
}

}  // namespace
}  // namespace yq::eval
