// yoloqat val data=... weights=best.pt [split=val] | predictions=FILE: mAP50, mAP50-95, per-class AP,
// P/R, confusion matrix (PNG + JSON), PR curve (PNG), metrics.json.
#include <opencv2/imgcodecs.hpp>

#include <iostream>

#include "cli/command.h"
#include "core/error.h"
#include "core/log.h"
#include "data/dataset.h"
#include "data/loader.h"
#include "deploy/runtime.h"
#include "eval/plots.h"
#include "eval/validator.h"

namespace yq::cli {

namespace {

void write_png(const fs::path& p, const cv::Mat& img) {
  YQ_CHECK(cv::imwrite(p.string(), img), "cannot write {}", p.string());
}

void run_val(const Config& cfg) {
  YQ_CHECK_USAGE(!cfg.get_str("data").empty(), "key 'data' is required (a dataset.yaml)");
  const bool from_file = !cfg.get_str("predictions").empty();
  YQ_CHECK_USAGE(
      from_file || !cfg.get_str("weights").empty(),
      "give weights=CHECKPOINT to evaluate a model, or predictions=FILE to score a predictions file");
  data::DatasetInfo info = data::load_dataset_yaml(cfg.get_str("data"));
  const std::string split = cfg.get_str("split");
  data::SplitIndex idx = data::scan_split(info, split);
  data::log_summary(idx);
  fs::path out = make_run_dir(cfg, "reports");
  cfg.save(out / "args.yaml");

  eval::DetectionMetrics metrics(info.nc);
  eval::ConfusionMatrix cm(info.nc);
  nlohmann::json extra;
  if (from_file) {
    auto r = eval::score_predictions_file(cfg.get_str("predictions"), idx.samples, metrics, cm);
    log::info("{}: {} entries, {} scored, {} for unknown images, {} malformed", cfg.get_str("predictions"),
              r.entries, r.used, r.unknown_images, r.malformed);
    extra = {{"entries", r.entries},
             {"used", r.used},
             {"unknown_images", r.unknown_images},
             {"malformed", r.malformed}};
  } else {
    // Any model file: fp32, PTQ / QAT (fake quantization, ranges fixed), int8.
    auto im = deploy::load_inference_model(cfg.get_str("weights"));
    YQ_CHECK_USAGE(im.nc == info.nc, "{} has {} classes but {} has {}", cfg.get_str("weights"), im.nc,
                   info.yaml.string(), info.nc);
    log::info("evaluating {} ({} model)", cfg.get_str("weights"), im.kind);
    data::LoaderOptions lo;
    lo.imgsz = int(cfg.get_int("imgsz")), lo.batch = int(cfg.get_int("batch")),
    lo.workers = int(cfg.get_int("workers"));
    lo.augment = false, lo.shuffle = false, lo.rect = true;
    data::DataLoader loader(idx.samples, info.flip_map, lo);
    const eval::Detector& det = im.detector;
    eval::ValOptions vo;
    vo.nms.conf = cfg.get_float("conf"), vo.nms.iou = cfg.get_float("iou"),
    vo.nms.max_det = int(cfg.get_int("max_det"));
    vo.save_json = cfg.get_bool("save_json");
    auto vr = eval::validate(det, loader, info.nc, vo);
    metrics = std::move(vr.metrics);
    cm = std::move(vr.confusion);
    log::info("speed per image: {:.1f} ms pre-process, {:.1f} ms inference, {:.1f} ms NMS", vr.ms_pre,
              vr.ms_inf, vr.ms_nms);
    extra = {{"speed_ms", {{"preprocess", vr.ms_pre}, {"inference", vr.ms_inf}, {"nms", vr.ms_nms}}},
             {"weights", cfg.get_str("weights")},
             {"kind", im.kind}};
    if (vo.save_json) {
      atomic_write(out / "predictions.json", vr.predictions.dump());
      log::info("predictions written to {}", (out / "predictions.json").string());
    }
  }
  std::cout << eval::format_metrics_table(metrics, info.names);
  nlohmann::json j = metrics.to_json(info.names);
  j["split"] = split;
  j["data"] = info.yaml.string();
  j["source"] = extra;
  atomic_write(out / "metrics.json", j.dump(2));
  atomic_write(out / "confusion_matrix.json", cm.to_json(info.names).dump(2));
  if (cfg.get_bool("plots")) {
    write_png(out / "confusion_matrix.png", eval::confusion_matrix_plot(cm, info.names));
    write_png(out / "pr_curve.png", eval::pr_curve_plot(metrics, info.names));
  }
  log::info("results in {}", out.string());
}

}  // namespace

Command val_command() {
  Command c;
  c.name = "val";
  c.summary = "mAP50, mAP50-95, per-class AP, P/R, confusion matrix of a model or a predictions file";
  c.declare = [](Schema& s) {
    s.text("data", "", "dataset.yaml of the data set");
    s.text("weights", "", "checkpoint to evaluate");
    s.text("predictions", "", "score this JSON file of predictions instead of running a model");
    s.text("split", "val", "split to evaluate", {"train", "val", "test"});
    s.integer("imgsz", 640, "long side of the letterboxed input (multiple of 32)", 32, 8192);
    s.integer("batch", 16, "images per batch", 1, 1024);
    s.integer("workers", 2, "loader threads", 0, 64);
    s.real("conf", 0.001, "confidence threshold", 0, 1);
    s.real("iou", 0.7, "NMS IoU threshold", 0, 1);
    s.integer("max_det", 300, "detections kept per image", 1, 100000);
    s.flag("save_json", false, "write predictions.json (image_id, category_id, bbox [x, y, w, h], score)");
    s.flag("plots", true, "write confusion_matrix.png and pr_curve.png");
    add_output_keys(s, "val");
    add_runtime_keys(s);
  };
  c.run = run_val;
  return c;
}

}  // namespace yq::cli
