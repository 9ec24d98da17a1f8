// Drawing detections and labels: boxes with class names (and scores), and tile mosaics. Used by
// `stats` (label samples), `predict` (detections) and the report, so they all look the same.
#pragma once

#include <opencv2/core.hpp>

#include <string>
#include <vector>

#include "data/boxes.h"

namespace yq::eval {

// A stable, distinct colour per class (BGR).
cv::Scalar class_color(int cls);

// Draws boxes with "name" or "name 0.87" tags. `scores` may be empty (labels) or one per box.
void draw_boxes(cv::Mat& bgr, const std::vector<data::BoxPx>& boxes, const std::vector<std::string>& names,
                const std::vector<float>& scores = {});

// Lays tiles (any sizes) into a grid of `cols` columns, each letterboxed into tile_w x tile_h.
cv::Mat tile_mosaic(const std::vector<cv::Mat>& tiles, int cols, int tile_w, int tile_h);

}  // namespace yq::eval
