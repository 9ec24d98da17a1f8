#include "eval/metrics.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace yq::eval {
namespace {

// Hand-derived numbers are exact up to double rounding; this is the tolerance for them.
constexpr double kExact = 1e-12;

// dets [n, 6] (x1, y1, x2, y2, conf, cls)
torch::Tensor dets(const std::vector<std::array<float, 6>>& d) {
  auto t = torch::zeros({int64_t(d.size()), 6});
  for (size_t i = 0; i < d.size(); ++i)
    for (int j = 0; j < 6; ++j) t[int64_t(i)][j] = d[i][size_t(j)];
  return t;
}

// labels [m, 5] (cls, x1, y1, x2, y2)
torch::Tensor labels(const std::vector<std::array<float, 5>>& l) {
  auto t = torch::zeros({int64_t(l.size()), 5});
  for (size_t i = 0; i < l.size(); ++i)
    for (int j = 0; j < 5; ++j) t[int64_t(i)][j] = l[i][size_t(j)];
  return t;
}

std::vector<bool> row(const torch::Tensor& correct, int64_t i) {
  std::vector<bool> r;
  for (int64_t t = 0; t < correct.size(1); ++t) r.push_back(correct[i][t].item<bool>());
  return r;
}

const std::vector<bool> kAll(10, true), kNone(10, false);

TEST(BoxIou, HandComputedPairs) {
  auto a = torch::tensor(std::vector<float>{0, 0, 10, 10, 0, 0, 10, 10}).view({2, 4});
  auto b = torch::tensor(std::vector<float>{5, 0, 15, 10, 20, 20, 30, 30, 0, 0, 10, 10}).view({3, 4});
  auto iou = box_iou(a, b);
  ASSERT_EQ(iou.sizes(), (std::vector<int64_t>{2, 3}));
  EXPECT_NEAR(iou[0][0].item<float>(), 50.0 / 150.0, 1e-6);  // half overlap: 50 / (100 + 100 - 50)
  EXPECT_EQ(iou[0][1].item<float>(), 0.f);                   // disjoint
  EXPECT_EQ(iou[1][2].item<float>(), 1.f);  // identical (eps 1e-7 vanishes in float at area 100)
}

TEST(NpInterp, ReadsTheLastOfEqualAbscissae) {
  std::vector<double> xp = {0, 0, 1, 1}, fp = {1, 0.5, 0.5, 0};
  EXPECT_EQ(np_interp(0, xp, fp, 9, 9), 0.5);    // last of the two zeros
  EXPECT_EQ(np_interp(0.5, xp, fp, 9, 9), 0.5);  // between (0, 0.5) and (1, 0.5)
  EXPECT_EQ(np_interp(1, xp, fp, 9, 9), 0.0);    // last of the two ones
  EXPECT_EQ(np_interp(-1, xp, fp, 7, 9), 7.0);   // left
  EXPECT_EQ(np_interp(2, xp, fp, 7, 9), 9.0);    // right
  EXPECT_NEAR(np_interp(0.25, {0, 1}, {0, 4}, 0, 0), 1.0, kExact);
}

// Perfect: recall [1], precision [1] -> padded recall [0, 1, 1], precision [1, 1, 0], envelope the same.
// The envelope read at x = 0, 0.01, ..., 0.99 lies on the segment (0, 1)-(1, 1): 1. At x = 1 numpy.interp
// reads the last point with recall 1, the padding: 0. Trapezoid: 99 intervals of 0.01 * 1, and one of
// 0.01 * (1 + 0) / 2: AP = 0.99 + 0.005 = 0.995 (the reference's ceiling; 1.0 is never reached).
TEST(AveragePrecision, PerfectCurveIs0995) {
  EXPECT_NEAR(average_precision({1}, {1}), 0.995, kExact);
}

// Recall stops at 0.5 with precision 1: padded recall [0, 0.5, 1], precision [1, 1, 0]. The envelope is 1
// on [0, 0.5] and falls linearly to 0 at recall 1; both pieces are linear between grid points, so the
// trapezoid is exact: 0.5 * 1 + 0.5 * 1 / 2 = 0.75.
TEST(AveragePrecision, HalfRecallIs075) {
  EXPECT_NEAR(average_precision({0.5}, {1}), 0.75, kExact);
}

TEST(MatchPredictions, IouExactlyOnTheThresholdMatches) {
  // [0, 0, 10, 10] against [0, 0, 10, 5]: IoU 50 / 100 = 0.5 exactly (float); the reference uses >=.
  auto c = match_predictions(dets({{0, 0, 10, 10, 0.9f, 0}}), labels({{0, 0, 0, 10, 5}}));
  ASSERT_EQ(c.sizes(), (std::vector<int64_t>{1, 10}));
  EXPECT_EQ(row(c, 0),
            (std::vector<bool>{true, false, false, false, false, false, false, false, false, false}));
}

TEST(MatchPredictions, IsClassAware) {
  auto c = match_predictions(dets({{0, 0, 10, 10, 0.9f, 1}}), labels({{0, 0, 0, 10, 10}}));
  EXPECT_EQ(row(c, 0), kNone);
}

TEST(MatchPredictions, DuplicateDetectionIsAFalsePositive) {
  auto c = match_predictions(dets({{0, 0, 10, 10, 0.9f, 0}, {0, 0, 10, 10, 0.8f, 0}}),
                             labels({{0, 0, 0, 10, 10}}));
  EXPECT_EQ(row(c, 0), kAll);
  EXPECT_EQ(row(c, 1), kNone);
}

// Crowded case A. L0 = [0, 0, 10, 10], L1 = [3, 0, 13, 10]; D0 = [1, 0, 11, 10] (conf 0.9),
// D1 = [0, 0, 10, 10] (conf 0.8). IoU: D1-L0 1.0, D0-L0 90/110 = 0.818, D0-L1 80/120 = 0.667,
// D1-L1 70/130 = 0.538. Thresholds t0..t9 = 0.50, 0.55, ..., 0.95.
torch::Tensor crowded_a_dets() {
  return dets({{1, 0, 11, 10, 0.9f, 0}, {0, 0, 10, 10, 0.8f, 0}});
}
torch::Tensor crowded_a_labels() {
  return labels({{0, 0, 0, 10, 10}, {0, 3, 0, 13, 10}});
}

TEST(MatchPredictions, GreedyByIouIsOneToOne) {
  // Greedy: D1-L0 first (1.0) at every threshold; then D0 can still take L1 while 0.667 >= threshold,
  // i.e. at 0.50..0.65 (t0..t3).
  auto c = match_predictions(crowded_a_dets(), crowded_a_labels(), iou_thresholds(), MatchRule::greedy);
  EXPECT_EQ(row(c, 0), (std::vector<bool>{true, true, true, true, false, false, false, false, false, false}));
  EXPECT_EQ(row(c, 1), kAll);
}

TEST(MatchPredictions, ReferenceGivesALabelToTheFirstDetectionNamingIt) {
  // Reference, threshold 0.50: pairs (label, det, IoU) sorted by IoU descending:
  //   (L0, D1, 1.0), (L0, D0, 0.818), (L1, D0, 0.667), (L1, D1, 0.538)
  // unique on det (first occurrence), in det order: (L0, D0), (L0, D1)
  // unique on label: L0 -> (L0, D0). So D0 is correct, D1 (the exact box) is not, L1 is missed.
  // The same up to 0.80 (t0..t6): D0-L0 0.818 stays, the pairs below the threshold only drop out.
  // At 0.85..0.95 (t7..t9) the only pair left is (L0, D1, 1.0): D1 is correct.
  auto c = match_predictions(crowded_a_dets(), crowded_a_labels());  // the default rule
  EXPECT_EQ(row(c, 0), (std::vector<bool>{true, true, true, true, true, true, true, false, false, false}));
  EXPECT_EQ(row(c, 1),
            (std::vector<bool>{false, false, false, false, false, false, false, true, true, true}));
}

TEST(MatchPredictions, ReferenceLeavesTheLosersUnmatchedEvenWhereTheyFitAnotherLabel) {
  // Crowded case B. L0 = [0, 0, 10, 10], L1 = [3, 0, 13, 10]; D0 = [0, 0, 10, 10] (conf 0.9),
  // D1 = [1, 0, 11, 10] (conf 0.8). IoU: D0-L0 1.0, D1-L0 0.818, D1-L1 0.667, D0-L1 0.538.
  // Reference at 0.50: sorted (L0, D0, 1.0), (L0, D1, 0.818), (L1, D1, 0.667), (L1, D0, 0.538);
  //   unique on det: (L0, D0), (L0, D1); unique on label: L0 -> D0. D1 is a false positive at every
  //   threshold (at t7..t9 it has no pair at all), D0 correct everywhere.
  // Greedy: D0-L0, then D1-L1 while 0.667 >= threshold (t0..t3).
  auto d = dets({{0, 0, 10, 10, 0.9f, 0}, {1, 0, 11, 10, 0.8f, 0}});
  auto l = crowded_a_labels();
  auto ref = match_predictions(d, l);
  EXPECT_EQ(row(ref, 0), kAll);
  EXPECT_EQ(row(ref, 1), kNone);
  auto greedy = match_predictions(d, l, iou_thresholds(), MatchRule::greedy);
  EXPECT_EQ(row(greedy, 0), kAll);
  EXPECT_EQ(row(greedy, 1),
            (std::vector<bool>{true, true, true, true, false, false, false, false, false, false}));
}

TEST(MatchPredictions, ReferenceThreeInARow) {
  // L0 = [0, 0, 10, 10], L1 = [10, 0, 20, 10], L2 = [20, 0, 30, 10]; D0 = [12, 0, 22, 10] (0.9),
  // D1 = [8, 0, 18, 10] (0.8), D2 = [19, 0, 29, 10] (0.7).
  // IoU: D0-L1 80/120 = 0.667, D0-L2 20/180 = 0.111; D1-L1 80/120 = 0.667, D1-L0 20/180 = 0.111;
  //      D2-L2 90/110 = 0.818, D2-L1 10/190 = 0.053.
  // Reference at 0.50: pairs >= 0.5: (L1, D0, 0.667), (L1, D1, 0.667), (L2, D2, 0.818); sorted:
  //   (L2, D2), (L1, D0), (L1, D1) (stable: the two 0.667 keep nonzero's order, D0 before D1; either way
  //   (2) re-orders by detection); unique on det: (L1, D0), (L1, D1), (L2, D2); unique on label:
  //   L1 -> D0, L2 -> D2. D1 is a false positive; D0 correct while 0.667 >= t (t0..t3), D2 while 0.818 >=
  //   t (t0..t6). Greedy agrees here (D1 has no other label above 0.5).
  auto c =
      match_predictions(dets({{12, 0, 22, 10, 0.9f, 0}, {8, 0, 18, 10, 0.8f, 0}, {19, 0, 29, 10, 0.7f, 0}}),
                        labels({{0, 0, 0, 10, 10}, {0, 10, 0, 20, 10}, {0, 20, 0, 30, 10}}));
  EXPECT_EQ(row(c, 0), (std::vector<bool>{true, true, true, true, false, false, false, false, false, false}));
  EXPECT_EQ(row(c, 1), kNone);
  EXPECT_EQ(row(c, 2), (std::vector<bool>{true, true, true, true, true, true, true, false, false, false}));
}

TEST(MatchPredictions, ReferenceTieTakesTheLowerLabelIndex) {
  // The documented tie rule (a stable descending sort). L0 = [0, 0, 10, 10], L1 = [2, 0, 12, 10];
  // D0 = [1, 0, 11, 10] (0.9) lies between them: IoU 90/110 with both, computed by the same float
  // operations, so exactly equal. D1 = [3, 0, 13, 10] (0.8): D1-L1 90/110, D1-L0 70/130 = 0.538.
  // Stable sort at 0.50: (L0, D0), (L1, D0), (L1, D1) (the equal 0.818s in nonzero's label-major order),
  // (L0, D1, 0.538). unique on det: D0 -> L0 (the lower label index), D1 -> L1; both correct while
  // 0.818 >= t (t0..t6). (numpy's insertion sort reversed would put (L1, D0) first: D0 -> L1, and L1
  // would go to D0, leaving D1 and L0 unmatched.)
  const std::vector<bool> to_080{true, true, true, true, true, true, true, false, false, false};
  auto c = match_predictions(dets({{1, 0, 11, 10, 0.9f, 0}, {3, 0, 13, 10, 0.8f, 0}}),
                             labels({{0, 0, 0, 10, 10}, {0, 2, 0, 12, 10}}));
  EXPECT_EQ(row(c, 0), to_080);
  EXPECT_EQ(row(c, 1), to_080);
}

TEST(MatchPredictions, RuleNames) {
  EXPECT_EQ(parse_match_rule("reference"), MatchRule::reference);
  EXPECT_EQ(parse_match_rule("greedy"), MatchRule::greedy);
  EXPECT_STREQ(match_rule_name(MatchRule::greedy), "greedy");
  try {
    parse_match_rule("hungarian");
    FAIL() << "no error";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("reference, greedy"), std::string::npos) << e.what();
  }
}

