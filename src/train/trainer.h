// fp32 training (`yoloqat train`): data, model, optimizer groups, warmup and LR schedule, gradient
// accumulation to the nominal batch, clipping, EMA, validation each epoch, best/last checkpoints,
// results.csv, TensorBoard scalars, resume and Ctrl-C handling (SPEC-YOLOV8.md "Training defaults").
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "core/config.h"
#include "core/fs.h"

namespace yq::model {
class YoloV8Impl;
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
};

TrainResult train(const Config& cfg, const TrainHooks& hooks = {});

// Ctrl-C: the first SIGINT asks the trainer to save a checkpoint and stop; a second one kills.
void install_interrupt_handler();
bool interrupt_requested();
void request_interrupt();
void clear_interrupt();

}  // namespace yq::train
