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
  bool save_json = false;  // collect predictions as {"image_id", "category_id", "bbox", "score"}
  bool progress = true;
};

struct ValResult {
  DetectionMetrics metrics;
  ConfusionMatrix confusion;
  torch::Tensor loss;  // [3] mean box, cls, dfl over batches (undefined without a loss)
  double ms_pre = 0, ms_inf = 0, ms_nms = 0;  // per image
  nlohmann::json predictions = nlohmann::json::array();
  explicit ValResult(int nc) : metrics(nc), confusion(nc) {}
};

// Runs the whole loader (one pass). `loss` may be null.
ValResult validate(const Detector& det, data::DataLoader& loader, int nc, const ValOptions& opt,
                   const train::DetectionLoss* loss = nullptr);

// Detections [n, 6] in letterboxed pixels -> original image pixels (clipped).
torch::Tensor scale_to_original(const torch::Tensor& dets, const data::LetterboxInfo& lb, int orig_h,
                                int orig_w);

// Labels of image i of a batch -> [m, 5] (cls, x1, y1, x2, y2) in original pixels.
torch::Tensor batch_labels_original(const data::Batch& b, int64_t i);

// Scores a predictions JSON file ([{"image_id", "category_id", "bbox" [x, y, w, h], "score"}]) against
// the labels of `samples`. Unknown image ids and malformed entries are counted and reported.
struct PredictionFileResult {
  int64_t entries = 0, used = 0, unknown_images = 0, malformed = 0;
};
PredictionFileResult score_predictions_file(const fs::path& file, const std::vector<data::Sample>& samples,
                                            DetectionMetrics& metrics, ConfusionMatrix& cm);

// A printable per-class table (class, images, instances, P, R, mAP50, mAP50-95) and the "all" row.
std::string format_metrics_table(const DetectionMetrics& m, const std::vector<std::string>& names);

}  // namespace yq::eval
