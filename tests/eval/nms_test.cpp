#include "eval/nms.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>

#include "core/error.h"
#include "core/rng.h"

namespace yq::eval {
namespace {

// One anchor of a hand-made prediction: box (cx, cy, w, h) and one score per class.
struct Anchor {
  float cx, cy, w, h;
  std::vector<float> scores;
};

// [1, 4 + nc, A] from anchors.
torch::Tensor make_preds(const std::vector<Anchor>& anchors) {
  const int64_t nc = int64_t(anchors.at(0).scores.size()), A = int64_t(anchors.size());
  auto p = torch::zeros({1, 4 + nc, A});
  auto acc = p.accessor<float, 3>();
  for (int64_t a = 0; a < A; ++a) {
    const auto& an = anchors[size_t(a)];
    acc[0][0][a] = an.cx, acc[0][1][a] = an.cy, acc[0][2][a] = an.w, acc[0][3][a] = an.h;
    for (int64_t c = 0; c < nc; ++c) acc[0][4 + c][a] = an.scores[size_t(c)];
  }
  return p;
}

// Rows of an NMS result as vectors, for readable comparisons.
std::vector<std::vector<float>> rows(const torch::Tensor& t) {
  std::vector<std::vector<float>> out;
  auto c = t.contiguous();
  for (int64_t i = 0; i < c.size(0); ++i) {
    std::vector<float> r(6);
    for (int64_t j = 0; j < 6; ++j) r[size_t(j)] = c[i][j].item<float>();
    out.push_back(r);
  }
  return out;
}

using Rows = std::vector<std::vector<float>>;

// --- A plain O(n^2) NMS written from the definition, to check the fast one against. -------------------

struct RefCand {
  float score;
  int a, c;
  float x1, y1, x2, y2;
};

float ref_iou(const RefCand& p, const RefCand& q) {
  float w = std::max(0.f, std::min(p.x2, q.x2) - std::max(p.x1, q.x1));
  float h = std::max(0.f, std::min(p.y2, q.y2) - std::max(p.y1, q.y1));
  float inter = w * h;
  float ap = (p.x2 - p.x1) * (p.y2 - p.y1), aq = (q.x2 - q.x1) * (q.y2 - q.y1);
  return inter / (ap + aq - inter);
}

Rows reference_nms(const torch::Tensor& image /* [4 + nc, A] */, const NmsOptions& o) {
  const int nc = int(image.size(0)) - 4, A = int(image.size(1));
  auto acc = image.accessor<float, 2>();
  auto allowed = [&](int c) {
    return o.classes.empty() || std::find(o.classes.begin(), o.classes.end(), c) != o.classes.end();
  };
  auto box = [&](RefCand& r) {
    float cx = acc[0][r.a], cy = acc[1][r.a], w = acc[2][r.a], h = acc[3][r.a];
    r.x1 = cx - w / 2, r.y1 = cy - h / 2, r.x2 = cx + w / 2, r.y2 = cy + h / 2;
  };
  std::vector<RefCand> cands;  // in (anchor, class) order
  for (int a = 0; a < A; ++a) {
    if (o.multi_label) {
      for (int c = 0; c < nc; ++c)
        if (acc[4 + c][a] > float(o.conf) && allowed(c)) cands.push_back({acc[4 + c][a], a, c});
    } else {
      int best = 0;
      for (int c = 1; c < nc; ++c)
        if (acc[4 + c][a] > acc[4 + best][a]) best = c;
      if (acc[4 + best][a] > float(o.conf) && allowed(best)) cands.push_back({acc[4 + best][a], a, best});
    }
  }
  for (auto& c : cands) box(c);
  std::stable_sort(cands.begin(), cands.end(),
                   [](const RefCand& p, const RefCand& q) { return p.score > q.score; });
  if (int(cands.size()) > o.max_nms) cands.resize(size_t(o.max_nms));
  std::vector<char> suppressed(cands.size(), 0);
  Rows out;
  for (size_t i = 0; i < cands.size(); ++i) {
    if (suppressed[i]) continue;
    const auto& k = cands[i];
    out.push_back({k.x1, k.y1, k.x2, k.y2, k.score, float(k.c)});
    for (size_t j = i + 1; j < cands.size(); ++j)
      if ((o.agnostic || cands[j].c == k.c) && double(ref_iou(k, cands[j])) > o.iou) suppressed[j] = 1;
  }
  if (int(out.size()) > o.max_det) out.resize(size_t(o.max_det));
  return out;
}

// Random predictions [B, 4 + nc, A] whose boxes crowd around a few centres, so suppression happens often.
torch::Tensor random_preds(uint64_t seed, int64_t B, int64_t nc, int64_t A) {
  Rng rng(seed);
  auto p = torch::zeros({B, 4 + nc, A});
  auto acc = p.accessor<float, 3>();
  for (int64_t b = 0; b < B; ++b) {
    std::vector<std::pair<double, double>> centres;
    for (int i = 0; i < 8; ++i) centres.emplace_back(rng.uniform(40, 600), rng.uniform(40, 600));
    for (int64_t a = 0; a < A; ++a) {
      auto [x, y] = centres[size_t(rng.randint(8))];
      acc[b][0][a] = float(x + rng.uniform(-12, 12));
      acc[b][1][a] = float(y + rng.uniform(-12, 12));
      acc[b][2][a] = float(rng.uniform(20, 60));
      acc[b][3][a] = float(rng.uniform(20, 60));
      for (int64_t c = 0; c < nc; ++c)
        acc[b][4 + c][a] = float(rng.chance(0.3) ? rng.uniform() : rng.uniform(0, 0.05));
    }
  }
  return p;
}

// --- Hand-made cases -----------------------------------------------------------------------------------

// Three anchors of two classes: A0 and A1 overlap with IoU 18 * 20 / (800 - 360) = 0.818 > 0.7.
std::vector<Anchor> three_anchors(int class_of_a1) {
  std::vector<float> s1 = {0.f, 0.f};
  s1[size_t(class_of_a1)] = 0.8f;
  return {{50, 50, 20, 20, {0.9f, 0.f}}, {52, 50, 20, 20, s1}, {100, 100, 20, 20, {0.7f, 0.f}}};
}

TEST(Nms, SuppressesOverlappingBoxesOfTheSameClass) {
  auto out = non_max_suppression(make_preds(three_anchors(0)), NmsOptions{});
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(rows(out[0]), (Rows{{40, 40, 60, 60, 0.9f, 0}, {90, 90, 110, 110, 0.7f, 0}}));
}

TEST(Nms, KeepsOverlappingBoxesOfDifferentClassesUnlessAgnostic) {
  auto preds = make_preds(three_anchors(1));
  auto out = non_max_suppression(preds, NmsOptions{});
  EXPECT_EQ(rows(out[0]),
            (Rows{{40, 40, 60, 60, 0.9f, 0}, {42, 40, 62, 60, 0.8f, 1}, {90, 90, 110, 110, 0.7f, 0}}));
  NmsOptions agnostic;
  agnostic.agnostic = true;
  EXPECT_EQ(rows(non_max_suppression(preds, agnostic)[0]),
            (Rows{{40, 40, 60, 60, 0.9f, 0}, {90, 90, 110, 110, 0.7f, 0}}));
}

TEST(Nms, MultiLabelKeepsEveryClassAboveConf) {
  // One anchor, class 0 at 0.9, class 1 at 0.6, class 2 at 0.1 (below conf 0.25).
  auto preds = make_preds({{10, 10, 4, 4, {0.9f, 0.6f, 0.1f}}});
  NmsOptions o;
  EXPECT_EQ(rows(non_max_suppression(preds, o)[0]), (Rows{{8, 8, 12, 12, 0.9f, 0}}));
  o.multi_label = true;
  EXPECT_EQ(rows(non_max_suppression(preds, o)[0]), (Rows{{8, 8, 12, 12, 0.9f, 0}, {8, 8, 12, 12, 0.6f, 1}}));
  o.conf = 0.05;
  EXPECT_EQ(non_max_suppression(preds, o)[0].size(0), 3);
}

TEST(Nms, ConfidenceThresholdIsStrict) {
  // 0.25 is exact in float: a score equal to conf is dropped, the next float up is kept.
  float above = std::nextafter(0.25f, 1.f);
  auto preds = make_preds({{10, 10, 4, 4, {0.25f}}, {50, 50, 4, 4, {above}}});
  auto out = non_max_suppression(preds, NmsOptions{});
  EXPECT_EQ(rows(out[0]), (Rows{{48, 48, 52, 52, above, 0}}));
}

TEST(Nms, IouThresholdIsStrict) {
  // [0, 0, 20, 20] and [0, 0, 20, 10]: IoU 200 / 400 = 0.5 exactly; suppressed only when iou < 0.5.
  auto preds = make_preds({{10, 10, 20, 20, {0.9f}}, {10, 5, 20, 10, {0.8f}}});
  NmsOptions o;
  o.iou = 0.5;
  EXPECT_EQ(non_max_suppression(preds, o)[0].size(0), 2);
  o.iou = 0.49;
  EXPECT_EQ(non_max_suppression(preds, o)[0].size(0), 1);
}

TEST(Nms, MaxDetKeepsTheHighestScores) {
  std::vector<Anchor> anchors;
  for (int i = 0; i < 6; ++i)
    anchors.push_back({float(30 * i + 10), 10, 10, 10, {0.3f + 0.1f * float(i % 3) + 0.01f * float(i)}});
  // Scores: 0.30, 0.41, 0.52, 0.33, 0.44, 0.55 -> the best three are anchors 5, 2, 4.
  NmsOptions o;
  o.max_det = 3;
  auto out = non_max_suppression(make_preds(anchors), o)[0];
  ASSERT_EQ(out.size(0), 3);
  EXPECT_FLOAT_EQ(out[0][0].item<float>(), 155.f);
  EXPECT_FLOAT_EQ(out[1][0].item<float>(), 65.f);
  EXPECT_FLOAT_EQ(out[2][0].item<float>(), 125.f);
}

TEST(Nms, ClassesFilterAppliesAfterTheBestClassIsChosen) {
  // Anchor 0: best class 0 (0.9), class 1 at 0.5. Anchor 1: class 1 only.
  auto preds = make_preds({{10, 10, 4, 4, {0.9f, 0.5f}}, {50, 50, 4, 4, {0.f, 0.7f}}});
  NmsOptions o;
  o.classes = {1};
  // Without multi-label anchor 0 is a class-0 candidate, which the filter drops (as the reference).
  EXPECT_EQ(rows(non_max_suppression(preds, o)[0]), (Rows{{48, 48, 52, 52, 0.7f, 1}}));
  o.multi_label = true;
  EXPECT_EQ(rows(non_max_suppression(preds, o)[0]),
            (Rows{{48, 48, 52, 52, 0.7f, 1}, {8, 8, 12, 12, 0.5f, 1}}));
}

TEST(Nms, MaxNmsCapsTheCandidates) {
  auto preds = make_preds({{10, 10, 4, 4, {0.9f}}, {50, 50, 4, 4, {0.8f}}, {90, 90, 4, 4, {0.7f}}});
  NmsOptions o;
  o.max_nms = 2;
  EXPECT_EQ(non_max_suppression(preds, o)[0].size(0), 2);
}

TEST(Nms, EmptyBatchedAndDoublePrecision) {
  auto preds = torch::cat(
      {make_preds(three_anchors(0)),
       make_preds({{1, 1, 1, 1, {0.1f, 0.f}}, {2, 2, 1, 1, {0.f, 0.2f}}, {3, 3, 1, 1, {0.f, 0.f}}})});
  auto out = non_max_suppression(preds.to(torch::kFloat64), NmsOptions{});
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].size(0), 2);
  EXPECT_EQ(out[0].scalar_type(), torch::kFloat32);
  EXPECT_EQ(out[1].sizes(), (std::vector<int64_t>{0, 6}));
}

