// yoloqat checkpoints: the model's state (and optionally the EMA and optimizer state) with a JSON
// header that says how to rebuild the model (ModelSpec), the class names, the training progress and
// the resolved configuration. Written atomically (temporary file + rename).
#pragma once

#include <torch/torch.h>

#include <nlohmann/json.hpp>
#include <string>

#include "core/fs.h"
#include "model/yolov8.h"

namespace yq::model {

constexpr const char* kCheckpointFormat = "yoloqat-checkpoint";
constexpr int kCheckpointVersion = 1;

nlohmann::json spec_to_json(const ModelSpec& s);
ModelSpec spec_from_json(const nlohmann::json& j);

// Writes `model` (and `ema`, `optimizer` when given) with `meta` (any JSON object; "format",
// "version", "spec" and "names" are filled in here).
void save_checkpoint(const fs::path& path, YoloV8& model, YoloV8* ema, torch::optim::Optimizer* optimizer,
                     nlohmann::json meta);

struct Checkpoint {
  YoloV8 model{nullptr};  // the EMA weights when the file has them and prefer_ema, else the raw ones
  YoloV8 raw{nullptr};    // the raw (non-EMA) weights (== model when there is no EMA)
  nlohmann::json meta;
  bool has_ema = false;
  bool has_optimizer = false;
};

// True for a reference (Python) YOLOv8 checkpoint: a torch.save zip archive with <dir>/data.pkl.
bool is_reference_checkpoint(const fs::path& path);

// Reads a checkpoint and rebuilds its model(s): a yoloqat checkpoint, a YOLOv8 ONNX export (.onnx),
// or a reference YOLOv8 .pt
// (read by the safe pickle reader; `model`/`ema` modules mapped onto our layers, never executed).
// Errors name the file and what does not match.
// A quantized checkpoint (meta "qconfig", quant/qcheckpoint.h) comes back prepared with its qconfig and
// its quantizers' state, so it evaluates with fake quantization.
// `strict` (default) refuses a file whose tensors do not all match the model; false loads what
// matches and logs the rest.
Checkpoint load_checkpoint(const fs::path& path, bool prefer_ema = true, bool strict = true);

// An explicit model= (a model config: yolov8s, a yaml) next to weights whose architecture differs is a
// UsageError naming both (the first parameter that differs): the weights define the model, and a
// model= that says otherwise would be silently ignored. `have` is the loaded model (quantizers
// attached or not); the config is built with its class count, so nc never counts as a difference.
void check_model_matches(const std::string& model_key, YoloV8Impl& have, const std::string& weights);

// Restores optimizer state saved by save_checkpoint (same parameter groups).
void load_optimizer_state(const fs::path& path, torch::optim::Optimizer& optimizer);

// Copies every parameter and buffer of `src` into `dst` (same architecture).
void copy_state(YoloV8& src, YoloV8& dst);

// Named parameters and buffers in one map (what a checkpoint stores).
std::vector<std::pair<std::string, torch::Tensor>> named_state(torch::nn::Module& m);

// Loads named tensors into `m`. Missing or mismatching names are collected; when `strict`, any of them
// is an error naming them (the first few), else they are logged and skipped. Returns tensors loaded.
int64_t load_named_state(torch::nn::Module& m,
                         const std::vector<std::pair<std::string, torch::Tensor>>& state, bool strict,
                         const std::string& origin);

}  // namespace yq::model
