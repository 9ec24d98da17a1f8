// yoloqat qat data=... weights=FP32_or_PTQ.pt qconfig=... epochs=...: quantization-aware fine-tuning
// through the fp32 trainer (train/trainer.h) with the model prepared before the optimizer is built.
// From an fp32 checkpoint the quantizers start observing with fake quantization on; from a PTQ
// checkpoint they start from its calibrated ranges (and its qconfig). Observers freeze at epoch
// freeze_observer_epoch, BN statistics at freeze_bn_epoch (0-based; >= epochs = never). Checkpoints
// (kind "qat", with the qconfig) in models/checkpoints/qat/NAME, logs in logs/qat/NAME. configs/qat.yaml
// holds the QAT defaults of the train keys (SGD, small lr0, cosine decay, no warmup).
#include "cli/command.h"
#include "core/error.h"
#include "core/log.h"
#include "model/checkpoint.h"
#include "quant/prepare.h"
#include "quant/qcheckpoint.h"
#include "train/trainer.h"

namespace yq::cli {

namespace {

void run_qat(const Config& cfg) {
  YQ_CHECK_USAGE(!cfg.get_str("weights").empty(),
                 "key 'weights' is required (an fp32 checkpoint, or a PTQ one from `yoloqat calibrate`)");
  const std::string weights = cfg.get_str("weights");
  const auto meta = model::load_checkpoint(weights, false).meta;
  quant::QConfigMapping mapping;
  if (quant::is_quantized_meta(meta)) {
    mapping = quant::checkpoint_qconfig(meta, weights);
    if (cfg.is_set("qconfig")) {
      const auto asked = quant::QConfigMapping::load(cfg.get_str("qconfig"));
      YQ_CHECK_USAGE(asked.to_yaml() == mapping.to_yaml(),
                     "{} was quantized with another qconfig than qconfig={}; leave qconfig out to use "
                     "the checkpoint's, or start from the fp32 checkpoint",
                     weights, cfg.get_str("qconfig"));
    }
    log::info("QAT from the {} checkpoint {} (its qconfig)", meta.value("kind", "?"), weights);
  } else {
    mapping = quant::QConfigMapping::load(cfg.get_str("qconfig"));
    log::info("QAT from the fp32 checkpoint {} with qconfig {}", weights, mapping.origin());
  }
  const int64_t freeze_obs = cfg.get_int("freeze_observer_epoch");
  const int64_t freeze_bn = cfg.get_int("freeze_bn_epoch");

  train::TrainHooks hooks;
  hooks.kind = "qat";
  hooks.extra_meta = {{"qconfig", mapping.to_yaml()}, {"weights", weights}};
  hooks.prepare = [mapping](model::YoloV8Impl& m) {
    if (quant::is_prepared(m)) return;  // a PTQ checkpoint, or a resumed QAT run
    auto rep = quant::prepare(m, mapping);
    log::debug("prepared for QAT: {}", rep.summary());
  };
  hooks.epoch_start = [freeze_obs, freeze_bn](int epoch, model::YoloV8Impl& m) {
    if (epoch >= freeze_obs) quant::enable_observers(m, false);
    if (epoch >= freeze_bn) quant::freeze_bn(m, true);
    if (epoch == freeze_obs) log::info("epoch {}: quantizer observers frozen", epoch + 1);
    if (epoch == freeze_bn) log::info("epoch {}: BN statistics frozen", epoch + 1);
  };
  hooks.before_val = [](model::YoloV8Impl& m) { quant::enable_observers(m, false); };
  auto r = train::train(cfg, hooks);
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
    s.integer("freeze_observer_epoch", 4, "epoch (0-based) from which quantizer ranges are fixed", 0);
    s.integer("freeze_bn_epoch", 3, "epoch (0-based) from which BN uses its running statistics", 0);
    add_output_keys(s, "qat");
    add_runtime_keys(s);
  };
  c.run = run_qat;
  return c;
}

}  // namespace yq::cli