TEST(Nms, RejectsBadInput) {
  EXPECT_THROW(non_max_suppression(torch::zeros({4, 10}), NmsOptions{}), Error);
  EXPECT_THROW(non_max_suppression(torch::zeros({1, 4, 10}), NmsOptions{}), Error);
  NmsOptions o;
  o.conf = 1.5;
  EXPECT_THROW(non_max_suppression(torch::zeros({1, 6, 10}), o), UsageError);
  o = NmsOptions{};
  o.classes = {2};
  EXPECT_THROW(non_max_suppression(torch::zeros({1, 6, 10}), o), UsageError);
  o = NmsOptions{};
  o.max_det = 0;
  EXPECT_THROW(non_max_suppression(torch::zeros({1, 6, 10}), o), UsageError);
}

TEST(Nms, IndicesOfGivenBoxes) {
  // Boxes 0 and 1 overlap (IoU 0.818), box 2 elsewhere; box 3 overlaps box 0 but is another class.
  auto boxes =
      torch::tensor(std::vector<float>{40, 40, 60, 60, 42, 40, 62, 60, 90, 90, 110, 110, 41, 40, 61, 60})
          .view({4, 4});
  auto scores = torch::tensor({0.8f, 0.9f, 0.7f, 0.95f});
  auto cls = torch::tensor({0, 0, 0, 1});
  auto keep = nms_indices(boxes, scores, cls, 0.7);
  EXPECT_TRUE(torch::equal(keep, torch::tensor({3, 1, 2}, torch::kInt64)));
  keep = nms_indices(boxes, scores, torch::Tensor(), 0.7);  // one class: box 3 suppresses 0 and 1
  EXPECT_TRUE(torch::equal(keep, torch::tensor({3, 2}, torch::kInt64)));
  keep = nms_indices(boxes, scores, cls, 0.7, 2);
  EXPECT_TRUE(torch::equal(keep, torch::tensor({3, 1}, torch::kInt64)));
}