TEST(MatchPredictions, EmptyInputs) {
  EXPECT_EQ(match_predictions(torch::zeros({0, 6}), labels({{0, 0, 0, 1, 1}})).sizes(),
            (std::vector<int64_t>{0, 10}));
  EXPECT_EQ(row(match_predictions(dets({{0, 0, 1, 1, 0.5f, 0}}), torch::zeros({0, 5})), 0), kNone);
}

// --- DetectionMetrics on tiny hand-made sets -----------------------------------------------------------

TEST(DetectionMetrics, PerfectPredictions) {
  // Two images, three labels of two classes, each predicted exactly: every class has AP 0.995 at every
  // threshold (see AveragePrecision.PerfectCurveIs0995), so mAP50 = mAP50-95 = fitness = 0.995.
  // P and R: for confidence thresholds up to 0.8 both are 1 (F1 = 1), above it R = 0; the smoothed mean F1
  // is highest from threshold 0 on, so P = R = 1.
  DetectionMetrics m(2);
  m.add(dets({{0, 0, 10, 10, 0.9f, 0}, {20, 20, 40, 40, 0.8f, 1}}),
        labels({{0, 0, 0, 10, 10}, {1, 20, 20, 40, 40}}));
  m.add(dets({{5, 5, 25, 15, 0.85f, 0}}), labels({{0, 5, 5, 25, 15}}));
  m.compute();
  EXPECT_NEAR(m.map50(), 0.995, kExact);
  EXPECT_NEAR(m.map(), 0.995, kExact);
  EXPECT_NEAR(m.fitness(), 0.995, kExact);
  EXPECT_NEAR(m.precision(), 1.0, kExact);
  EXPECT_NEAR(m.recall(), 1.0, kExact);
  EXPECT_EQ(m.n_labels(0), 2);
  EXPECT_EQ(m.n_images(0), 2);
  EXPECT_EQ(m.n_images(1), 1);
  EXPECT_EQ(m.images(), 2);
}

