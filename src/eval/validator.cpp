#include "eval/validator.h"

#include <chrono>
#include <map>
#include <optional>

#include "core/error.h"
#include "core/log.h"
#include "core/progress.h"
#include "train/loss.h"

namespace yq::eval {

namespace {
using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}
}  // namespace

torch::Tensor scale_to_original(const torch::Tensor& dets, const data::LetterboxInfo& lb, int orig_h,
                                int orig_w) {
  auto out = dets.clone();
  if (out.numel() == 0) return out;
  auto xs = out.select(1, 0), ys = out.select(1, 1), xe = out.select(1, 2), ye = out.select(1, 3);
  xs.sub_(lb.pad_x).div_(lb.ratio).clamp_(0, orig_w);
  xe.sub_(lb.pad_x).div_(lb.ratio).clamp_(0, orig_w);
  ys.sub_(lb.pad_y).div_(lb.ratio).clamp_(0, orig_h);
  ye.sub_(lb.pad_y).div_(lb.ratio).clamp_(0, orig_h);
  return out;
}

torch::Tensor batch_labels_original(const data::Batch& b, int64_t i) {
  const int64_t H = b.images.size(2), W = b.images.size(3);
  auto t = b.targets;
  auto rows = t.index({t.select(1, 0) == double(i)});
  auto out = torch::empty({rows.size(0), 5}, torch::kFloat32);
  if (rows.size(0) == 0) return out;
  out.select(1, 0).copy_(rows.select(1, 1));
  auto cx = rows.select(1, 2) * W, cy = rows.select(1, 3) * H, w = rows.select(1, 4) * W,
       h = rows.select(1, 5) * H;
  auto boxes = torch::stack(
      {cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2, torch::zeros_like(cx), torch::zeros_like(cx)}, 1);
  auto [oh, ow] = b.orig_hw[size_t(i)];
  auto mapped = scale_to_original(boxes, b.letterbox[size_t(i)], oh, ow);
  out.narrow(1, 1, 4).copy_(mapped.narrow(1, 0, 4));
  return out;
}

torch::Tensor sample_labels_original(const data::Sample& s) {
  auto labels = torch::empty({int64_t(s.labels.size()), 5}, torch::kFloat32);
  auto acc = labels.accessor<float, 2>();
  for (size_t k = 0; k < s.labels.size(); ++k) {
    const auto b = data::to_pixels(s.labels[k], s.width, s.height);
    const int64_t r = int64_t(k);
    acc[r][0] = float(b.cls), acc[r][1] = b.x1, acc[r][2] = b.y1, acc[r][3] = b.x2, acc[r][4] = b.y2;
  }
  return labels;
}

torch::Tensor as_saved_boxes(const torch::Tensor& dets) {
  auto out = dets.clone();
  if (out.numel() == 0) return out;
  // x2 -> x1 + (x2 - x1) in float: the file holds w = x2 - x1 (of the unrounded x2), and x1 + w need
  // not give x2 back exactly.
  for (int64_t c = 0; c < 2; ++c) {
    auto lo = out.select(1, c), hi = out.select(1, c + 2);
    hi.copy_(lo + (hi - lo));
  }
  return out;
}

ValResult validate(const Detector& det, data::DataLoader& loader, int nc, const ValOptions& opt,
                   const train::DetectionLoss* loss) {
  ValResult res(nc, opt.match);
  torch::NoGradGuard ng;
  loader.start_epoch(0);
  data::Batch b;
  torch::Tensor loss_sum;
  int64_t batches = 0, images = 0;
  std::optional<ProgressBar> bar;
  if (opt.progress) bar.emplace("val", loader.num_batches());
  while (loader.next(b)) {
    auto t0 = Clock::now();
    auto x = b.images.to(torch::kFloat32).div_(255);
    res.ms_pre += ms_since(t0);
    t0 = Clock::now();
    torch::Tensor preds;
    if (det.raw) {
      auto raw = det.raw(x);
      if (loss) {
        auto lo = (*loss)(raw, b.targets, x.size(2), x.size(3));
        loss_sum = loss_sum.defined() ? loss_sum + lo.items : lo.items.clone();
      }
      preds = det.decode(raw);
    } else {
      preds = det.forward(x);
    }
    res.ms_inf += ms_since(t0);
    t0 = Clock::now();
    auto dets = non_max_suppression(preds, opt.nms);
    res.ms_nms += ms_since(t0);
    for (int64_t i = 0; i < int64_t(dets.size()); ++i) {
      auto [oh, ow] = b.orig_hw[size_t(i)];
      auto d = scale_to_original(dets[size_t(i)], b.letterbox[size_t(i)], oh, ow);
      // Boxes as predictions.json gives them back (x + w), labels as the label file holds them: scoring
      // the file with score_predictions_file() gives these metrics bit for bit.
      const auto scored = as_saved_boxes(d);
      auto labels = b.sample_index.size() == b.paths.size()
                        ? sample_labels_original(loader.samples()[size_t(b.sample_index[size_t(i)])])
                        : batch_labels_original(b, i);
      res.metrics.add(scored, labels);
      res.confusion.add(scored, labels);
      if (opt.save_json) {
        std::string stem = fs::path(b.paths[size_t(i)]).stem().string();
        auto acc = d.accessor<float, 2>();
        for (int64_t k = 0; k < d.size(0); ++k) {
          res.predictions.push_back(
              {{"image_id", stem},
               {"category_id", int(acc[k][5])},
               {"bbox", {acc[k][0], acc[k][1], acc[k][2] - acc[k][0], acc[k][3] - acc[k][1]}},
               {"score", acc[k][4]}});
        }
      }
    }
    images += int64_t(dets.size());
    ++batches;
    if (bar) bar->update(batches, "");
  }
  if (bar) bar->finish("");
  res.metrics.compute();
  if (loss_sum.defined()) res.loss = loss_sum / double(std::max<int64_t>(batches, 1));
  if (images > 0) res.ms_pre /= double(images), res.ms_inf /= double(images), res.ms_nms /= double(images);
  return res;
}

