// Detection metrics: IoU, matching of detections to labels, AP per class, mAP50 and mAP50-95,
// precision/recall at the best F1, and the confusion matrix (SPEC-YOLOV8.md "Validation and mAP").
//
// The arithmetic follows the reference (ultralytics 8.0.x, which uses numpy):
//  - AP: detections of a class sorted by confidence (descending, stable); recall = TP / labels,
//    precision = TP / (TP + FP); recall padded with 0 and 1, precision with 1 and 0; precision envelope;
//    the envelope read at recall 0, 0.01, ..., 1 with numpy.interp semantics and integrated by the
//    trapezoid rule. numpy.interp reads the last of several equal abscissae, so at recall 1 it reads the
//    padded precision 0: a perfect class scores AP = 0.995, not 1 (the reference's well-known ceiling).
//  - P and R: per class, recall and precision as functions of the confidence threshold, read at
//    1000 confidences 0..1 (numpy.interp, recall 0 and precision 1 above the highest confidence); the
//    threshold is the argmax of the class-mean F1 smoothed by a 101-point box filter.
//  - Means are over the classes that have at least one label; classes with labels but no detection
//    count with AP 0; detections of classes without labels are ignored.
// Matching (match_predictions) is the reference's by default (MatchRule::reference); the one-to-one greedy
// matching we used before is kept as MatchRule::greedy (val match=greedy).
// AP by object size (map_area): the COCO area ranges of the labels, approximated (see DetectionMetrics).
#pragma once

#include <torch/torch.h>

#include <array>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