TEST(DetectionMetrics, OneFalsePositiveRankedFirst) {
  // One label; a false positive at conf 0.9 then the true positive at 0.8.
  // TP [0, 1] -> recall [0, 1], precision [0, 0.5]; padded recall [0, 0, 1, 1], precision [1, 0, 0.5, 0];
  // envelope [1, 0.5, 0.5, 0]. Read at x = 0: the last point with recall 0 -> 0.5; for 0 < x < 1 the
  // segment (0, 0.5)-(1, 0.5) -> 0.5; at x = 1 the padding -> 0.
  // AP = 99 * 0.01 * 0.5 + 0.01 * (0.5 + 0) / 2 = 0.495 + 0.0025 = 0.4975 at every threshold (IoU 1).
  // P, R: below conf 0.8 recall 1 and precision 0.5 (F1 2/3, the maximum) -> P = 0.5, R = 1.
  DetectionMetrics m(1);
  m.add(dets({{50, 50, 60, 60, 0.9f, 0}, {0, 0, 10, 10, 0.8f, 0}}), labels({{0, 0, 0, 10, 10}}));
  m.compute();
  EXPECT_NEAR(m.map50(), 0.4975, kExact);
  EXPECT_NEAR(m.map(), 0.4975, kExact);
  EXPECT_NEAR(m.precision(), 0.5, kExact);
  EXPECT_NEAR(m.recall(), 1.0, kExact);
  EXPECT_NEAR(m.result().f1[0].item<double>(), 2.0 / 3.0, 1e-9);
  EXPECT_NEAR(m.result().best_conf, 0.0, kExact);
}

