// Validation: runs a detector over a split (letterboxed rectangular batches), applies NMS, maps boxes
// back to original image pixels and accumulates mAP, P/R, the confusion matrix and (optionally) the
// validation loss and COCO-style predictions JSON.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/loader.h"
#include "eval/metrics.h"
#include "eval/nms.h"

namespace yq::train {
class DetectionLoss;
}

namespace yq::eval {

// A detector under evaluation: images [B, 3, H, W] float 0..1 -> decoded [B, 4 + nc, A] (cx, cy, w,
// h pixels, class scores). When `raw` is set it returns the per-level head outputs instead, and
// `decode` turns them into the decoded form (so the loss can be computed from the same pass).
struct Detector {
  std::function<torch::Tensor(const torch::Tensor&)> forward;
  std::function<std::vector<torch::Tensor>(const torch::Tensor&)> raw;
  std::function<torch::Tensor(const std::vector<torch::Tensor>&)> decode;
};

struct ValOptions {
  NmsOptions nms{0.001, 0.7, 300, true};
  MatchRule match = MatchRule::reference;  // how detections are matched to labels (metrics.h)
  bool save_json = false;  // collect predictions as {"image_id", "category_id", "bbox", "score"}
  bool progress = true;
};

struct ValResult {
  DetectionMetrics metrics;
  ConfusionMatrix confusion;
  torch::Tensor loss;  // [3] mean box, cls, dfl over batches (undefined without a loss)
  double ms_pre = 0, ms_inf = 0, ms_nms = 0;  // per image
  nlohmann::json predictions = nlohmann::json::array();
  explicit ValResult(int nc, MatchRule match = MatchRule::reference) : metrics(nc, match), confusion(nc) {}
};

// Runs the whole loader (one pass). `loss` may be null.
ValResult validate(const Detector& det, data::DataLoader& loader, int nc, const ValOptions& opt,
                   const train::DetectionLoss* loss = nullptr);

// Detections [n, 6] in letterboxed pixels -> original image pixels (clipped).
torch::Tensor scale_to_original(const torch::Tensor& dets, const data::LetterboxInfo& lb, int orig_h,
                                int orig_w);

// Labels of image i of a batch -> [m, 5] (cls, x1, y1, x2, y2) in original pixels (mapped back from
// the letterboxed targets: float rounding makes them differ from the label file's in the last bits).
torch::Tensor batch_labels_original(const data::Batch& b, int64_t i);

// A sample's labels as read from its label file -> [m, 5] (cls, x1, y1, x2, y2) in original pixels.
// validate() and score_predictions_file() both score against these, so scoring a predictions.json
// that validate() wrote reproduces its metrics exactly.
torch::Tensor sample_labels_original(const data::Sample& s);

// Detections [n, 6] (x1, y1, x2, y2, ...) -> the boxes a predictions file written from them gives back
// (it stores x1, y1, w = x2 - x1, h = y2 - y1 as floats; the reader takes x1 + w, y1 + h).
torch::Tensor as_saved_boxes(const torch::Tensor& dets);

// Scores a predictions JSON file ([{"image_id", "category_id", "bbox" [x, y, w, h], "score"}]) against
// the labels of `samples`, by the match rule of `metrics`. Unknown image ids and malformed entries are
// counted and reported. Per image, entries are ranked by descending score (stable: ties keep the file's
// order), the order the reference's validator sees NMS output in, and the best 300 are kept.
struct PredictionFileResult {
  int64_t entries = 0, used = 0, unknown_images = 0, malformed = 0;
};
PredictionFileResult score_predictions_file(const fs::path& file, const std::vector<data::Sample>& samples,
                                            DetectionMetrics& metrics, ConfusionMatrix& cm);

// A printable per-class table (class, images, instances, P, R, mAP50, mAP50-95) and the "all" row, then
// one line of mAP50-95 by label size (small, medium, large; "-" for a size without labels).
std::string format_metrics_table(const DetectionMetrics& m, const std::vector<std::string>& names);

}  // namespace yq::eval