namespace yq::eval {

// The 10 IoU thresholds of mAP50-95: 0.50, 0.55, ..., 0.95.
std::vector<double> iou_thresholds();

// IoU of every pair of xyxy boxes: a [N, 4], b [M, 4] -> [N, M] (dtype of a, eps 1e-7 in the union as
// the reference).
torch::Tensor box_iou(const torch::Tensor& a, const torch::Tensor& b);

// How detections are matched to labels of their class, per IoU threshold (val key `match`).
//  - reference (default): what ultralytics 8.0.x computes (SPEC-YOLOV8.md "Validation and mAP"):
//      matches = pairs (label i, detection j) with IoU >= threshold, in numpy.nonzero's order (label-major)
//      matches = matches[iou.argsort()[::-1]]              # (1) by IoU, descending
//      matches = matches[unique(matches[:, 1], first)]    # (2) each detection's first pair; re-ordered by j
//      matches = matches[unique(matches[:, 0], first)]    # (3) each label's first pair in that order
//    i.e. every detection names its best label, and a label named by several detections goes to the lowest
//    detection index (the highest confidence, detections being in NMS order), even when another of them
//    overlaps it more; the others are false positives even where they could match another label.
//    Tie rule: (1) is taken as a STABLE descending sort, so among equal IoUs the pairs keep nonzero's order
//    and a detection exactly as close to two labels names the lower label index. numpy's own
//    argsort()[::-1] differs there: on at most 16 pairs its quicksort is an insertion sort (stable,
//    ascending), so after the reversal the higher label index comes first; on more pairs the order of ties
//    is unspecified (introsort; SIMD sorts on some CPUs). Only such exact ties between two labels of one
//    detection are affected: ties between pairs of different detections do not matter, as (2) re-orders
//    by detection index.
//  - greedy: all pairs taken in descending IoU (ties: lower detection index, then lower label index),
//    each detection and each label at most once (one to one).
enum class MatchRule { reference, greedy };
// "reference" / "greedy"; anything else throws yq::UsageError naming both.
MatchRule parse_match_rule(const std::string& name);
const char* match_rule_name(MatchRule rule);

// For one image: dets [n, 6] (x1, y1, x2, y2, conf, cls) in descending confidence (NMS order: the
// reference rule prefers the lower index) and labels [m, 5] (cls, x1, y1, x2, y2), both in the same pixel
// frame -> correct [n, T] bool, T = iouv.size(): correct[i][t] when detection i is matched to a label of
// its class at IoU >= iouv[t] (IoU and thresholds compared in float32, as the reference), by `rule`.
torch::Tensor match_predictions(const torch::Tensor& dets, const torch::Tensor& labels,
                                const std::vector<double>& iouv = iou_thresholds(),
                                MatchRule rule = MatchRule::reference);

// COCO's object sizes by box area in pixels: small < 32^2 <= medium <= 96^2 < large (pycocotools' ranges
// [0, 32^2], [32^2, 96^2], [96^2, inf) overlap at their ends; here each area has exactly one range).
enum class AreaRange { small = 0, medium = 1, large = 2 };
constexpr int kAreaRanges = 3;
AreaRange area_range(double area);
const char* area_range_name(AreaRange r);  // "small", "medium", "large"

// numpy.interp(x, xp, fp, left, right) for non-decreasing xp (ties allowed: the last of equal xp is
// read, as numpy does). Exposed for tests.
double np_interp(double x, const std::vector<double>& xp, const std::vector<double>& fp, double left,
                 double right);

// AP of one recall/precision curve (recall non-decreasing), as described above. Exposed for tests.
double average_precision(const std::vector<double>& recall, const std::vector<double>& precision);

// Everything ap_per_class computes. U = number of classes with at least one label, T = IoU thresholds,
// K = 1000 curve points. Tensors are float64 on the CPU.
struct ApResult {
  std::vector<int> classes;     // [U] class ids with labels, ascending
  std::vector<int64_t> labels;  // [U] labels of each
  torch::Tensor ap;             // [U, T] AP per class and IoU threshold
  torch::Tensor p, r, f1;       // [U] precision, recall, F1 at the best-F1 confidence
  double best_conf = 0;         // that confidence (0..1)
  torch::Tensor conf_grid;      // [K] confidences 0..1 of the curves below
  torch::Tensor p_curve;        // [U, K] precision by confidence threshold (IoU 0.5)
  torch::Tensor r_curve;        // [U, K] recall by confidence threshold
  torch::Tensor f1_curve;       // [U, K] F1 by confidence threshold
  torch::Tensor recall_grid;    // [K] recalls 0..1 of the PR curves
  torch::Tensor pr_curve;       // [U, K] precision envelope by recall (IoU 0.5); zeros for a class without
                                // detections
  torch::Tensor mean_pr_curve;  // [K] mean of pr_curve over the classes with detections (as the reference
                                // plots it)
};

// correct [N, T] bool, conf [N], pred_cls [N], target_cls [M] (class ids, integral or float) -> ApResult.
// When no detection is correct at any threshold, every result is 0 (as the reference, which then skips
// the computation).
ApResult ap_per_class(const torch::Tensor& correct, const torch::Tensor& conf, const torch::Tensor& pred_cls,
                      const torch::Tensor& target_cls);

// Accumulates detections and labels over a data set, image by image, then computes the metrics.
//
// AP by object size (map_area), an approximation of pycocotools' area ranges: each label has the range of
// its box area (pixels of the frame given to add(): the validator gives original-image pixels, as COCO;
// COCO itself uses the segment area). Matching is done once, with all labels, by the match rule. Then,
// per range and IoU threshold, a detection takes part when it is matched at that threshold to a label of
// the range, or is unmatched there and its own box area is in the range (a detection matched to a label
// of another range is left out, as pycocotools ignores it). AP per class and threshold as above, with only
// the labels of the range as the positives; the range's mAP50-95 is the mean over the classes that have
// labels in the range and the thresholds. pycocotools instead re-matches per range (labels outside it
// ignored, not removed), caps 100 detections per image and reads precision as a step function, so its
// numbers differ somewhat.
class DetectionMetrics {
 public:
  explicit DetectionMetrics(int nc, std::vector<double> iouv = iou_thresholds(),
                            MatchRule match = MatchRule::reference);
  DetectionMetrics(int nc, MatchRule match) : DetectionMetrics(nc, iou_thresholds(), match) {}

  // One image: dets [n, 6] (x1, y1, x2, y2, conf, cls), labels [m, 5] (cls, x1, y1, x2, y2), pixels.
  // Either may be empty. Class ids must be in [0, nc). Detections are matched in descending confidence
  // (a stable sort: NMS output keeps its order, equal confidences keep theirs).
  void add(const torch::Tensor& dets, const torch::Tensor& labels);
  void reset();
  // Computes the metrics of everything added so far; the accessors below need it.
  void compute();

