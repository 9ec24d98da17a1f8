// yoloqat compare data=dataset.yaml weights=fp32.pt,ptq.pt,qat.pt,model.int8 [split=test]: one table of
// mAP50 and mAP50-95 (validation on the split, as `val` runs it), batch-1 latency (each model in a process
// of its own, as `benchmark` measures it), speed-up against the first model, file size and peak memory.
// Writes <project>/reports/<name>/compare.json.
#include <torch/torch.h>

#include <iostream>
#include <thread>

#include "cli/benchmark_run.h"
#include "cli/command.h"
#include "core/error.h"
#include "core/log.h"
#include "data/dataset.h"
#include "data/loader.h"
#include "deploy/runtime.h"
#include "eval/validator.h"

namespace yq::cli {

namespace {

struct Accuracy {
  std::string kind;
  double map50 = 0, map5095 = 0;
};

Accuracy validate_model(const Config& cfg, const fs::path& weights, const data::DatasetInfo& info,
                        const data::SplitIndex& idx) {
  auto im = deploy::load_inference_model(weights, {cfg.get_bool("allow_inexact")});
  YQ_CHECK_USAGE(im.nc == info.nc, "{} has {} classes but {} has {}", weights.string(), im.nc,
                 info.yaml.string(), info.nc);
  data::LoaderOptions lo;
  lo.imgsz = int(cfg.get_int("imgsz")), lo.batch = int(cfg.get_int("batch")),
  lo.workers = int(cfg.get_int("workers"));
  lo.augment = false, lo.shuffle = false, lo.rect = true;
  data::DataLoader loader(idx.samples, info.flip_map, lo);
  eval::ValOptions vo;
  vo.nms.conf = cfg.get_float("conf"), vo.nms.iou = cfg.get_float("iou");
  vo.progress = false;
  auto vr = eval::validate(im.detector, loader, int(info.nc), vo);
  return {im.kind, vr.metrics.map50(), vr.metrics.map()};
}

// mAP of `weights` from the metrics.json `val` wrote for it (checked to be that model on that split).
Accuracy reuse_metrics(const fs::path& file, const std::string& weights, const std::string& split) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_text(file));
  } catch (const std::exception& e) {
    throw UsageError(
        fmt::format("metrics={}: not a metrics.json of `yoloqat val` ({})", file.string(), e.what()));
  }
  YQ_CHECK_USAGE(j.contains("mAP50") && j.contains("mAP50-95"), "metrics={}: no mAP50 / mAP50-95 keys",
                 file.string());
  const std::string of = j.contains("source") ? j["source"].value("weights", std::string()) : std::string();
  YQ_CHECK_USAGE(of.empty() || fs::weakly_canonical(of) == fs::weakly_canonical(weights),
                 "metrics={} is of {}, not of {}", file.string(), of, weights);
  YQ_CHECK_USAGE(j.value("split", split) == split, "metrics={} is of the {} split, not {}", file.string(),
                 j.value("split", std::string()), split);
  Accuracy a;
  a.map50 = j["mAP50"].get<double>(), a.map5095 = j["mAP50-95"].get<double>();
  log::info("{}: mAP from {}", weights, file.string());
  return a;
}

