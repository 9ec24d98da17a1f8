// fp32 training (`yoloqat train`): data, model, optimizer groups, warmup and LR schedule, gradient
// accumulation to the nominal batch, clipping, EMA, validation each epoch, best/last checkpoints,
// results.csv, TensorBoard scalars, resume and Ctrl-C handling (SPEC-YOLOV8.md "Training defaults").
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/fs.h"

namespace yq::model {
class YoloV8Impl;
}

namespace at {
class Tensor;
}

namespace yq::train {

// Declares the keys of `yoloqat train`.
void declare_train_keys(Schema& s);

struct TrainResult {
  fs::path run_dir;  // models/checkpoints/fp32/NAME
  fs::path log_dir;  // logs/fp32/NAME
  fs::path last, best;
  int epochs_done = 0;
  double best_fitness = 0;
  double seconds_per_epoch = 0;
  nlohmann::json final_metrics;  // validation of best.pt at the end
  bool interrupted = false;
};

// Observers of the training loop (tests use them to interrupt at a known point).
struct TrainHooks {
  std::function<void(int epoch, int64_t batch, model::YoloV8Impl& model)> after_batch;

  // Quantization-aware training (`yoloqat qat`, quant/qat.h); fp32 training leaves these as they are.
  // Output folders models/checkpoints/<kind>/NAME and logs/<kind>/NAME, and the checkpoints' meta "kind".
  std::string kind = "fp32";
  // Called on the model once its weights are loaded, before the optimizer is built, and on the EMA
  // model before the weights are copied into it.
  std::function<void(model::YoloV8Impl& model)> prepare;
  // Called on the model at the start of every epoch (observer / BN freezing).
  std::function<void(int epoch, model::YoloV8Impl& model)> epoch_start;
  // Called on a model just before it is validated (quantized models: observers off).
  std::function<void(model::YoloV8Impl& model)> before_val;
  // Merged into every checkpoint's meta (a QAT run's "qconfig").
  nlohmann::json extra_meta = nlohmann::json::object();
  // An extra loss term (QAT distillation, train/distill.h), called every batch with the images the
  // model saw ([B, 3, H, W] float 0..1), its raw head outputs (per level [B, 64 + nc, H_i, W_i]) and
  // the tensors its Detect read (P3, P4, P5). Returns a scalar on the model's graph in the scale of the
  // detection loss items (per image, gain-weighted): the trainer adds it times the batch size to the
  // total, like the box / cls / dfl items, and logs its epoch mean as results.csv column and
  // TensorBoard scalar "train/<extra_loss_name>_loss".
  std::function<at::Tensor(const at::Tensor& images, const std::vector<at::Tensor>& raw,
                           const std::vector<at::Tensor>& detect_inputs)>
      extra_loss;
  std::string extra_loss_name = "extra";
};

TrainResult train(const Config& cfg, const TrainHooks& hooks = {});

// The configuration a run continues with: when `resume` is set (true = the run `name` of this kind, or a
// last.pt path), the saved train_args of that checkpoint with this invocation's threads / workers, and
// `*from` (when given) set to the checkpoint; otherwise `cfg` unchanged. Throws UsageError when there
// is nothing to resume. Commands with keys of their own (qat) call it to read those keys.
Config resume_config(const Config& cfg, const std::string& kind, fs::path* from = nullptr);

// Ctrl-C: the first SIGINT asks the trainer to save a checkpoint and stop; a second one kills.
void install_interrupt_handler();
bool interrupt_requested();
void request_interrupt();
void clear_interrupt();

}  // namespace yq::train
