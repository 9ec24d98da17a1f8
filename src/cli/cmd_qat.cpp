// yoloqat qat data=... weights=FP32_or_PTQ.pt qconfig=... epochs=...: quantization-aware fine-tuning
// through the fp32 trainer (train/trainer.h) with the model prepared before the optimizer is built.
// From an fp32 checkpoint the quantizers start observing with fake quantization on; from a PTQ
// checkpoint they start from its calibrated ranges (and its qconfig). Observers freeze at epoch
// freeze_observer_epoch, BN statistics at freeze_bn_epoch (0-based; >= epochs = never). Checkpoints
// (kind "qat", with the qconfig) in models/checkpoints/qat/NAME, logs in logs/qat/NAME. configs/qat.yaml
// holds the QAT defaults of the train keys (SGD, small lr0, cosine decay, no warmup).
// Progressive stages (`stages`, `stage_epochs`; quant/qat_stages.h) turn quantization on group by group;
// the observer freeze applies within them. Distillation (`distill` > 0, `distill_kind`, `teacher`;
// train/distill.h) adds a loss towards the fp32 teacher: by default the fp32 checkpoint QAT starts
// from, or for a PTQ start the fp32 checkpoint that calibrate quantized (its meta "weights").
// resume=true continues with the run's saved keys, these included.
#include <memory>
#include <optional>

#include "cli/command.h"
#include "core/error.h"
#include "core/log.h"
#include "model/checkpoint.h"
#include "quant/prepare.h"
#include "quant/qat_stages.h"
#include "quant/qcheckpoint.h"
#include "train/distill.h"
#include "train/trainer.h"