void run_compare(const Config& cfg) {
  YQ_CHECK_USAGE(!cfg.get_str("data").empty(), "key 'data' is required (a dataset.yaml)");
  const auto weights = cfg.get_strs("weights");
  YQ_CHECK_USAGE(!weights.empty(),
                 "give weights=FP32.pt,PTQ.pt,QAT.pt,MODEL.int8 (the first is the baseline)");
  for (const auto& w : weights) YQ_CHECK_USAGE(fs::is_regular_file(w), "weights={}: no such file", w);
  data::DatasetInfo info = data::load_dataset_yaml(cfg.get_str("data"));
  const std::string split = cfg.get_str("split");
  data::SplitIndex idx = data::scan_split(info, split);
  YQ_CHECK_USAGE(!idx.samples.empty(), "split '{}' of {} has no images", split, info.yaml.string());
  fs::path out = make_run_dir(cfg, "reports");
  cfg.save(out / "args.yaml");

  deploy::BenchmarkOptions bo;
  bo.imgsz = int(cfg.get_int("imgsz"));
  bo.batch = 1;
  int64_t t = cfg.get_int("threads");
  bo.threads = int(t > 0 ? t : int64_t(std::max(1u, std::thread::hardware_concurrency())));
  bo.timing.warmup = int(cfg.get_int("warmup"));
  bo.timing.runs = int(cfg.get_int("runs"));
  bo.timing.max_seconds = cfg.get_float("max_seconds");
  bo.allow_inexact = cfg.get_bool("allow_inexact");
  const bool isolate = cfg.get_bool("isolate");
  const std::string exe = cfg.get_str("exe");
  const int val_threads = bo.threads;

  const auto metrics_files = cfg.get_strs("metrics");
  YQ_CHECK_USAGE(metrics_files.empty() || metrics_files.size() == weights.size(),
                 "metrics: {} files for {} weights (one metrics.json per model, in the same order)",
                 metrics_files.size(), weights.size());
  const auto names = display_names(weights);
  struct Row {
    std::string name, kind;
    fs::path file;
    Accuracy acc;
    deploy::BenchmarkResult r;
    double file_mb = 0;
  };
  std::vector<Row> rows;
  for (size_t m = 0; m < weights.size(); ++m) {
    Row row;
    row.name = names[m], row.file = weights[m];
    row.file_mb = double(fs::file_size(weights[m])) / (1024.0 * 1024.0);
    if (!metrics_files.empty()) {
      row.acc = reuse_metrics(metrics_files[m], weights[m], split);
    } else {
      log::info("{}: validating on the {} split ({} images)", weights[m], split, idx.samples.size());
      at::set_num_threads(val_threads);
      row.acc = with_context("validation of " + weights[m],
                             [&] { return validate_model(cfg, weights[m], info, idx); });
    }
    log::info("{}: timing at batch 1, {} threads", weights[m], bo.threads);
    ModelBench mb = with_context("benchmark of " + weights[m], [&] {
      return isolate ? bench_in_child(exe, weights[m], bo) : bench_in_process(weights[m], bo);
    });
    row.kind = mb.kind;
    row.r = mb.result;
    rows.push_back(std::move(row));
  }

  const double base_inf = rows.front().r.inference.p50_ms;
  nlohmann::json jrows = nlohmann::json::array();
  std::string table = fmt::format("{:<24} {:<5} {:>7} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8}\n", "model", "kind",
                                  "mAP50", "mAP50-95", "p50 ms", "inf p50", "speedup", "file MB", "RSS MB");
  for (const auto& r : rows) {
    const double speedup = r.r.inference.p50_ms > 0 ? base_inf / r.r.inference.p50_ms : 0;
    jrows.push_back({{"name", r.name},
                     {"kind", r.kind},
                     {"file", r.file.string()},
                     {"map50", r.acc.map50},
                     {"map5095", r.acc.map5095},
                     {"p50_ms", r.r.latency.p50_ms},
                     {"inf_p50_ms", r.r.inference.p50_ms},
                     {"throughput_ips", r.r.throughput_ips},
                     {"speedup", speedup},
                     {"file_mb", r.file_mb},
                     {"peak_rss_mb", r.r.peak_rss_mb}});
    table += fmt::format("{:<24} {:<5} {:>7.4f} {:>9.4f} {:>8.2f} {:>8.2f} {:>8.2f} {:>8.2f} {:>8.0f}\n",
                         r.name.size() > 24 ? r.name.substr(r.name.size() - 24) : r.name, r.kind, r.acc.map50,
                         r.acc.map5095, r.r.latency.p50_ms, r.r.inference.p50_ms, speedup, r.file_mb,
                         r.r.peak_rss_mb);
  }
  std::cout << table;
  nlohmann::json j = {{"data", info.yaml.string()},
                      {"split", split},
                      {"images", idx.samples.size()},
                      {"imgsz", bo.imgsz},
                      {"threads", bo.threads},
                      {"runs", bo.timing.runs},
                      {"definitions",
                       {{"p50_ms", "batch 1, letterbox + inference + NMS, median (linear interpolation)"},
                        {"speedup", "inference p50 of the first model / this model's"},
                        {"peak_rss_mb", isolate ? "VmHWM of the process that timed this model alone"
                                                : "VmHWM of the compare process so far"}}},
                      {"rows", jrows}};
  atomic_write(out / "compare.json", j.dump(2));
  log::info("results in {}", (out / "compare.json").string());
}

}  // namespace

Command compare_command() {
  Command c;
  c.name = "compare";
  c.summary = "fp32 vs PTQ vs QAT vs int8: mAP50, mAP50-95, latency, speed-up, size, memory in one table";
  c.declare = [](Schema& s) {
    s.text("data", "", "dataset.yaml of the data set");
    s.texts("weights", "", "model files to compare; the first is the baseline of the speed-up");
    s.texts("metrics", "",
            "metrics.json of `val` per model, in the order of weights, reused instead of validating again");
    s.text("split", "test", "split to evaluate", {"train", "val", "test"});
    s.integer("imgsz", 640, "network input side (validation: long side; latency: square)", 32, 8192);
    s.integer("batch", 16, "validation batch size (latency is measured at batch 1)", 1, 1024);
    s.integer("workers", 2, "loader threads", 0, 64);
    s.real("conf", 0.001, "validation confidence threshold", 0, 1);
    s.real("iou", 0.7, "NMS IoU threshold", 0, 1);
    s.integer("warmup", 5, "untimed runs before the timed ones", 0, 100000);
    s.integer("runs", 30, "timed runs (at most)", 1, 1000000);
    s.real("max_seconds", 0, "time budget of the timed runs per model (0 = none)", 0, 1e6);
    s.flag("isolate", true, "time each model in a process of its own (peak memory per model)");
    s.text("exe", "", "yoloqat executable that times each model (\"\" = this one)");
    add_device_key(s);
    add_inexact_key(s);
    add_output_keys(s, "compare");
    add_runtime_keys(s);
  };
  c.run = run_compare;
  return c;
}

}  // namespace yq::cli
