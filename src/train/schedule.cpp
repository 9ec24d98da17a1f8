#include "train/schedule.h"

#include <cmath>

#include "core/error.h"
#include "core/log.h"

namespace yq::train {

OptimizerChoice resolve_optimizer(const std::string& name, double lr0, double momentum, double warmup_bias_lr,
                                  int64_t n_images, int64_t batch, int64_t nbs, int64_t epochs, int64_t nc) {
  OptimizerChoice c{name, lr0, momentum, warmup_bias_lr};
  if (name == "auto") {
    int64_t iterations = (n_images + std::max(batch, nbs) - 1) / std::max(batch, nbs) * epochs;
    if (iterations > 10000) {
      c = {"SGD", 0.01, 0.9, warmup_bias_lr};
    } else {
      c = {"AdamW", std::round(0.002 * 5 / (4 + double(nc)) * 1e6) / 1e6, 0.9, 0.0};
    }
    log::info("optimizer=auto: {} iterations -> {} (lr0 {}, momentum {})", iterations, c.name, c.lr0,
              c.momentum);
  }
  YQ_CHECK_USAGE(c.name == "SGD" || c.name == "AdamW", "optimizer '{}' is not one of auto, SGD, AdamW",
                 c.name);
  return c;
}

std::unique_ptr<torch::optim::Optimizer> build_optimizer(model::YoloV8& m, const OptimizerChoice& c,
                                                         double weight_decay) {
  std::vector<torch::Tensor> bias, bn, weights;
  for (const auto& p : m->named_parameters(true)) {
    if (!p.value().requires_grad()) continue;
    const std::string& n = p.key();
    auto ends = [&](const std::string& s) {
      return n.size() >= s.size() && n.compare(n.size() - s.size(), s.size(), s) == 0;
    };
    if (ends(".bias"))
      bias.push_back(p.value());
    else if (ends("bn.weight"))
      bn.push_back(p.value());
    else
      weights.push_back(p.value());
  }
  std::vector<torch::optim::OptimizerParamGroup> groups;
  if (c.name == "SGD") {
    auto opts = [&](double wd) {
      return std::make_unique<torch::optim::SGDOptions>(
          torch::optim::SGDOptions(c.lr0).momentum(c.momentum).nesterov(true).weight_decay(wd));
    };
    groups.emplace_back(bias, opts(0));
    groups.emplace_back(bn, opts(0));
    groups.emplace_back(weights, opts(weight_decay));
    return std::make_unique<torch::optim::SGD>(
        groups, torch::optim::SGDOptions(c.lr0).momentum(c.momentum).nesterov(true));
  }
  auto opts = [&](double wd) {
    return std::make_unique<torch::optim::AdamWOptions>(
        torch::optim::AdamWOptions(c.lr0).betas({c.momentum, 0.999}).weight_decay(wd));
  };
  groups.emplace_back(bias, opts(0));
  groups.emplace_back(bn, opts(0));
  groups.emplace_back(weights, opts(weight_decay));
  return std::make_unique<torch::optim::AdamW>(groups,
                                               torch::optim::AdamWOptions(c.lr0).betas({c.momentum, 0.999}));
}

double lr_factor(double epoch, int64_t epochs, double lrf, bool cosine) {
  double x = epoch / double(std::max<int64_t>(epochs, 1));
  if (cosine) return ((1 - std::cos(x * M_PI)) / 2) * (lrf - 1) + 1;
  return (1 - x) * (1 - lrf) + lrf;
}

double interp(double x, double x0, double x1, double y0, double y1) {
  if (x <= x0) return y0;
  if (x >= x1) return y1;
  return y0 + (y1 - y0) * (x - x0) / (x1 - x0);
}

double group_lr(torch::optim::OptimizerParamGroup& g) {
  return g.options().get_lr();
}
void set_group_lr(torch::optim::OptimizerParamGroup& g, double lr) {
  g.options().set_lr(lr);
}

void set_group_momentum(torch::optim::OptimizerParamGroup& g, double momentum) {
  if (auto* sgd = dynamic_cast<torch::optim::SGDOptions*>(&g.options())) {
    sgd->momentum(momentum);
  } else if (auto* adamw = dynamic_cast<torch::optim::AdamWOptions*>(&g.options())) {
    adamw->betas({momentum, std::get<1>(adamw->betas())});
  }
}

}  // namespace yq::train
