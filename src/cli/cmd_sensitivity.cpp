// yoloqat sensitivity data=... weights=FP32_or_PTQ.pt [qconfig=...] [metric=sqnr|map] [batches=N]
// [topk=5] [critical=float|int8] [split=val]: per-layer quantization sensitivity (quant/sensitivity.h).
//
// An fp32 checkpoint is prepared with qconfig= and calibrated on `batches` letterboxed batches of the
// split (as `calibrate` does); a PTQ / QAT checkpoint is used as it is, with its own qconfig. For every
// quantized layer the metric is measured with only that layer quantized and with all but that layer
// quantized. metric=sqnr: SQNR (dB) of the raw head outputs against the outputs with every quantizer
// off, on the calibration batches (cached; fast). metric=map: mAP50-95 on the whole split for every
// configuration (slow: 2 x layers + 2 validations). Writes <project>/reports/<name>/sensitivity.json,
// sensitivity_qconfig.yaml (the qconfig with the top-k layers kept float or at 8 bits) and args.yaml,
// and prints the ranked table.
#include <fmt/format.h>

#include <iostream>

#include "cli/command.h"
#include "core/error.h"
#include "core/log.h"
#include "data/dataset.h"
#include "data/loader.h"
#include "eval/validator.h"
#include "model/checkpoint.h"
#include "quant/calibrate.h"
#include "quant/prepare.h"
#include "quant/qcheckpoint.h"
#include "quant/sensitivity.h"