TEST(DetectionMetrics, ClassWithoutPredictionsCountsZeroAndClassWithoutLabelsIsIgnored) {
  // Class 0: one label, predicted exactly -> AP 0.995. Class 1: one label, no detection -> AP 0.
  // Class 2: a detection but no label -> not part of any mean.
  // mAP50 = mAP50-95 = (0.995 + 0) / 2 = 0.4975; P = (1 + 0) / 2, R = (1 + 0) / 2.
  DetectionMetrics m(3);
  m.add(dets({{0, 0, 10, 10, 0.9f, 0}, {30, 30, 40, 40, 0.95f, 2}}),
        labels({{0, 0, 0, 10, 10}, {1, 50, 50, 70, 70}}));
  m.compute();
  EXPECT_NEAR(m.map50(), 0.4975, kExact);
  EXPECT_NEAR(m.map(), 0.4975, kExact);
  EXPECT_NEAR(m.precision(), 0.5, kExact);
  EXPECT_NEAR(m.recall(), 0.5, kExact);
  EXPECT_NEAR(m.ap50(0), 0.995, kExact);
  EXPECT_EQ(m.ap50(1), 0.0);
  EXPECT_TRUE(m.has_labels(1));
  EXPECT_FALSE(m.has_labels(2));
  EXPECT_EQ(m.result().classes, (std::vector<int>{0, 1}));
}

