// Fixture inputs of the HTML report: small hand-written files in the shapes the commands write.
#pragma once

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "../test_util.h"
#include "eval/report.h"

namespace yq::testing {

inline eval::ReportInputs write_report_fixtures(const fs::path& d) {
  eval::ReportInputs in;
  in.title = "fixture <run> & report";
  write_file(d / "stats.json",
             R"({"names": ["stop", "speed_limit"], "nc": 2, "splits": {"train": {"images": 10,
    "boxes": 20, "backgrounds": 1, "class_counts": {"stop": 12, "speed_limit": 8}, "size_buckets": {"small": 15,
    "medium": 5, "large": 0}, "box_width_px": {"median": 18}, "box_height_px": {"median": 19}},
    "val": {"images": 4, "boxes": 6, "backgrounds": 0, "class_counts": {"stop": 2, "speed_limit": 4}}}})");
  cv::Mat img(60, 90, CV_8UC3, cv::Scalar(40, 160, 220));
  cv::rectangle(img, {10, 10}, {40, 40}, cv::Scalar(0, 0, 255), 2);
  cv::imwrite((d / "samples.png").string(), img);
  write_file(d / "model.json", R"({"model": "yolov8n", "nc": 2, "imgsz": [320, 320], "parameters": 3011238,
    "gflops": 2.1, "layers": [{"index": 0, "from": [-1], "repeats": 1, "module": "Conv", "args": [16, 3, 2],
    "params": 464, "gflops": 0.05}, {"index": 1, "from": [-1], "repeats": 1, "module": "Conv", "args": [32, 3, 2],
    "params": 4672, "gflops": 0.12}]})");
  const std::string h =
      "epoch,train/box_loss,train/cls_loss,train/dfl_loss,metrics/precision(B),metrics/recall(B),"
      "metrics/mAP50(B),metrics/mAP50-95(B),val/box_loss,val/cls_loss,val/dfl_loss,lr/pg0,lr/pg1,lr/pg2\n";
  write_file(d / "fp32.csv", h + "1,2,3,1.5,0.1,0.1,0.2,0.1,2,3,1.5,0.01,0.01,0.01\n"
                                 "2,1.6,2.2,1.3,0.4,0.4,0.5,0.3,1.7,2.4,1.3,0.01,0.01,0.01\n"
                                 "3,1.4,1.8,1.2,0.6,0.5,0.62,0.41,1.5,2,1.2,0.01,0.01,0.01\n");
  write_file(d / "qat.csv", h + "1,1.5,1.9,1.25,0.55,0.5,0.58,0.37,1.6,2.1,1.2,0.001,0.001,0.001\n"
                                "2,1.45,1.85,1.22,0.57,0.5,0.6,0.39,1.55,2,1.2,0.001,0.001,0.001\n");
  write_file(d / "analyze.json", R"({"images": 8, "seconds": 1.5, "reference": "fp32 model", "layers": [
    {"name": "input", "kind": "input", "alone": {"sqnr_db": null, "mse": 0, "cosine": 1}, "accumulated": {"sqnr_db": null, "mse": 0, "cosine": 1},
     "weight_hist": null, "act_hist": null},
    {"name": "model.0", "kind": "conv", "alone": {"sqnr_db": 38.2, "mse": 1e-4, "cosine": 0.9999},
     "accumulated": {"sqnr_db": 37.9, "mse": 1.1e-4, "cosine": 0.9998},
     "weight_hist": {"edges": [-1, -0.5, 0, 0.5, 1], "counts": [3, 40, 50, 4], "clip_lo": -1, "clip_hi": 1, "clipped_fraction": 0},
     "act_hist": {"edges": [-0.3, 0, 1, 2, 3], "counts": [10, 500, 80, 2], "clip_lo": -0.28, "clip_hi": 2.5, "clipped_fraction": 0.001}},
    {"name": "model.22.cv3.0.2", "kind": "head", "alone": {"sqnr_db": 30.1, "mse": 0.01, "cosine": 0.999},
     "accumulated": {"sqnr_db": 17.4, "mse": 0.2, "cosine": 0.98}, "weight_hist": null,
     "act_hist": {"edges": [-8, -4, 0, 4], "counts": [100, 20, 3], "clip_lo": -7, "clip_hi": 3.5, "clipped_fraction": 0.02}}],
    "drift": {"epoch": [1, 2], "map50": [0.58, 0.6], "map5095": [0.37, 0.39], "fp32_map50": 0.62, "fp32_map5095": 0.41}})");
  write_file(d / "sensitivity.json",
             R"({"metric": "mAP50-95", "baseline": {"mAP50-95": 0.41, "mAP50": 0.62}, "layers": [
    {"name": "model.0", "kind": "conv", "only_this": 0.405, "all_but_this": 0.37, "rank": 2},
    {"name": "model.22.cv3.0.2", "kind": "head", "only_this": 0.36, "all_but_this": 0.40, "rank": 1}]})");
  const std::string cls = R"([{"id": 0, "name": "stop", "instances": 2, "ap50": 0.7, "ap50-95": 0.45},
    {"id": 1, "name": "speed_limit", "instances": 4, "ap50": 0.54, "ap50-95": A}])";
  std::string c1 = cls, c2 = cls;
  c1.replace(c1.find('A'), 1, "0.37");
  c2.replace(c2.find('A'), 1, "0.31");
  write_file(d / "fp32/metrics.json",
             R"({"mAP50": 0.62, "mAP50-95": 0.41, "mAP_small": 0.2, "mAP_medium": 0.45, "mAP_large": null,
        "instances_by_area": {"small": 3, "medium": 3, "large": 0}, "source": {"weights": "models/checkpoints/fp32/x/best.pt"}, "classes": )" +
                 c1 + "}");
  write_file(d / "int8/metrics.json",
             R"({"mAP50": 0.6, "mAP50-95": 0.38, "mAP_small": 0.15, "mAP_medium": 0.44, "mAP_large": null,
        "instances_by_area": {"small": 3, "medium": 3, "large": 0}, "source": {"weights": "models/checkpoints/qat/x/best.pt"}, "classes": )" +
                 c2 + "}");
  const std::string cm =
      R"({"nc": 2, "names": ["stop", "speed_limit", "background"], "matrix": [[2, 0, 1], [0, 3, 2], [0, 1, 0]]})";
  write_file(d / "fp32/confusion_matrix.json", cm);
  write_file(d / "int8/confusion_matrix.json", cm);
  write_file(d / "benchmark.json", R"({"rows": [
    {"model": "x", "kind": "fp32", "runtime": "yoloqat", "imgsz": 320, "batch": 1, "threads": 2, "p50_ms": 40, "p90_ms": 42, "p99_ms": 45, "mean_ms": 40.5, "throughput_ips": 25, "pre_ms": 1, "inf_ms": 38, "post_ms": 1, "peak_rss_mb": 300, "file_mb": 12},
    {"model": "x", "kind": "int8", "runtime": "yoloqat", "imgsz": 320, "batch": 1, "threads": 2, "p50_ms": 16, "p90_ms": 17, "p99_ms": 19, "mean_ms": 16.2, "throughput_ips": 62, "pre_ms": 1, "inf_ms": 14, "post_ms": 1, "peak_rss_mb": 200, "file_mb": 3.2},
    {"model": "x", "kind": "int8", "runtime": "onnxruntime", "imgsz": 320, "batch": 1, "threads": 2, "p50_ms": 12, "p90_ms": 13, "p99_ms": 14, "mean_ms": 12.1, "throughput_ips": 80, "pre_ms": 1, "inf_ms": 10, "post_ms": 1, "peak_rss_mb": 150, "file_mb": 3.3}]})");
  write_file(d / "compare.json", R"({"rows": [
    {"name": "fp32", "kind": "fp32", "file": "best.pt", "map50": 0.62, "map5095": 0.41, "p50_ms": 40, "speedup": 1, "file_mb": 12, "peak_rss_mb": 300},
    {"name": "int8 oneDNN", "kind": "int8", "file": "int8.pt", "map50": 0.6, "map5095": 0.38, "p50_ms": 16, "speedup": 2.5, "file_mb": 3.2, "peak_rss_mb": 200
}]
})");
  in.stats_json = d / "stats.json", in.samples_png = d / "samples.png", in.model_json = d / "model.json";
  in.fp32_results = d / "fp32.csv", in.qat_results = d / "qat.csv", in.analyze_json = d / "analyze.json";
  in.sensitivity_json = d / "sensitivity.json", in.fp32_metrics = d / "fp32/metrics.json";
  in.int8_metrics = d / "int8/metrics.json", in.fp32_confusion = d / "fp32/confusion_matrix.json";
  in.int8_confusion = d / "int8/confusion_matrix.json", in.benchmark_json = d / "benchmark.json";
  in.compare_json = d / "compare.json";
  return in;
}

}  // namespace yq::testing
