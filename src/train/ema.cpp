#include "train/ema.h"

#include <cmath>

#include "model/checkpoint.h"

namespace yq::train {

ModelEMA::ModelEMA(model::YoloV8& model, double decay, double tau, int64_t updates,
                   const std::function<void(model::YoloV8Impl&)>& prepare)
    : decay_(decay), tau_(tau), updates_(updates) {
  ema_ = model::YoloV8(model->spec());
  ema_->set_names(model->names());
  if (prepare) prepare(*ema_);
  model::copy_state(model, ema_);
  ema_->eval();
  for (auto& p : ema_->parameters()) p.set_requires_grad(false);
}

double ModelEMA::current_decay() const {
  return decay_ * (1 - std::exp(-double(updates_) / tau_));
}

void ModelEMA::update(model::YoloV8& model) {
  torch::NoGradGuard ng;
  ++updates_;
  const double d = current_decay();
  auto src = model::named_state(*model);
  auto dst = model::named_state(*ema_);
  for (size_t i = 0; i < src.size(); ++i) {
    auto& e = dst[i].second;
    if (!e.is_floating_point()) {
      e.copy_(src[i].second);  // counters such as num_batches_tracked follow the model
      continue;
    }
    e.mul_(d).add_(src[i].second.detach(), 1 - d);
  }
}

}  // namespace yq::train
