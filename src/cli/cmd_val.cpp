// yoloqat val data=... weights=best.pt [split=val] | predictions=FILE: mAP50, mAP50-95, per-class AP,
// P/R, mAP50-95 by object size, confusion matrix (PNG + JSON), PR curve (PNG), metrics.json.
// match=reference (default: the reference's matching, its numbers) or greedy (eval/metrics.h).
// runtime=onnxruntime runs an .onnx file in ONNX Runtime (deploy/ort_session.h) at the file's own input
// size (square letterbox, batch 1 unless the batch is dynamic); letterbox, NMS and metrics stay ours.
#include <opencv2/imgcodecs.hpp>

#include <iostream>

#include "cli/command.h"
#include "core/error.h"
#include "core/log.h"
#include "data/dataset.h"
#include "data/loader.h"
#include "deploy/ort_session.h"
#include "deploy/runtime.h"
#include "eval/plots.h"
#include "eval/validator.h"

namespace yq::cli {

namespace {

void write_png(const fs::path& p, const cv::Mat& img) {
  YQ_CHECK(cv::imwrite(p.string(), img), "cannot write {}", p.string());
}

void run_val(const Config& cfg) {
  const bool from_file = !cfg.get_str("predictions").empty();
  YQ_CHECK_USAGE(!from_file || !cfg.get_str("data").empty(), "key 'data' is required (a dataset.yaml)");
  YQ_CHECK_USAGE(
      from_file || !cfg.get_str("weights").empty(),
      "give weights=CHECKPOINT to evaluate a model, or predictions=FILE to score a predictions file");
  // Without data=, the data set the checkpoint was trained (or calibrated) on, as the reference does.
  const std::string data =
      cfg.get_str("data").empty() ? recorded_data(cfg.get_str("weights")) : cfg.get_str("data");
  data::DatasetInfo info = data::load_dataset_yaml(data);
  const std::string split = cfg.get_str("split");
  data::SplitIndex idx = data::scan_split(info, split);
  data::log_summary(idx);
  fs::path out = make_run_dir(cfg, "reports");
  cfg.save(out / "args.yaml");

  const eval::MatchRule match = eval::parse_match_rule(cfg.get_str("match"));
  eval::DetectionMetrics metrics(info.nc, match);
  eval::ConfusionMatrix cm(info.nc);
  nlohmann::json extra;
  if (from_file) {
    auto r = eval::score_predictions_file(cfg.get_str("predictions"), idx.samples, metrics, cm);
    log::info("{}: {} entries, {} scored, {} for unknown images, {} malformed", cfg.get_str("predictions"),
              r.entries, r.used, r.unknown_images, r.malformed);
    extra = {{"runtime", "predictions file"},
             {"predictions", cfg.get_str("predictions")},
             {"entries", r.entries},
             {"used", r.used},
             {"unknown_images", r.unknown_images},
             {"malformed", r.malformed}};
  } else {
    const std::string weights = cfg.get_str("weights");
    const std::string runtime = cfg.get_str("runtime");
    int imgsz = int(cfg.get_int("imgsz")), batch = int(cfg.get_int("batch"));
    bool rect = cfg.get_bool("rect");
    deploy::InferenceModel im;
    extra = {{"runtime", runtime}, {"model", weights}, {"weights", weights}};
    if (runtime == "onnxruntime") {
      YQ_CHECK_USAGE(fs::path(weights).extension() == ".onnx",
                     "runtime=onnxruntime runs ONNX files; weights={} is not an .onnx file (export it with "
                     "`yoloqat export format=onnx` or format=onnx-qdq)",
                     weights);
      YQ_CHECK_USAGE(fs::is_regular_file(weights), "weights={}: no such file", weights);
      std::string why;
      const fs::path ort_dir = deploy::find_ort_dir(cfg.get_str("ort_dir"), why);
      YQ_CHECK_USAGE(!ort_dir.empty(),
                     "runtime=onnxruntime: ONNX Runtime cannot run: {}. It needs node and the npm package "
                     "onnxruntime-node in tools/ort/node_modules: run scripts/setup",
                     why);
      const auto oi = deploy::read_onnx_info(weights);
      if (oi.qdq)
        deploy::check_exact(weights, oi.target, oi.pair_bound, "onnxruntime", cpu_hardware(),
                            cfg.get_bool("allow_inexact"));
      YQ_CHECK_USAGE(oi.nc == int64_t(info.nc), "{} has {} classes but {} has {}", weights, oi.nc,
                     info.yaml.string(), info.nc);
      YQ_CHECK_USAGE(
          oi.height > 0 && oi.height == oi.width,
          "{}: input {}x{} (HxW); runtime=onnxruntime validates square inputs only (export with one "
          "imgsz)",
          weights, oi.height, oi.width);
      YQ_CHECK_USAGE(oi.height % oi.stride == 0, "{}: input side {} is not a multiple of the stride {}",
                     weights, oi.height, oi.stride);
      if (imgsz != int(oi.height) || rect)
        log::info(
            "runtime=onnxruntime: the model's input is fixed at {}x{}: letterboxing to that square "
            "(rect=false){}",
            oi.height, oi.width, imgsz != int(oi.height) ? fmt::format(" instead of imgsz={}", imgsz) : "");
      imgsz = int(oi.height), rect = false;
      if (!oi.dynamic_batch()) {
        if (batch != int(oi.batch))
          log::info("runtime=onnxruntime: the model's batch is fixed at {}: batch={} instead of {}", oi.batch,
                    oi.batch, batch);
        batch = int(oi.batch);
      }
      const int threads = at::get_num_threads();
      auto session = std::make_shared<deploy::OrtSession>(ort_dir, weights, threads);
      im.kind = oi.qdq ? "onnx-qdq" : "onnx";
      im.nc = oi.nc;
      im.detector = deploy::ort_detector(session, oi.batch);
      log::info("evaluating {} in ONNX Runtime {} ({} model; input {}x{}, {} batch {}, {} threads)", weights,
                session->ort_version(), im.kind, oi.height, oi.width,
                oi.dynamic_batch() ? "dynamic" : "fixed", batch, threads);
      extra["ort_version"] = session->ort_version();
    } else {
      // Any model file: fp32, PTQ / QAT (fake quantization, ranges fixed), int8, a fp32 .onnx (imported).
      im = deploy::load_inference_model(weights, {cfg.get_bool("allow_inexact")});
      YQ_CHECK_USAGE(im.nc == info.nc, "{} has {} classes but {} has {}", weights, im.nc, info.yaml.string(),
                     info.nc);
      log::info("evaluating {} ({} model{})", weights, im.kind, rect ? "" : ", square letterbox rect=false");
    }
    data::LoaderOptions lo;
    lo.imgsz = imgsz, lo.batch = batch, lo.workers = int(cfg.get_int("workers"));
    lo.augment = false, lo.shuffle = false, lo.rect = rect;
    data::DataLoader loader(idx.samples, info.flip_map, lo);
    const eval::Detector& det = im.detector;
    eval::ValOptions vo;
    vo.nms.conf = cfg.get_float("conf"), vo.nms.iou = cfg.get_float("iou"),
    vo.nms.max_det = int(cfg.get_int("max_det"));
    vo.save_json = cfg.get_bool("save_json");
    vo.match = match;
    auto vr = eval::validate(det, loader, info.nc, vo);
    metrics = std::move(vr.metrics);
    cm = std::move(vr.confusion);
    log::info("speed per image: {:.1f} ms pre-process, {:.1f} ms inference, {:.1f} ms NMS", vr.ms_pre,
              vr.ms_inf, vr.ms_nms);
    extra["speed_ms"] = {{"preprocess", vr.ms_pre}, {"inference", vr.ms_inf}, {"nms", vr.ms_nms}};
    extra["kind"] = im.kind;
    extra["imgsz"] = imgsz;
    extra["batch"] = batch;
    extra["rect"] = rect;
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
    s.text("data", "", "dataset.yaml of the data set (\"\" = the one recorded in weights=)");
    s.text("weights", "", "checkpoint to evaluate");
    add_model_weights_key(s);
    s.text("predictions", "", "score this JSON file of predictions instead of running a model");
    s.text("split", "val", "split to evaluate", {"train", "val", "test"});
    s.integer("imgsz", 640, "long side of the letterboxed input (multiple of 32)", 32, 8192);
    s.integer("batch", 16, "images per batch", 1, 1024);
    s.flag("rect", true, "rectangular batches (false: every image letterboxed to imgsz x imgsz)");
    s.text("runtime", "yoloqat", "what runs the model: yoloqat, or onnxruntime for an .onnx file",
           {"yoloqat", "onnxruntime"});
    s.text("ort_dir", "", "runtime=onnxruntime: folder of serve.mjs and node_modules (default tools/ort)");
    s.integer("workers", 2, "loader threads", 0, 64);
    s.real("conf", 0.001, "confidence threshold", 0, 1);
    s.real("iou", 0.7, "NMS IoU threshold", 0, 1);
    s.integer("max_det", 300, "detections kept per image", 1, 100000);
    s.text(
        "match", "reference",
        "matching of detections to labels: reference (ultralytics 8.0.x, its mAP) or greedy (one to one by "
        "IoU)",
        {"reference", "greedy"});
    s.flag("save_json", false, "write predictions.json (image_id, category_id, bbox [x, y, w, h], score)");
    s.flag("plots", true, "write confusion_matrix.png and pr_curve.png");
    add_device_key(s);
    add_output_keys(s, "val");
    add_inexact_key(s);
    add_runtime_keys(s);
  };
  c.run = run_val;
  return c;
}

}  // namespace yq::cli