TEST(DetectionMetrics, DuplicateDetectionsOnOneLabel) {
  // Labels A and B (class 0). Detections: A at 0.9 (TP), A again at 0.8 (duplicate: FP), B at 0.7 (TP).
  // TP [1, 0, 1] -> recall [0.5, 0.5, 1], precision [1, 0.5, 2/3]; padded recall [0, 0.5, 0.5, 1, 1],
  // precision [1, 1, 0.5, 2/3, 0]; envelope [1, 1, 2/3, 2/3, 0].
  // Read: 1 for x < 0.5; at x = 0.5 the last point with recall 0.5 -> 2/3; 2/3 up to 0.99; 0 at x = 1.
  // Trapezoid: 49 intervals * 1 + (1 + 2/3) / 2 + 49 intervals * 2/3 + (2/3 + 0) / 2 = 82 + 5/6, times 0.01:
  // AP = 0.82 + 1/120 = 0.828333...
  // Without the duplicate the same set scores 0.995.
  DetectionMetrics m(1), clean(1);
  auto l = labels({{0, 0, 0, 10, 10}, {0, 20, 20, 30, 30}});
  m.add(dets({{0, 0, 10, 10, 0.9f, 0}, {0, 0, 10, 10, 0.8f, 0}, {20, 20, 30, 30, 0.7f, 0}}), l);
  clean.add(dets({{0, 0, 10, 10, 0.9f, 0}, {20, 20, 30, 30, 0.7f, 0}}), l);
  m.compute();
  clean.compute();
  EXPECT_NEAR(m.map50(), 0.82 + 1.0 / 120.0, kExact);
  EXPECT_NEAR(m.map(), 0.82 + 1.0 / 120.0, kExact);
  EXPECT_NEAR(clean.map50(), 0.995, kExact);
}

TEST(DetectionMetrics, IouExactlyOnTheThreshold) {
  // IoU exactly 0.5: a true positive at 0.5 only -> AP 0.995 at 0.5, 0 at the nine other thresholds:
  // mAP50 = 0.995, mAP50-95 = 0.0995, fitness = 0.1 * 0.995 + 0.9 * 0.0995 = 0.0995 + 0.08955 = 0.18905.
  DetectionMetrics m(1);
  m.add(dets({{0, 0, 10, 10, 0.9f, 0}}), labels({{0, 0, 0, 10, 5}}));
  m.compute();
  EXPECT_NEAR(m.map50(), 0.995, kExact);
  EXPECT_NEAR(m.map(), 0.0995, kExact);
  EXPECT_NEAR(m.map75(), 0.0, kExact);
  EXPECT_NEAR(m.fitness(), 0.18905, kExact);
}

TEST(DetectionMetrics, RightBoxWrongClassIsNotAMatch) {
  // Class 0 is labelled, the detection says class 1: no true positive anywhere, so everything is 0.
  DetectionMetrics m(2);
  m.add(dets({{0, 0, 10, 10, 0.9f, 1}}), labels({{0, 0, 0, 10, 10}}));
  m.compute();
  EXPECT_EQ(m.map50(), 0.0);
  EXPECT_EQ(m.map(), 0.0);
  EXPECT_EQ(m.precision(), 0.0);
  EXPECT_EQ(m.recall(), 0.0);
}

TEST(DetectionMetrics, ImagesWithoutLabelsOrDetections) {
  // An image with only a false positive lowers precision along the curve: FP at 0.95 first, then the
  // TP at 0.9 of the other image -> the same numbers as OneFalsePositiveRankedFirst.
  DetectionMetrics m(1);
  m.add(dets({{0, 0, 10, 10, 0.95f, 0}}), torch::Tensor());
  m.add(torch::Tensor(), torch::Tensor());
  m.add(dets({{0, 0, 10, 10, 0.9f, 0}}), labels({{0, 0, 0, 10, 10}}));
  m.compute();
  EXPECT_EQ(m.images(), 3);
  EXPECT_NEAR(m.map50(), 0.4975, kExact);
  EXPECT_EQ(m.n_images(0), 1);
}