namespace yq::cli {

namespace {

// The fp32 teacher of a distillation run: `teacher=`, else the fp32 start, else the fp32 checkpoint
// that the PTQ start was calibrated from.
std::string teacher_path(const Config& cfg, const std::string& weights, const nlohmann::json& meta) {
  if (!cfg.get_str("teacher").empty()) return cfg.get_str("teacher");
  if (!quant::is_quantized_meta(meta)) return weights;
  YQ_CHECK_USAGE(
      meta.contains("weights") && meta["weights"].is_string() && !meta["weights"].get<std::string>().empty(),
      "distill: {} does not say which fp32 checkpoint it was quantized from; give teacher=FP32.pt", weights);
  return meta["weights"].get<std::string>();
}

void run_qat(const Config& cfg_in) {
  // The keys of this command (not only the trainer's) continue as saved when resuming.
  const Config cfg = train::resume_config(cfg_in, "qat");
  YQ_CHECK_USAGE(!cfg.get_str("weights").empty(),
                 "key 'weights' is required (an fp32 checkpoint, or a PTQ one from `yoloqat calibrate`)");
  const std::string weights = cfg.get_str("weights");
  const auto meta = model::load_checkpoint(weights, false).meta;
  quant::QConfigMapping mapping;
  if (quant::is_quantized_meta(meta)) {
    mapping = quant::checkpoint_qconfig(meta, weights);
    check_checkpoint_qconfig(cfg, mapping, weights);
    log::info("QAT from the {} checkpoint {} (its qconfig)", meta.value("kind", "?"), weights);
  } else {
    mapping = load_qconfig(cfg);
    log::info("QAT from the fp32 checkpoint {} with qconfig {}", weights, mapping.origin());
  }
  const int64_t freeze_bn = cfg.get_int("freeze_bn_epoch");
  quant::QatScheduleOptions so;
  so.stages = cfg.get_strs("stages");
  so.stage_epochs = cfg.get_int("stage_epochs");
  so.freeze_observer_epoch = cfg.get_int("freeze_observer_epoch");
  so.observe = !quant::is_quantized_meta(meta);  // a PTQ start keeps its calibrated ranges
  auto schedule = std::make_shared<std::optional<quant::QatSchedule>>();

  train::TrainHooks hooks;
  hooks.kind = "qat";
  hooks.extra_meta = {{"qconfig", mapping.to_yaml()}, {"weights", weights}};
  hooks.prepare = [mapping, schedule, so](model::YoloV8Impl& m) {
    if (!schedule->has_value()) {
      schedule->emplace(m, so);
      if (so.stages.size() > 1) log::info("QAT stages: {}", (*schedule)->describe());
    }
    if (quant::is_prepared(m)) return;  // a PTQ checkpoint, or a resumed QAT run
    auto rep = quant::prepare(m, mapping);
    log::debug("prepared for QAT: {}", rep.summary());
  };
  hooks.epoch_start = [schedule, so, freeze_bn](int epoch, model::YoloV8Impl& m) {
    YQ_ASSERT(schedule->has_value());
    (*schedule)->apply(m, epoch);
    if (epoch >= freeze_bn) quant::freeze_bn(m, true);
    if (so.observe && epoch == so.freeze_observer_epoch)
      log::info("epoch {}: quantizer observers frozen", epoch + 1);
    if (epoch == freeze_bn) log::info("epoch {}: BN statistics frozen", epoch + 1);
  };
  hooks.before_val = [](model::YoloV8Impl& m) { quant::enable_observers(m, false); };
  if (cfg.get_float("distill") > 0) {
    const std::string tp = teacher_path(cfg, weights, meta);
    auto tck = model::load_checkpoint(tp, true);
    YQ_CHECK_USAGE(!quant::is_quantized_meta(tck.meta),
                   "teacher={} is a quantized ({}) checkpoint; the teacher must be an fp32 one", tp,
                   tck.meta.value("kind", "?"));
    train::DistillOptions dopt;
    dopt.kind = cfg.get_str("distill_kind");
    dopt.weight = cfg.get_float("distill");
    dopt.temperature = cfg.get_float("distill_temperature");
    auto distiller = std::make_shared<train::Distiller>(tck.model, dopt);
    log::info("distillation ({}, weight {}) from the fp32 teacher {}", dopt.kind, dopt.weight, tp);
    hooks.extra_loss = [distiller](const torch::Tensor& x, const std::vector<torch::Tensor>& raw,
                                   const std::vector<torch::Tensor>& neck) {
      return (*distiller)(x, raw, neck);
    };
    hooks.extra_loss_name = "distill";
    hooks.extra_meta["teacher"] = tp;
  }
  auto r = train::train(cfg_in, hooks);
  if (r.interrupted) throw Error("QAT interrupted (checkpoint saved: " + r.last.string() + ")");
}

}  // namespace

Command qat_command() {
  Command c;
  c.name = "qat";
  c.summary = "quantization-aware fine-tuning from an fp32 or PTQ checkpoint";
  c.config = "qat.yaml";
  c.declare = [](Schema& s) {
    train::declare_train_keys(s);
    s.text("qconfig", "quantization.yaml", "qconfig YAML file (a PTQ checkpoint brings its own)");
    add_target_key(s);
    s.integer("freeze_observer_epoch", 4, "epoch (0-based) from which quantizer ranges are fixed", 0);
    s.integer("freeze_bn_epoch", 3, "epoch (0-based) from which BN uses its running statistics", 0);
    s.texts("stages", "",
            "progressive quantization: groups (backbone, neck, head) or layer globs, '+' joins; empty = all "
            "at once");
    s.integer("stage_epochs", 1, "epochs per stage: stage k quantizes from epoch k * stage_epochs", 1);
    s.real("distill", 0.0, "weight of the distillation loss from the fp32 teacher (0 = off)", 0, 1e6);
    s.text("distill_kind", "output", "distill the raw head outputs or the neck features (P3-P5)",
           {"output", "feature"});
    s.real("distill_temperature", 1.0, "temperature of output distillation", 1e-3, 100);
    s.text("teacher", "",
           "fp32 teacher checkpoint (default: the fp32 weights QAT starts from, or the PTQ start's source)");
    add_device_key(s);
    add_output_keys(s, "qat");
    add_runtime_keys(s);
  };
  c.run = run_qat;
  return c;
}

}  // namespace yq::cli
