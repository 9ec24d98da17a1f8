// yoloqat calibrate data=... weights=FP32.pt qconfig=... batches=N: post-training quantization.
// Prepares a copy of the fp32 model with the qconfig, runs N letterboxed (unaugmented) batches of the
// train split with observers on and fake quantization off, freezes the quantizers and writes
// models/checkpoints/ptq/NAME/ptq.pt (+ args.yaml); then validates fp32 and PTQ (fake-quant) on the val
// split and writes metrics.json there.
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

namespace yq::cli {

namespace {

void run_calibrate(const Config& cfg) {
  YQ_CHECK_USAGE(!cfg.get_str("data").empty(), "key 'data' is required (a dataset.yaml)");
  YQ_CHECK_USAGE(!cfg.get_str("weights").empty(), "key 'weights' is required (an fp32 checkpoint)");
  const std::string weights = cfg.get_str("weights");
  data::DatasetInfo info = data::load_dataset_yaml(cfg.get_str("data"));
  data::SplitIndex train_idx = data::scan_split(info, "train");
  auto ck = model::load_checkpoint(weights, true);
  YQ_CHECK_USAGE(!quant::is_quantized_meta(ck.meta),
                 "{} is already quantized (kind '{}'); calibrate takes an fp32 checkpoint", weights,
                 ck.meta.value("kind", "?"));
  YQ_CHECK_USAGE(ck.model->nc() == info.nc, "{} has {} classes but {} has {}", weights, ck.model->nc(),
                 info.yaml.string(), info.nc);
  const quant::QConfigMapping mapping = load_qconfig(cfg);

  model::YoloV8 fp32 = ck.model;
  fp32->eval();
  model::YoloV8 ptq = model::copy_model(*fp32);
  auto rep = quant::prepare(*ptq, mapping);
  log::info("qconfig {} ({}): {}", mapping.origin(), mapping.name(), rep.summary());

  data::LoaderOptions lo;
  lo.imgsz = int(cfg.get_int("imgsz")), lo.batch = int(cfg.get_int("batch")),
  lo.workers = int(cfg.get_int("workers"));
  lo.augment = false, lo.shuffle = true, lo.seed = uint64_t(cfg.get_int("seed"));
  data::DataLoader loader(train_idx.samples, info.flip_map, lo);
  auto cr = quant::calibrate(*ptq, loader, cfg.get_int("batches"));
  log::info("calibrated on {} images ({} batches) in {:.1f} s", cr.images, cr.batches, cr.seconds);

  const fs::path run_dir = make_run_dir(cfg, "models/checkpoints/ptq");
  cfg.save(run_dir / "args.yaml");
  nlohmann::json meta;
  meta["run_name"] = run_dir.filename().string();
  meta["weights"] = weights;
  meta["data"] = info.yaml.string();
  meta["calibration"] = {{"batches", cr.batches}, {"images", cr.images}, {"imgsz", lo.imgsz}};
  meta["train_args"] = cfg.to_yaml();
  const fs::path out = run_dir / "ptq.pt";
  quant::save_quantized_checkpoint(out, ptq, nullptr, nullptr, meta, mapping, "ptq");
  log::info("PTQ checkpoint written to {}", out.string());

  if (!cfg.get_bool("val") || !info.splits.count("val")) return;
  data::SplitIndex val_idx = data::scan_split(info, "val");
  if (val_idx.samples.empty()) return;
  data::LoaderOptions vo = lo;
  vo.shuffle = false, vo.rect = true;
  data::DataLoader val_loader(val_idx.samples, info.flip_map, vo);
  nlohmann::json j;
  std::string table = fmt::format("{:<8} {:>8} {:>10}\n", "model", "mAP50", "mAP50-95");
  for (auto& [label, m] : {std::pair<std::string, model::YoloV8>{"fp32", fp32}, {"ptq", ptq}}) {
    eval::Detector det;
    model::YoloV8 net = m;
    det.forward = [net](const torch::Tensor& x) mutable { return net->forward(x); };
    auto vr = eval::validate(det, val_loader, int(info.nc), eval::ValOptions{});
    j[label] = vr.metrics.to_json(info.names);
    table += fmt::format("{:<8} {:>8.4f} {:>10.4f}\n", label, vr.metrics.map50(), vr.metrics.map());
  }
  std::cout << table;
  atomic_write(run_dir / "metrics.json", j.dump(2));
}

}  // namespace

Command calibrate_command() {
  Command c;
  c.name = "calibrate";
  c.summary = "PTQ: observers over N batches of the train split, writes a quantized checkpoint";
  c.declare = [](Schema& s) {
    s.text("data", "", "dataset.yaml of the data set");
    s.text("weights", "", "fp32 checkpoint to quantize");
    add_model_weights_key(s);
    s.text("qconfig", "quantization.yaml", "qconfig YAML file (or a built-in one: experiments/exp1_...)");
    s.integer("batches", 32, "calibration batches of the train split", 1, 100000);
    s.integer("imgsz", 640, "calibration image size (letterboxed, multiple of 32)", 32, 8192);
    s.integer("batch", 16, "images per batch", 1, 4096);
    s.integer("workers", 2, "loader threads", 0, 64);
    s.integer("seed", 0, "seed of the calibration sample order", 0);
    add_target_key(s);
    s.flag("val", true, "validate fp32 and PTQ on the val split afterwards");
    add_device_key(s);
    add_output_keys(s, "ptq");
    add_runtime_keys(s);
  };
  c.run = run_calibrate;
  return c;
}

}  // namespace yq::cli