// --- Against the reference over random crowded boxes ----------------------------------------------------

TEST(Nms, MatchesPlainReferenceOnRandomBoxes) {
  struct Case {
    bool multi_label, agnostic;
    double conf, iou;
    int max_det, max_nms;
    std::vector<int> classes;
  };
  const std::vector<Case> cases = {
      {false, false, 0.25, 0.7, 300, 30000, {}}, {true, false, 0.001, 0.7, 300, 30000, {}},
      {true, true, 0.1, 0.5, 300, 30000, {}},    {false, false, 0.25, 0.45, 7, 30000, {}},
      {true, false, 0.001, 0.7, 40, 150, {}},    {true, false, 0.2, 0.6, 300, 30000, {0, 2}},
      {false, true, 0.001, 0.3, 300, 30000, {1}}};
  for (uint64_t seed = 1; seed <= 4; ++seed) {
    auto preds = random_preds(seed, 2, 3, 300);
    for (size_t k = 0; k < cases.size(); ++k) {
      const Case& c = cases[k];
      NmsOptions o;
      o.multi_label = c.multi_label, o.agnostic = c.agnostic, o.conf = c.conf, o.iou = c.iou;
      o.max_det = c.max_det, o.max_nms = c.max_nms, o.classes = c.classes;
      auto out = non_max_suppression(preds, o);
      for (int64_t b = 0; b < 2; ++b) {
        auto expected = reference_nms(preds[b], o);
        EXPECT_EQ(rows(out[size_t(b)]), expected) << "seed " << seed << " case " << k << " image " << b;
        EXPECT_GT(expected.size(), 0u);
      }
    }
  }
}

// Thousands of candidates: the lazy ranking goes through several chunks (1024, then 2048, ...) before
// the suppression ends, and must still agree with ranking everything up front.
TEST(Nms, MatchesPlainReferenceBeyondOneRankingChunk) {
  auto preds = random_preds(11, 1, 3, 2500);
  NmsOptions o;
  o.conf = 0.001, o.multi_label = true, o.iou = 0.7, o.max_det = 10000;
  for (int max_nms : {30000, 5000}) {
    o.max_nms = max_nms;
    auto out = non_max_suppression(preds, o);
    auto expected = reference_nms(preds[0], o);
    EXPECT_EQ(rows(out[0]), expected) << "max_nms " << max_nms;
    EXPECT_LT(expected.size(), 10000u);  // fewer than max_det kept: every candidate was looked at
  }
}

}  // namespace
}  // namespace yq::eval
