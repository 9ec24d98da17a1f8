// One loader for every model file a user can run inference with: a yoloqat checkpoint (fp32, or a PTQ /
// QAT checkpoint evaluated with fake quantization), a reference YOLOv8 .pt, a YOLOv8 .onnx (read back
// into our model), and (deploy/int8_model.h) a converted int8 model. val, predict, benchmark and compare
// take any of them through load_inference_model.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/cpu.h"
#include "core/fs.h"
#include "eval/validator.h"

namespace yq::deploy {

struct InferenceModel {
  std::string kind;  // "fp32", "ptq", "qat" (fake quantization) or "int8"
  fs::path file;
  int64_t file_bytes = 0;
  int64_t nc = 0;
  std::vector<std::string> names;
  int64_t max_stride = 32;  // input sides must be multiples of it
  nlohmann::json meta;      // the file's own header (checkpoint meta, int8 model meta)
  // forward: images [B, 3, H, W] float 0..1 -> [B, 4 + nc, A] (cx, cy, w, h pixels, then scores).
  // Gradients are off inside. The detector keeps the model alive.
  eval::Detector detector;
  std::shared_ptr<void> holder;  // the model object behind `detector`
};

struct LoadOptions {
  // An int8 model that is not exact on this CPU (quant/target.h: its target needs VNNI and oneDNN has
  // none here) is refused with a UsageError naming the CPU feature and the target; true runs it anyway
  // (with a warning).
  bool allow_inexact = false;
};

// Reads `path` and readies it for inference (eval mode, observers off for quantized checkpoints).
// Errors name the file and say what kind of file was expected.
InferenceModel load_inference_model(const fs::path& path, const LoadOptions& options = {});

// Checks an int8 model with pair bound `bound` (quant/target.h) run by `engine` on `cpu`: returns quietly
// when it is exact, warns when not and `allow_inexact`, else throws UsageError (quant::inexact_message).
void check_exact(const std::string& file, const std::string& target, int64_t bound, const std::string& engine,
                 const CpuFeatures& cpu, bool allow_inexact);

}  // namespace yq::deploy
