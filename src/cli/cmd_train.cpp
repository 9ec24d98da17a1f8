// yoloqat train data=... model=yolov8n epochs=...: fp32 training.
#include "cli/command.h"
#include "core/error.h"
#include "train/trainer.h"

namespace yq::cli {

Command train_command() {
  Command c;
  c.name = "train";
  c.summary = "fp32 training with EMA, warmup, mosaic; best/last checkpoints, results.csv, TensorBoard";
  c.declare = [](Schema& s) {
    train::declare_train_keys(s);
    add_device_key(s);
    add_output_keys(s, "train");
    add_runtime_keys(s);
  };
  c.run = [](const Config& cfg) {
    auto r = train::train(cfg);
    if (r.interrupted) throw Error("training interrupted (checkpoint saved: " + r.last.string() + ")");
  };
  return c;
}

}  // namespace yq::cli