namespace yq::cli {

namespace {

// The first `batches` batches of `loader` (one epoch), images float 0..1.
std::vector<torch::Tensor> take_images(data::DataLoader& loader, int64_t batches) {
  std::vector<torch::Tensor> out;
  loader.start_epoch(0);
  data::Batch b;
  while (int64_t(out.size()) < batches && loader.next(b))
    out.push_back(b.images.to(torch::kFloat32).div_(255));
  return out;
}

void run_sensitivity(const Config& cfg) {
  YQ_CHECK_USAGE(!cfg.get_str("data").empty(), "key 'data' is required (a dataset.yaml)");
  YQ_CHECK_USAGE(!cfg.get_str("weights").empty(),
                 "key 'weights' is required (an fp32 checkpoint, or a PTQ / QAT one)");
  const std::string weights = cfg.get_str("weights");
  const std::string metric_name = cfg.get_str("metric");
  const std::string split = cfg.get_str("split");
  const auto how = quant::parse_critical(cfg.get_str("critical"));
  data::DatasetInfo info = data::load_dataset_yaml(cfg.get_str("data"));
  YQ_CHECK_USAGE(info.splits.count(split), "key 'split': {} has no split '{}'", info.yaml.string(), split);
  data::SplitIndex idx = data::scan_split(info, split);
  YQ_CHECK_USAGE(!idx.samples.empty(), "split '{}' of {} has no images", split, info.yaml.string());

  auto ck = model::load_checkpoint(weights, true);
  YQ_CHECK_USAGE(ck.model->nc() == info.nc, "{} has {} classes but {} has {}", weights, ck.model->nc(),
                 info.yaml.string(), info.nc);
  model::YoloV8 net = ck.model;
  net->eval();

  data::LoaderOptions lo;
  lo.imgsz = int(cfg.get_int("imgsz")), lo.batch = int(cfg.get_int("batch")),
  lo.workers = int(cfg.get_int("workers"));
  lo.augment = false, lo.shuffle = true, lo.seed = uint64_t(cfg.get_int("seed"));
  data::DataLoader loader(idx.samples, info.flip_map, lo);
  const int64_t batches = cfg.get_int("batches");

  quant::QConfigMapping mapping;
  std::string source;
  if (quant::is_quantized_meta(ck.meta)) {
    YQ_CHECK_USAGE(quant::is_prepared(*net), "{} says it is quantized (kind '{}') but holds no quantizers",
                   weights, ck.meta.value("kind", "?"));
    mapping = quant::checkpoint_qconfig(ck.meta, weights);
    check_checkpoint_qconfig(cfg, mapping, weights);
    source = ck.meta.value("kind", "quantized");
    log::info("analysing the {} checkpoint {} with its qconfig ({})", source, weights, mapping.name());
  } else {
    YQ_CHECK_USAGE(!quant::is_prepared(*net), "{} holds quantizers but its meta has no qconfig", weights);
    mapping = load_qconfig(cfg);
    auto rep = quant::prepare(*net, mapping);
    log::info("qconfig {} ({}): {}", mapping.origin(), mapping.name(), rep.summary());
    auto cr = quant::calibrate(*net, loader, batches);
    log::info("calibrated on {} images ({} batches of {}) in {:.1f} s", cr.images, cr.batches, split,
              cr.seconds);
    source = "fp32";
  }

  quant::SensitivityMetric metric;
  int64_t metric_images = 0;
  std::unique_ptr<data::DataLoader> val_loader;  // metric=map
  if (metric_name == "sqnr") {
    auto sq = std::make_shared<quant::OutputSqnr>(*net, take_images(loader, batches));
    metric_images = sq->images();
    metric = [sq](model::YoloV8Impl& m) { return (*sq)(m); };
    log::info("metric: SQNR of the raw head outputs on {} images of {}", metric_images, split);
  } else {
    data::LoaderOptions vo = lo;
    vo.shuffle = false, vo.rect = true;
    val_loader = std::make_unique<data::DataLoader>(idx.samples, info.flip_map, vo);
    metric_images = int64_t(idx.samples.size());
    const int nc = int(info.nc);
    data::DataLoader* vl = val_loader.get();
    metric = [vl, nc](model::YoloV8Impl& m) {
      eval::Detector det;
      det.forward = [&m](const torch::Tensor& x) { return m.forward(x); };
      eval::ValOptions vopt;
      vopt.progress = false;
      return eval::validate(det, *vl, nc, vopt).metrics.map();
    };
    log::info("metric: mAP50-95 on the {} images of {} (one validation per configuration: slow)",
              metric_images, split);
  }

  quant::SensitivityResult res = quant::analyze_sensitivity(*net, metric_name, metric);
  log::info("{} evaluations in {:.1f} s", res.evaluations, res.seconds);

  const fs::path run_dir = make_run_dir(cfg, "reports");
  cfg.save(run_dir / "args.yaml");
  nlohmann::json j = res.to_json();
  j["weights"] = weights;
  j["checkpoint_kind"] = source;
  j["data"] = info.yaml.string();
  j["split"] = split;
  j["images"] = metric_images;
  j["imgsz"] = lo.imgsz;
  j["qconfig"] = {{"origin", mapping.origin()}, {"name", mapping.name()}};
  if (metric_name == "sqnr")
    j["note"] =
        "SQNR in dB of the raw head outputs (DFL box logits and class logits, all levels) against "
        "the same model with every quantizer off; null = infinite (identical outputs)";
  else
    j["note"] = "mAP50-95 on the split; fp32 = the same model with every quantizer off";

  const size_t k = std::min<size_t>(size_t(cfg.get_int("topk")), res.layers.size());
  const auto critical = res.top(k);
  const quant::QConfigMapping out_q = quant::critical_qconfig(mapping, critical, how);
  // The written qconfig must load and fit this model's layers.
  out_q.validate(quant::quantizable_layers(*net));
  std::string list;
  for (const auto& c : critical) list += (list.empty() ? "" : ", ") + c;
  const std::string yaml = fmt::format(
      "# Written by `yoloqat sensitivity` from {} (metric {}, split {}): the qconfig {} with the {} most\n"
      "# sensitive layers kept {}: {}\n"
      "# Format: see configs/quantization.yaml.\n{}",
      weights, metric_name, split, mapping.origin().empty() ? mapping.name() : mapping.origin(), k,
      how == quant::CriticalPrecision::kFloat ? "float" : "at 8 bits", list, out_q.to_yaml());
  j["topk"] = critical;
  j["critical"] = cfg.get_str("critical");
  atomic_write(run_dir / "sensitivity.json", j.dump(2));
  atomic_write(run_dir / "sensitivity_qconfig.yaml", yaml);

  std::cout << res.table();
  log::info("sensitivity written to {}", (run_dir / "sensitivity.json").string());
  log::info("qconfig with the top {} layers kept {} written to {}", k, cfg.get_str("critical"),
            (run_dir / "sensitivity_qconfig.yaml").string());
}

}  // namespace

Command sensitivity_command() {
  Command c;
  c.name = "sensitivity";
  c.summary = "per-layer quantization sensitivity; writes a qconfig keeping the critical layers precise";
  c.declare = [](Schema& s) {
    s.text("data", "", "dataset.yaml of the data set");
    s.text("weights", "", "fp32 checkpoint (prepared with qconfig and calibrated here) or a PTQ / QAT one");
    s.text("qconfig", "quantization.yaml",
           "qconfig for an fp32 checkpoint (a PTQ / QAT checkpoint brings its own)");
    add_target_key(s);
    s.text("metric", "sqnr",
           "sqnr: SQNR (dB) of the raw head outputs vs fp32 on the calibration batches (fast); map: "
           "mAP50-95 on the whole split for each of the 2 x layers + 2 configurations (slow)",
           {"sqnr", "map"});
    s.text("split", "val", "split for calibration, the SQNR images and mAP");
    s.integer("batches", 4, "batches of the split for calibration and the SQNR metric", 1, 100000);
    s.integer("imgsz", 640, "image size (letterboxed, multiple of 32)", 32, 8192);
    s.integer("batch", 8, "images per batch", 1, 4096);
    s.integer("workers", 2, "loader threads", 0, 64);
    s.integer("seed", 0, "seed of the batch sample order", 0);
    s.integer("topk", 5, "critical layers (most sensitive first) kept in higher precision", 0, 100000);
    s.text("critical", "float",
           "how the top-k layers are kept: float, or int8 where the qconfig uses fewer bits",
           {"float", "int8"});
    add_device_key(s);
    add_output_keys(s, "sensitivity");
    add_runtime_keys(s);
  };
  c.run = run_sensitivity;
  return c;
}

}  // namespace yq::cli
