// yoloqat stats data=DATASET.yaml: class counts, box sizes, boxes per image, label problems;
// writes stats.json and a sample mosaic with the labels drawn.
#include <opencv2/imgcodecs.hpp>

#include <iostream>

#include "cli/command.h"
#include "core/error.h"
#include "core/log.h"
#include "core/rng.h"
#include "data/stats.h"
#include "eval/visualize.h"

namespace yq::cli {

namespace {

void run_stats(const Config& cfg) {
  YQ_CHECK_USAGE(!cfg.get_str("data").empty(), "key 'data' is required (a dataset.yaml)");
  data::DatasetInfo info = data::load_dataset_yaml(cfg.get_str("data"));
  fs::path out = make_run_dir(cfg, "reports");
  cfg.save((out / "args.yaml").string());

  std::vector<data::SplitStats> all;
  nlohmann::json j;
  j["data"] = info.yaml.string();
  j["nc"] = info.nc;
  j["names"] = info.names;
  data::SplitIndex first;
  for (const auto& split : cfg.get_strs("splits")) {
    if (!info.splits.count(split)) {
      log::info("{}: no '{}' split, skipped", info.yaml.string(), split);
      continue;
    }
    data::SplitIndex idx = data::scan_split(info, split, {true, 0});
    data::log_summary(idx);
    all.push_back(data::compute_stats(idx, info.nc));
    j["splits"][split] = data::to_json(all.back(), info.names);
    j["splits"][split]["skipped"] = {{"bad_images", idx.summary.bad_images},
                                     {"bad_lines", idx.summary.bad_lines},
                                     {"orphan_labels", idx.summary.orphan_labels}};
    if (first.samples.empty()) first = std::move(idx);
  }
  YQ_CHECK_USAGE(!all.empty(), "none of the splits {} exist in {}", fmt::join(cfg.get_strs("splits"), ","),
                 info.yaml.string());

  // Sample mosaic: a seeded choice of images of the first split with their labels drawn.
  int n = int(std::min<int64_t>(cfg.get_int("samples"), int64_t(first.samples.size())));
  std::vector<size_t> pick(first.samples.size());
  for (size_t i = 0; i < pick.size(); ++i) pick[i] = i;
  Rng rng(mix_seed(uint64_t(cfg.get_int("seed")), 0x57a7));
  for (int i = 0; i < n; ++i)
    std::swap(pick[size_t(i)], pick[size_t(i + rng.randint(int64_t(pick.size()) - i))]);
  std::vector<cv::Mat> tiles;
  for (int i = 0; i < n; ++i) {
    const auto& s = first.samples[pick[size_t(i)]];
    cv::Mat img = cv::imread(s.image, cv::IMREAD_COLOR);
    if (img.empty()) continue;
    std::vector<data::BoxPx> boxes;
    for (const auto& l : s.labels) boxes.push_back(data::to_pixels(l, img.cols, img.rows));
    eval::draw_boxes(img, boxes, info.names);
    tiles.push_back(img);
  }
  if (!tiles.empty()) {
    cv::Mat mosaic = eval::tile_mosaic(tiles, 4, 480, 288);
    YQ_CHECK(cv::imwrite((out / "samples.png").string(), mosaic), "cannot write {}",
             (out / "samples.png").string());
  }
  atomic_write(out / "stats.json", j.dump(2));

  std::cout << data::format_class_table(all, info.names);
  for (const auto& s : all)
    std::cout << fmt::format(
        "{}: box width px median {:.1f} (p10 {:.1f}, p90 {:.1f}); small/medium/large {}/{}/{}; "
        "boxes per image 0:{} 1:{} 2:{} 3+:{}\n",
        s.split, s.width_px.median, s.width_px.p10, s.width_px.p90, s.small, s.medium, s.large,
        s.boxes_per_image[0], s.boxes_per_image[1], s.boxes_per_image[2],
        s.images - s.boxes_per_image[0] - s.boxes_per_image[1] - s.boxes_per_image[2]);
  log::info("stats written to {} (stats.json, samples.png)", out.string());
}

}  // namespace

Command stats_command() {
  Command c;
  c.name = "stats";
  c.summary = "class counts, box sizes, boxes per image, label problems, sample mosaic";
  c.declare = [](Schema& s) {
    s.text("data", "", "dataset.yaml of the data set");
    s.texts("splits", "train,val,test", "splits to analyse (those present)");
    s.integer("samples", 16, "images in the sample mosaic", 0, 256);
    s.integer("seed", 0, "seed for the choice of sample images", 0);
    add_output_keys(s, "stats");
    add_runtime_keys(s);
  };
  c.run = run_stats;
  return c;
}

}  // namespace yq::cli
