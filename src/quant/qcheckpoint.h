// Checkpoints of quantized (prepared) models. They are ordinary yoloqat checkpoints
// (model/checkpoint.h) whose meta also holds
//   "kind":    "ptq" (calibrated) or "qat" (quantization-aware trained),
//   "qconfig": the QConfigMapping as YAML (QConfigMapping::to_yaml),
// and whose state includes every quantizer's buffers ("model.0.act_fq.scale", "input_fq.scale", ...).
// model::load_checkpoint rebuilds, prepares with the stored qconfig, then loads, so `val` and `train`
// read them transparently.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "core/fs.h"
#include "model/checkpoint.h"
#include "quant/qconfig.h"

namespace yq::quant {

// True for the meta of a quantized checkpoint.
bool is_quantized_meta(const nlohmann::json& meta);

// Saves a prepared model (and EMA / optimizer when given) with kind ("ptq" | "qat") and the qconfig.
// Quantizer qparams are brought up to date first.
void save_quantized_checkpoint(const fs::path& path, model::YoloV8& model, model::YoloV8* ema,
                               torch::optim::Optimizer* optimizer, nlohmann::json meta,
                               const QConfigMapping& qconfig, const std::string& kind);

// Loads a checkpoint that must be quantized: a float one is a UsageError that says so.
model::Checkpoint load_quantized_checkpoint(const fs::path& path, bool prefer_ema = true);

// The qconfig stored in a quantized checkpoint's meta.
QConfigMapping checkpoint_qconfig(const nlohmann::json& meta, const std::string& origin);

// Throws UsageError unless `a` and `b` describe the same architecture (layer table, multiples) and
// number of classes; `what_a` / `what_b` name them in the message.
void check_same_model(const model::ModelSpec& a, const std::string& what_a, const model::ModelSpec& b,
                      const std::string& what_b);

}  // namespace yq::quant
