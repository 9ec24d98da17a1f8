// yoloqat analyze data=... weights=QUANT.pt [fp32=FP32.pt] [images=N] [qat_run=...]: layer-wise
// quantization error (SQNR, MSE, cosine; this layer alone and accumulated), weight and activation
// histograms with the clipping ranges, and the accuracy drift of a QAT run (eval/analyze.h). Writes
// analyze.json and SVG charts to <project>/reports/<name>/.
#include <fmt/format.h>

#include <iostream>

#include "cli/command.h"
#include "core/error.h"
#include "core/log.h"
#include "data/dataset.h"
#include "data/loader.h"
#include "eval/analyze.h"
#include "model/checkpoint.h"
#include "quant/prepare.h"
#include "quant/qcheckpoint.h"

namespace yq::cli {

namespace {

// results.csv of the QAT run: qat_run= (a results.csv or a run folder), else logs/qat/<run of weights>.
fs::path find_qat_results(const Config& cfg, const fs::path& weights) {
  fs::path p = cfg.get_str("qat_run");
  if (p.empty()) p = fs::path(cfg.get_str("project")) / "logs/qat" / weights.parent_path().filename();
  if (fs::is_directory(p)) p /= "results.csv";
  return p;
}

void run_analyze(const Config& cfg) {
  YQ_CHECK_USAGE(!cfg.get_str("data").empty(), "key 'data' is required (a dataset.yaml)");
  YQ_CHECK_USAGE(!cfg.get_str("weights").empty(), "key 'weights' is required (a quantized checkpoint)");
  const fs::path weights = cfg.get_str("weights");
  data::DatasetInfo info = data::load_dataset_yaml(cfg.get_str("data"));
  const std::string split = cfg.get_str("split");
  YQ_CHECK_USAGE(info.splits.count(split), "{} has no split '{}' (key 'split')", info.yaml.string(), split);
  auto ck = model::load_checkpoint(weights, true);
  YQ_CHECK_USAGE(quant::is_prepared(*ck.model),
                 "{} is not a quantized checkpoint (key 'weights'); analyze compares a calibrate or qat "
                 "checkpoint with float",
                 weights.string());
  model::YoloV8 q = ck.model;
  model::YoloV8 ref{nullptr};
  if (!cfg.get_str("fp32").empty()) {
    // The quantized checkpoint again (same quantizers), carrying the fp32 checkpoint's tensors.
    auto f = model::load_checkpoint(cfg.get_str("fp32"), true);
    YQ_CHECK_USAGE(!quant::is_prepared(*f.model), "{} (key 'fp32') is quantized; give the fp32 checkpoint",
                   cfg.get_str("fp32"));
    ref = model::load_checkpoint(weights, true).model;
    const auto state = model::named_state(*f.model);
    const int64_t n = model::load_named_state(*ref, state, /*strict=*/false, cfg.get_str("fp32"));
    YQ_CHECK_USAGE(n == int64_t(state.size()), "{} (key 'fp32') does not match the architecture of {}",
                   cfg.get_str("fp32"), weights.string());
  }

  eval::AnalyzeOptions ao;
  ao.bins = int(cfg.get_int("bins"));
  ao.alone = cfg.get_bool("alone");
  eval::QuantAnalyzer analyzer(q, ref, ao);
  data::SplitIndex idx = data::scan_split(info, split);
  const int64_t n_images = std::min<int64_t>(cfg.get_int("images"), int64_t(idx.samples.size()));
  YQ_CHECK_USAGE(n_images > 0, "split '{}' of {} has no images", split, info.yaml.string());
  idx.samples.resize(size_t(n_images));
  data::LoaderOptions lo;
  lo.imgsz = int(cfg.get_int("imgsz")), lo.batch = int(cfg.get_int("batch")), lo.workers = 0;
  lo.augment = false, lo.shuffle = false;
  data::DataLoader loader(idx.samples, info.flip_map, lo);
  data::Batch b;
  loader.start_epoch(0);
  while (loader.next(b)) analyzer.add_batch(b.images);
  eval::AnalyzeResult r = analyzer.finish();

  const fs::path qat_csv = find_qat_results(cfg, weights);
  if (fs::exists(qat_csv)) {
    fs::path base = cfg.get_str("fp32_run");
    if (base.empty())
      base = fs::path(cfg.get_str("project")) / "logs/fp32" / qat_csv.parent_path().filename();
    if (fs::is_directory(base))
      base = fs::exists(base / "metrics.json") ? base / "metrics.json" : base / "results.csv";
    if (fs::exists(base))
      r.drift = eval::read_accuracy_drift(qat_csv, base);
    else
      log::warn("no fp32 baseline for the accuracy drift ({} missing; key fp32_run)", base.string());
  } else if (!cfg.get_str("qat_run").empty()) {
    throw UsageError(fmt::format("{} (key 'qat_run') does not exist", qat_csv.string()));
  } else {
    log::info("accuracy drift: no QAT run at {} (key qat_run)", qat_csv.string());
  }

  const fs::path out = make_run_dir(cfg, "reports");
  cfg.save(out / "args.yaml");
  auto files = eval::write_analysis(r, out, int(cfg.get_int("worst")));
  std::cout << fmt::format("{:<28}{:<8}{:>12}{:>14}{:>10}\n", "layer (worst 10)", "kind", "alone dB",
                           "accumulated dB", "cosine");
  for (const auto* l : eval::worst_layers(r, 10))
    std::cout << fmt::format("{:<28}{:<8}{:>12.2f}{:>14.2f}{:>10.5f}\n", l->name, l->kind,
                             l->alone ? l->alone->sqnr_db : NAN, l->accumulated->sqnr_db,
                             l->accumulated->cosine);
  log::info("analyzed {} layers on {} images in {:.1f} s; {} files written to {}", r.layers.size(), r.images,
            r.seconds, files.size(), out.string());
}

}  // namespace

Command analyze_command() {
  Command c;
  c.name = "analyze";
  c.summary = "layer-wise quantization error (SQNR, MSE, cosine), weight/activation histograms, QAT drift";
  c.declare = [](Schema& s) {
    s.text("data", "", "dataset.yaml of the data set");
    s.text("weights", "", "quantized checkpoint (calibrate or qat)");
    s.text("fp32", "",
           "fp32 checkpoint: accumulated errors against it (default: the quantized model, float)");
    s.text("split", "val", "split whose first images are used");
    s.integer("images", 16, "images to analyze", 1, 100000);
    s.integer("imgsz", 640, "image size (letterboxed, multiple of 32)", 32, 8192);
    s.integer("batch", 4, "images per forward pass", 1, 1024);
    s.integer("bins", 64, "histogram bins", 4, 4096);
    s.integer("worst", 6, "histogram plots for this many worst layers", 0, 10000);
    s.flag("alone", true, "measure each layer alone (one forward per layer and batch)");
    s.text("qat_run", "", "results.csv or run folder of the QAT run (default logs/qat/<run of weights>)");
    s.text("fp32_run", "",
           "fp32 baseline: metrics.json, results.csv or run folder (default logs/fp32/<same run>)");
    add_device_key(s);
    add_output_keys(s, "analyze");
    add_runtime_keys(s);
  };
  c.run = run_analyze;
  return c;
}

}  // namespace yq::cli