TEST(DetectionMetrics, ReferenceAndGreedyDifferInACrowd) {
  // Crowded case B (MatchPredictions above), one image.
  // Reference: TP [1, 0] at every threshold -> recall [0.5, 0.5], precision [1, 0.5]; padded recall
  // [0, 0.5, 0.5, 1], precision [1, 1, 0.5, 0]; envelope the same. Read: 1 for x < 0.5, 0.5 at x = 0.5
  // (the last point with recall 0.5), then linear down to 0 at x = 1. Trapezoid: 49 * 0.01 * 1 +
  // 0.01 * (1 + 0.5) / 2 + 0.5 * 0.5 / 2 = 0.49 + 0.0075 + 0.125 = 0.6225 at every threshold.
  // Greedy: TP [1, 1] at t0..t3 -> 0.995; t4..t9 as the reference, 0.6225.
  // mAP50-95 greedy = (4 * 0.995 + 6 * 0.6225) / 10 = 0.7715.
  auto d = dets({{0, 0, 10, 10, 0.9f, 0}, {1, 0, 11, 10, 0.8f, 0}});
  auto l = labels({{0, 0, 0, 10, 10}, {0, 3, 0, 13, 10}});
  DetectionMetrics ref(1), greedy(1, MatchRule::greedy);
  ref.add(d, l);
  greedy.add(d, l);
  ref.compute();
  greedy.compute();
  EXPECT_EQ(ref.match(), MatchRule::reference);
  EXPECT_NEAR(ref.map50(), 0.6225, kExact);
  EXPECT_NEAR(ref.map(), 0.6225, kExact);
  EXPECT_NEAR(greedy.map50(), 0.995, kExact);
  EXPECT_NEAR(greedy.map(), 0.7715, kExact);
  EXPECT_EQ(ref.to_json()["match"], "reference");
  EXPECT_EQ(greedy.to_json()["match"], "greedy");
}

TEST(DetectionMetrics, MatchesInDescendingConfidence) {
  // Case B given low confidence first: add() puts D0 (0.9) first before matching, so the numbers are
  // those of ReferenceAndGreedyDifferInACrowd. (Matched in the given order, D1 would take L0 at t0..t6
  // and the set would score 0.375 there.)
  auto l = labels({{0, 0, 0, 10, 10}, {0, 3, 0, 13, 10}});
  DetectionMetrics m(1);
  m.add(dets({{1, 0, 11, 10, 0.8f, 0}, {0, 0, 10, 10, 0.9f, 0}}), l);
  m.compute();
  EXPECT_NEAR(m.map50(), 0.6225, kExact);
  EXPECT_NEAR(m.map(), 0.6225, kExact);
}

// --- AP by object size -------------------------------------------------------------------------------

TEST(AreaRange, CocoBoundaries) {
  EXPECT_EQ(area_range(0), AreaRange::small);
  EXPECT_EQ(area_range(1023.99), AreaRange::small);
  EXPECT_EQ(area_range(1024), AreaRange::medium);
  EXPECT_EQ(area_range(9216), AreaRange::medium);
  EXPECT_EQ(area_range(9216.01), AreaRange::large);
  EXPECT_STREQ(area_range_name(AreaRange::medium), "medium");
}

TEST(DetectionMetrics, ApBySize) {
  // Labels (class 0): S = [0, 0, 30, 30] (area 900, small), M = [100, 100, 150, 150] (2500, medium); none
  // large. D0 = [0, 0, 33, 33] (conf 0.9, area 1089: medium by itself), IoU with S 900/1089 = 0.826;
  // D1 = [100, 100, 150, 150] (0.8) = M.
  // t0..t6 (0.50..0.80): D0 matched to S -> counts in small; D1 in medium. Both TP.
  // t7..t9 (0.85..0.95): D0 unmatched -> counts in medium by its own area (a FP); D1 TP in medium.
  // small: AP 0.995 at t0..t6 (one TP, one label), 0 at t7..t9 (no detection): mAP = 7 * 0.995 / 10 = 0.6965.
  // medium: 0.995 at t0..t6; at t7..t9 FP (0.9) then TP (0.8) on one label = 0.4975
  //   (OneFalsePositiveRankedFirst): mAP = (7 * 0.995 + 3 * 0.4975) / 10 = 0.84575.
  // large: no labels -> -1 (null in JSON).
  // All sizes together: t0..t6 0.995; t7..t9 FP then TP of two labels: recall [0, 0.5], precision
  //   [0, 0.5]; padded [0, 0, 0.5, 1] / [1, 0, 0.5, 0], envelope [1, 0.5, 0.5, 0]: 0.5 on [0, 0.5], then
  //   linear to 0: 0.25 + 0.125 = 0.375. mAP = (7 * 0.995 + 3 * 0.375) / 10 = 0.809.
  DetectionMetrics m(1);
  m.add(dets({{0, 0, 33, 33, 0.9f, 0}, {100, 100, 150, 150, 0.8f, 0}}),
        labels({{0, 0, 0, 30, 30}, {0, 100, 100, 150, 150}}));
  m.compute();
  EXPECT_NEAR(m.map(), 0.809, kExact);
  EXPECT_NEAR(m.map_area(AreaRange::small), 0.6965, kExact);
  EXPECT_NEAR(m.map_area(AreaRange::medium), 0.84575, kExact);
  EXPECT_EQ(m.map_area(AreaRange::large), -1.0);
  EXPECT_EQ(m.n_labels_area(AreaRange::small), 1);
  EXPECT_EQ(m.n_labels_area(AreaRange::large), 0);
  auto j = m.to_json();
  EXPECT_NEAR(j["mAP_small"].get<double>(), 0.6965, kExact);
  EXPECT_NEAR(j["mAP_medium"].get<double>(), 0.84575, kExact);
  EXPECT_TRUE(j["mAP_large"].is_null());
  EXPECT_EQ(j["instances_by_area"]["medium"].get<int64_t>(), 1);
}