  int nc() const { return nc_; }
  int64_t images() const { return images_; }
  int64_t detections() const { return int64_t(conf_.size()); }
  int64_t instances() const { return int64_t(target_cls_.size()); }
  const std::vector<double>& iouv() const { return iouv_; }
  MatchRule match() const { return match_; }

  double map50() const;      // mean AP at IoU 0.5
  double map75() const;      // mean AP at IoU 0.75 (needs 0.75 among the thresholds)
  double map() const;        // mean AP over the thresholds (mAP50-95)
  double precision() const;  // mean precision at the best-F1 confidence
  double recall() const;     // mean recall at the best-F1 confidence
  double fitness() const;    // 0.1 * mAP50 + 0.9 * mAP50-95
  // mAP50-95 of one object size (see above); -1 when no label has that size.
  double map_area(AreaRange r) const;
  int64_t n_labels_area(AreaRange r) const;  // labels of that size (known before compute())

  // Per class c in [0, nc); a class without labels reads 0 (has_labels tells them apart).
  bool has_labels(int c) const;
  double ap50(int c) const;
  double ap(int c) const;  // AP50-95
  double p(int c) const;
  double r(int c) const;
  int64_t n_labels(int c) const;  // labels of class c (known before compute())
  int64_t n_images(int c) const;  // images with at least one label of class c

  const ApResult& result() const;

  // {"images", "instances", "detections", "precision", "recall", "mAP50", "mAP75", "mAP50-95", "fitness",
  //  "mAP_small", "mAP_medium", "mAP_large" (null when no label has that size), "instances_by_area"
  //  {"small", "medium", "large"}, "match" (the rule's name), "best_f1_conf", "iou_thresholds", "classes":
  //  [{"id", "name", "images", "instances", "precision", "recall", "ap50", "ap50-95", "ap"}]}; a class
  //  without labels has null metrics. names may be shorter than nc (missing names are the class ids).
  nlohmann::json to_json(const std::vector<std::string>& names = {}) const;

 private:
  int row_of(int c) const;  // row of class c in result_, -1 when it has no labels
  void check_computed() const;

  int nc_;
  std::vector<double> iouv_;
  MatchRule match_;
  int64_t images_ = 0;
  std::vector<uint8_t> correct_;      // [N, T] row-major
  std::vector<uint8_t> area_;         // [N, T] AreaRange a detection counts in at each threshold
  std::vector<uint8_t> target_area_;  // [M] AreaRange of each label
  std::array<int64_t, kAreaRanges> labels_area_{};
  std::array<double, kAreaRanges> map_area_{};
  std::vector<float> conf_;  // [N]
  std::vector<int32_t> pred_cls_;
  std::vector<int32_t> target_cls_;
  std::vector<int64_t> labels_per_class_, images_per_class_;  // [nc]
  bool computed_ = false;
  ApResult result_;
  std::vector<int> row_;  // [nc] class -> row in result_ or -1
};

// Confusion matrix [nc + 1, nc + 1] laid out as the reference: rows = predicted class, columns = true
// class, the last row/column = background (last row: missed labels; last column: detections of nothing).
// Per image, detections with conf > conf are matched to labels of any class with IoU > iou, greedily by
// IoU, one to one. Unlike the reference, unmatched detections are always counted as background (the
// reference skips them on images without labels or without any match).
class ConfusionMatrix {
 public:
  explicit ConfusionMatrix(int nc, double conf = 0.25, double iou = 0.45);

  // dets [n, 6] (x1, y1, x2, y2, conf, cls), labels [m, 5] (cls, x1, y1, x2, y2); either may be empty.
  void add(const torch::Tensor& dets, const torch::Tensor& labels);
  void reset();

  int nc() const { return nc_; }
  int64_t at(int predicted, int truth) const;  // index nc = background
  torch::Tensor matrix() const;                // [nc + 1, nc + 1] int64
  // Each column divided by its sum (columns without any count stay 0): what the reference plots.
  torch::Tensor normalized() const;  // [nc + 1, nc + 1] float64

  // {"nc", "conf", "iou", "names" (nc names then "background"), "layout", "matrix"}.
  nlohmann::json to_json(const std::vector<std::string>& names = {}) const;

 private:
  int nc_;
  double conf_, iou_;
  std::vector<int64_t> m_;  // [(nc + 1) * (nc + 1)] row-major
};

}  // namespace yq::eval
