// Exponential moving average of the model's weights (SPEC-YOLOV8.md "EMA"):
// d = decay * (1 - exp(-updates / tau)); every floating-point parameter and buffer becomes
// d * ema + (1 - d) * model after each optimizer step.
#pragma once

#include <torch/torch.h>

#include <functional>

#include "model/yolov8.h"

namespace yq::train {

class ModelEMA {
 public:
  // Builds the EMA as a copy of `model` (same spec and names, eval mode, no gradients).
  // `prepare`, when given, is applied to the fresh copy before the weights are copied (a model prepared
  // for quantization needs an EMA with the same quantizers).
  explicit ModelEMA(model::YoloV8& model, double decay = 0.9999, double tau = 2000, int64_t updates = 0,
                    const std::function<void(model::YoloV8Impl&)>& prepare = {});
  void update(model::YoloV8& model);
  double current_decay() const;
  model::YoloV8& model() { return ema_; }
  int64_t updates() const { return updates_; }
  void set_updates(int64_t u) { updates_ = u; }

 private:
  model::YoloV8 ema_{nullptr};
  double decay_, tau_;
  int64_t updates_;
};

}  // namespace yq::train