TEST(DetectionMetrics, ApBySizeLeavesOutDetectionsOfOtherSizes) {
  // Labels: small S = [0, 0, 10, 10], large L = [200, 200, 320, 320] (area 14400). Detections: a small
  // FP [400, 400, 410, 410] (0.95), S exactly (0.9), a large FP [500, 0, 700, 200] (0.85), L exactly (0.7).
  // small: FP (0.95) then TP (0.9) on one label -> 0.4975 at every threshold; the large FP is left out.
  // large: FP (0.85) then TP (0.7) -> 0.4975; the small FP and the small TP are left out.
  // Without the large FP the large range is perfect: 0.995.
  DetectionMetrics m(1), clean(1);
  auto l = labels({{0, 0, 0, 10, 10}, {0, 200, 200, 320, 320}});
  m.add(dets({{400, 400, 410, 410, 0.95f, 0},
              {0, 0, 10, 10, 0.9f, 0},
              {500, 0, 700, 200, 0.85f, 0},
              {200, 200, 320, 320, 0.7f, 0}}),
        l);
  clean.add(dets({{400, 400, 410, 410, 0.95f, 0}, {0, 0, 10, 10, 0.9f, 0}, {200, 200, 320, 320, 0.7f, 0}}),
            l);
  m.compute();
  clean.compute();
  EXPECT_NEAR(m.map_area(AreaRange::small), 0.4975, kExact);
  EXPECT_NEAR(m.map_area(AreaRange::large), 0.4975, kExact);
  EXPECT_EQ(m.map_area(AreaRange::medium), -1.0);
  EXPECT_NEAR(clean.map_area(AreaRange::small), 0.4975, kExact);
  EXPECT_NEAR(clean.map_area(AreaRange::large), 0.995, kExact);
}

TEST(DetectionMetrics, NothingAddedIsZero) {
  DetectionMetrics m(4);
  m.compute();
  EXPECT_EQ(m.map50(), 0.0);
  EXPECT_EQ(m.map(), 0.0);
  EXPECT_EQ(m.precision(), 0.0);
  EXPECT_EQ(m.fitness(), 0.0);
}

TEST(DetectionMetrics, ChecksItsInputAndUse) {
  DetectionMetrics m(2);
  // Class 2 of nc 2; the valid label of that image must not be kept either (else mAP50 below is 0.4975).
  EXPECT_THROW(m.add(dets({{0, 0, 1, 1, 0.5f, 2}}), labels({{0, 0, 0, 1, 1}})), Error);
  EXPECT_THROW(m.add(torch::Tensor(), labels({{-1, 0, 0, 1, 1}})), Error);
  EXPECT_THROW(m.add(torch::zeros({3, 4}), torch::Tensor()), Error);  // not [n, 6]
  m.add(dets({{0, 0, 1, 1, 0.5f, 1}}), labels({{1, 0, 0, 1, 1}}));
  EXPECT_THROW(m.map50(), Error);  // compute() not called
  m.compute();
  EXPECT_NEAR(m.map50(), 0.995, kExact);
  EXPECT_EQ(m.images(), 1);
  m.add(torch::Tensor(), labels({{0, 0, 0, 1, 1}}));
  EXPECT_THROW(m.map(), Error);  // stale
}

TEST(DetectionMetrics, JsonReport) {
  DetectionMetrics m(3);
  m.add(dets({{0, 0, 10, 10, 0.9f, 0}}), labels({{0, 0, 0, 10, 10}, {1, 20, 20, 30, 30}}));
  m.compute();
  auto j = m.to_json({"stop", "no_entry"});
  EXPECT_NEAR(j["mAP50"].get<double>(), 0.4975, kExact);
  EXPECT_EQ(j["instances"].get<int64_t>(), 2);
  ASSERT_EQ(j["classes"].size(), 3u);
  EXPECT_EQ(j["classes"][0]["name"], "stop");
  EXPECT_EQ(j["classes"][2]["name"], "2");
  EXPECT_NEAR(j["classes"][0]["ap50"].get<double>(), 0.995, kExact);
  EXPECT_EQ(j["classes"][1]["ap50"].get<double>(), 0.0);
  EXPECT_TRUE(j["classes"][2]["ap50"].is_null());
  EXPECT_EQ(j["classes"][0]["ap"].size(), 10u);
}

