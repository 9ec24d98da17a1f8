// Optimizer construction and learning-rate / momentum schedules (SPEC-YOLOV8.md "Training defaults").
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>

#include "model/yolov8.h"

namespace yq::train {

struct OptimizerChoice {
  std::string name;  // "SGD" or "AdamW" (after resolving "auto")
  double lr0 = 0.01;
  double momentum = 0.937;
  double warmup_bias_lr = 0.1;
};

// optimizer=auto: SGD (lr 0.01, momentum 0.9) when ceil(n_images / max(batch, nbs)) * epochs > 10,000
// iterations, else AdamW with lr round(0.002 * 5 / (4 + nc), 6), momentum 0.9 and warmup_bias_lr 0.
OptimizerChoice resolve_optimizer(const std::string& name, double lr0, double momentum, double warmup_bias_lr,
                                  int64_t n_images, int64_t batch, int64_t nbs, int64_t epochs, int64_t nc);

// Three parameter groups in this order: 0 = biases (no decay), 1 = BatchNorm weights (no decay),
// 2 = other weights (decay `weight_decay`). Frozen parameters (requires_grad false) are left out.
std::unique_ptr<torch::optim::Optimizer> build_optimizer(model::YoloV8& m, const OptimizerChoice& c,
                                                         double weight_decay);

// lf(x): linear (1 - x / epochs) * (1 - lrf) + lrf, or cosine from 1 to lrf.
double lr_factor(double epoch, int64_t epochs, double lrf, bool cosine);

// Linear interpolation of y over x in [x0, x1] (clamped), as numpy.interp on two points.
double interp(double x, double x0, double x1, double y0, double y1);

// Group learning rate and momentum access for SGD and AdamW.
double group_lr(torch::optim::OptimizerParamGroup& g);
void set_group_lr(torch::optim::OptimizerParamGroup& g, double lr);
void set_group_momentum(torch::optim::OptimizerParamGroup& g, double momentum);

}  // namespace yq::train
