// Detection on whole images as `yoloqat predict` and the C++ API (include/yoloqat/detector.h) run it:
// letterbox with the least padding, one forward per image size, NMS, boxes mapped back to image pixels.
#pragma once

#include <torch/torch.h>
#include <opencv2/core.hpp>

#include <vector>

#include "data/augment.h"
#include "eval/nms.h"
#include "eval/validator.h"

namespace yq::deploy {

// Letterbox of predict: the long side to `imgsz`, each side then rounded up to a multiple of `stride`
// (the least padding), centred. Fills *info.
cv::Mat letterbox_to_stride(const cv::Mat& bgr, int imgsz, int stride, data::LetterboxInfo* info);

struct PredictTimes {
  double pre_ms = 0, inf_ms = 0, post_ms = 0;  // letterbox + tensor; forward; NMS + mapping back
};

// Detections of each image (BGR uint8) as [n, 6] float32: x1, y1, x2, y2 in the image's own pixels
// (clipped), score, class; by descending score. Images whose letterboxed sizes are equal run through
// `net.forward` as one batch (in the order given). Adds the stage times to *times when non-null.
std::vector<torch::Tensor> predict_images(const eval::Detector& net, const std::vector<cv::Mat>& bgr,
                                          int imgsz, int stride, const eval::NmsOptions& nms,
                                          PredictTimes* times = nullptr);

}  // namespace yq::deploy