TEST(ApPerClass, CurvesHaveTheDocumentedShapes) {
  auto correct = torch::tensor({true, false, true}).view({3, 1});
  auto r = ap_per_class(correct, torch::tensor({0.9f, 0.8f, 0.7f}), torch::tensor({0, 0, 1}),
                        torch::tensor({0, 1, 1}));
  EXPECT_EQ(r.classes, (std::vector<int>{0, 1}));
  EXPECT_EQ(r.labels, (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(r.ap.sizes(), (std::vector<int64_t>{2, 1}));
  EXPECT_EQ(r.p_curve.sizes(), (std::vector<int64_t>{2, 1000}));
  EXPECT_EQ(r.pr_curve.sizes(), (std::vector<int64_t>{2, 1000}));
  EXPECT_EQ(r.mean_pr_curve.size(0), 1000);
  // Class 0: TP then FP, one label -> 0.995 (as DuplicateDetections without B). Class 1: one TP of two
  // labels -> 0.75 (AveragePrecision.HalfRecallIs075).
  EXPECT_NEAR(r.ap[0][0].item<double>(), 0.995, kExact);
  EXPECT_NEAR(r.ap[1][0].item<double>(), 0.75, kExact);
  // Precision at confidence threshold 0 for class 0 is the last point, 1/2; recall above 0.9 is 0.
  EXPECT_NEAR(r.p_curve[0][0].item<double>(), 0.5, kExact);
  EXPECT_EQ(r.r_curve[0][999].item<double>(), 0.0);
  EXPECT_EQ(r.p_curve[0][999].item<double>(), 1.0);
}

// --- Confusion matrix ------------------------------------------------------------------------------------

TEST(ConfusionMatrix, HandCountedCells) {
  // nc = 2, rows predicted, columns true, index 2 = background.
  // Image 1: label 0 at A detected as class 1 -> (1, 0); a class-0 detection on nothing -> (0, bg);
  //          label 1 at B detected only below conf 0.25 -> missed: (bg, 1).
  // Image 2: no labels, a class-1 detection -> (1, bg). Image 3: a class-0 label, no detection -> (bg, 0).
  ConfusionMatrix cm(2);
  cm.add(dets({{0, 0, 10, 10, 0.9f, 1}, {50, 50, 60, 60, 0.8f, 0}, {20, 20, 30, 30, 0.2f, 1}}),
         labels({{0, 0, 0, 10, 10}, {1, 20, 20, 30, 30}}));
  cm.add(dets({{0, 0, 10, 10, 0.5f, 1}}), torch::Tensor());
  cm.add(torch::Tensor(), labels({{0, 5, 5, 9, 9}}));
  auto expected = torch::tensor({0, 0, 1, 1, 0, 1, 1, 1, 0}, torch::kInt64).view({3, 3});
  EXPECT_TRUE(torch::equal(cm.matrix(), expected)) << cm.matrix();
  EXPECT_EQ(cm.at(1, 0), 1);
  // Columns divided by their sums 2, 1, 2.
  auto norm = torch::tensor({0.0, 0.0, 0.5, 0.5, 0.0, 0.5, 0.5, 1.0, 0.0}, torch::kFloat64).view({3, 3});
  EXPECT_TRUE(torch::allclose(cm.normalized(), norm));
  auto j = cm.to_json({"stop"});
  EXPECT_EQ(j["names"], (std::vector<std::string>{"stop", "1", "background"}));
  EXPECT_EQ(j["matrix"][2][1].get<int64_t>(), 1);
}

TEST(ConfusionMatrix, IouThresholdIsStrictAndMatchingOneToOne) {
  // IoU exactly 0.5 with threshold 0.5: no match (the reference uses >), so one miss and one background.
  ConfusionMatrix strict(1, 0.25, 0.5);
  strict.add(dets({{0, 0, 10, 10, 0.9f, 0}}), labels({{0, 0, 0, 10, 5}}));
  EXPECT_EQ(strict.at(0, 0), 0);
  EXPECT_EQ(strict.at(1, 0), 1);
  EXPECT_EQ(strict.at(0, 1), 1);
  // Two detections on one label: one true match, the other is background.
  ConfusionMatrix dup(1);
  dup.add(dets({{0, 0, 10, 10, 0.9f, 0}, {0, 0, 10, 10, 0.8f, 0}}), labels({{0, 0, 0, 10, 10}}));
  EXPECT_EQ(dup.at(0, 0), 1);
  EXPECT_EQ(dup.at(0, 1), 1);
}

}  // namespace
}  // namespace yq::eval
