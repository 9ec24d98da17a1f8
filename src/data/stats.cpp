#include "data/stats.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace yq::data {

namespace {
constexpr int kMaxBoxesBin = 10;
}

Quantiles quantiles(std::vector<double> v) {
  Quantiles q;
  if (v.empty()) return q;
  std::sort(v.begin(), v.end());
  auto at = [&](double p) {  // linear interpolation between order statistics
    double pos = p * double(v.size() - 1);
    size_t lo = size_t(std::floor(pos)), hi = std::min(lo + 1, v.size() - 1);
    return v[lo] + (v[hi] - v[lo]) * (pos - double(lo));
  };
  q.min = v.front(), q.p10 = at(0.1), q.median = at(0.5), q.p90 = at(0.9), q.max = v.back();
  return q;
}

SplitStats compute_stats(const SplitIndex& idx, int nc) {
  SplitStats s;
  s.split = idx.split;
  s.class_counts.assign(size_t(nc), 0);
  s.boxes_per_image.assign(kMaxBoxesBin + 1, 0);
  std::vector<double> w, h, area;
  for (const auto& smp : idx.samples) {
    ++s.images;
    if (smp.labels.empty()) ++s.backgrounds;
    s.boxes_per_image[std::min<size_t>(smp.labels.size(), kMaxBoxesBin)]++;
    for (const auto& l : smp.labels) {
      ++s.boxes;
      if (l.cls >= 0 && l.cls < nc) s.class_counts[size_t(l.cls)]++;
      double bw = l.w * smp.width, bh = l.h * smp.height;
      w.push_back(bw), h.push_back(bh), area.push_back(double(l.w) * l.h);
      double a = bw * bh;
      if (a < 32 * 32)
        ++s.small;
      else if (a < 96 * 96)
        ++s.medium;
      else
        ++s.large;
    }
  }
  s.width_px = quantiles(w), s.height_px = quantiles(h), s.rel_area = quantiles(area);
  for (const auto& p : idx.summary.problems) s.problems[p.kind]++;
  return s;
}

static nlohmann::json q_json(const Quantiles& q) {
  return {{"min", q.min}, {"p10", q.p10}, {"median", q.median}, {"p90", q.p90}, {"max", q.max}};
}

nlohmann::json to_json(const SplitStats& s, const std::vector<std::string>& names) {
  nlohmann::json classes = nlohmann::json::object();
  for (size_t c = 0; c < s.class_counts.size(); ++c)
    classes[c < names.size() ? names[c] : std::to_string(c)] = s.class_counts[c];
  return {{"split", s.split},
          {"images", s.images},
          {"backgrounds", s.backgrounds},
          {"boxes", s.boxes},
          {"class_counts", classes},
          {"boxes_per_image", s.boxes_per_image},
          {"box_width_px", q_json(s.width_px)},
          {"box_height_px", q_json(s.height_px)},
          {"box_relative_area", q_json(s.rel_area)},
          {"size_buckets", {{"small", s.small}, {"medium", s.medium}, {"large", s.large}}},
          {"problems", s.problems}};
}

std::string format_class_table(const std::vector<SplitStats>& splits, const std::vector<std::string>& names) {
  size_t w = 11;  // "backgrounds"
  for (const auto& n : names) w = std::max(w, n.size());
  std::string out = fmt::format("{:<{}}", "class", w + 2);
  for (const auto& s : splits) out += fmt::format("{:>9}", s.split);
  out += "\n";
  for (size_t c = 0; c < names.size(); ++c) {
    out += fmt::format("{:<{}}", names[c], w + 2);
    for (const auto& s : splits)
      out += fmt::format("{:>9}", c < s.class_counts.size() ? s.class_counts[c] : 0);
    out += "\n";
  }
  out += fmt::format("{:<{}}", "all boxes", w + 2);
  for (const auto& s : splits) out += fmt::format("{:>9}", s.boxes);
  out += "\n" + fmt::format("{:<{}}", "images", w + 2);
  for (const auto& s : splits) out += fmt::format("{:>9}", s.images);
  out += "\n" + fmt::format("{:<{}}", "backgrounds", w + 2);
  for (const auto& s : splits) out += fmt::format("{:>9}", s.backgrounds);
  return out + "\n";
}

}  // namespace yq::data