PredictionFileResult score_predictions_file(const fs::path& file, const std::vector<data::Sample>& samples,
                                            DetectionMetrics& metrics, ConfusionMatrix& cm) {
  PredictionFileResult r;
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_text(file));
  } catch (const nlohmann::json::exception& e) {
    throw UsageError(fmt::format("{}: not valid JSON: {}", file.string(), e.what()));
  }
  YQ_CHECK_USAGE(j.is_array(), "{}: expected a JSON list of {{image_id, category_id, bbox, score}}",
                 file.string());
  std::map<std::string, size_t> by_stem;
  for (size_t i = 0; i < samples.size(); ++i) by_stem[fs::path(samples[i].image).stem().string()] = i;
  std::vector<std::vector<float>> per_image(samples.size());
  std::map<std::string, int64_t> unknown;
  for (size_t k = 0; k < j.size(); ++k) {
    ++r.entries;
    const auto& e = j[k];
    bool ok = e.is_object() && e.contains("image_id") && e.contains("category_id") && e.contains("bbox") &&
              e.contains("score") && e["bbox"].is_array() && e["bbox"].size() == 4 &&
              e["category_id"].is_number_integer() && e["score"].is_number();
    for (size_t q = 0; ok && q < 4; ++q) ok = e["bbox"][q].is_number();
    if (ok) {
      int c = e["category_id"].get<int>();
      ok = c >= 0 && c < metrics.nc();
    }
    if (!ok) {
      if (r.malformed < 10)
        log::warn("{}: entry {} is malformed or has a class outside [0, {}): {}", file.string(), k,
                  metrics.nc(), e.dump().substr(0, 120));
      ++r.malformed;
      continue;
    }
    std::string id = e["image_id"].is_string() ? e["image_id"].get<std::string>() : e["image_id"].dump();
    auto it = by_stem.find(id);
    if (it == by_stem.end()) {
      ++r.unknown_images;
      unknown[id]++;
      continue;
    }
    auto bb = e["bbox"];
    float x = bb[0].get<float>(), y = bb[1].get<float>(), w = bb[2].get<float>(), h = bb[3].get<float>();
    per_image[it->second].insert(per_image[it->second].end(), {x, y, x + w, y + h, e["score"].get<float>(),
                                                               float(e["category_id"].get<int>())});
    ++r.used;
  }
  size_t shown = 0;
  for (const auto& [id, n] : unknown)
    if (shown++ < 10)
      log::warn("{}: image_id '{}' ({} entries) is not an image of the split", file.string(), id, n);
  for (size_t i = 0; i < samples.size(); ++i) {
    const auto& s = samples[i];
    auto& v = per_image[i];
    auto dets = torch::from_blob(v.data(), {int64_t(v.size() / 6), 6}, torch::kFloat32).clone();
    // Highest scores first (ties in the file's order, which is NMS's), at most 300 per image (as our
    // own validation keeps).
    if (dets.size(0) > 0) {
      auto order =
          std::get<1>(torch::sort(dets.select(1, 4), /*stable=*/true, /*dim=*/0, /*descending=*/true));
      dets = dets.index_select(0, order).narrow(0, 0, std::min<int64_t>(300, dets.size(0)));
    }
    auto labels = sample_labels_original(s);
    metrics.add(dets, labels);
    cm.add(dets, labels);
  }
  metrics.compute();
  return r;
}

std::string format_metrics_table(const DetectionMetrics& m, const std::vector<std::string>& names) {
  size_t w = 5;
  for (const auto& n : names) w = std::max(w, n.size());
  std::string out = fmt::format("{:<{}}{:>8}{:>10}{:>8}{:>8}{:>8}{:>10}\n", "class", w + 2, "images",
                                "instances", "P", "R", "mAP50", "mAP50-95");
  int64_t instances = 0;
  for (int c = 0; c < m.nc(); ++c) instances += m.n_labels(c);
  out += fmt::format("{:<{}}{:>8}{:>10}{:>8.3f}{:>8.3f}{:>8.3f}{:>10.3f}\n", "all", w + 2, m.images(),
                     instances, m.precision(), m.recall(), m.map50(), m.map());
  for (int c = 0; c < m.nc(); ++c) {
    if (!m.has_labels(c)) continue;
    out += fmt::format("{:<{}}{:>8}{:>10}{:>8.3f}{:>8.3f}{:>8.3f}{:>10.3f}\n",
                       c < int(names.size()) ? names[size_t(c)] : std::to_string(c), w + 2, m.n_images(c),
                       m.n_labels(c), m.p(c), m.r(c), m.ap50(c), m.ap(c));
  }
  out += "mAP50-95 by label area (original pixels; small < 32^2 <= medium <= 96^2 < large):";
  for (int r = 0; r < kAreaRanges; ++r) {
    const auto range = AreaRange(r);
    const double v = m.map_area(range);
    out += fmt::format(" {} {} ({} labels)", area_range_name(range),
                       v < 0 ? std::string("-") : fmt::format("{:.3f}", v), m.n_labels_area(range));
  }
  out += fmt::format("; match={}\n", match_rule_name(m.match()));
  return out;
}

}  // namespace yq::eval
