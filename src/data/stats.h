// Data set statistics (`yoloqat stats`): class counts, box sizes, boxes per image, label problems.
#pragma once

#include <nlohmann/json.hpp>

#include <map>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace yq::data {

struct Quantiles {
  double min = 0, p10 = 0, median = 0, p90 = 0, max = 0;
};

struct SplitStats {
  std::string split;
  int images = 0, backgrounds = 0, boxes = 0;
  std::vector<int> class_counts;         // [nc] boxes per class
  std::vector<int> boxes_per_image;      // histogram: index k = images with k boxes (last bin = k or more)
  Quantiles width_px, height_px;         // box sizes in original pixels
  Quantiles rel_area;                    // box area / image area
  int small = 0, medium = 0, large = 0;  // COCO area buckets: < 32^2, < 96^2, larger (original pixels)
  std::map<std::string, int> problems;   // problem kind -> count
};

Quantiles quantiles(std::vector<double> v);
SplitStats compute_stats(const SplitIndex& idx, int nc);
nlohmann::json to_json(const SplitStats& s, const std::vector<std::string>& names);
// A readable table: one row per class with counts per split.
std::string format_class_table(const std::vector<SplitStats>& splits, const std::vector<std::string>& names);

}  // namespace yq::data
