#include "quant/fusion.h"

#include "core/error.h"
#include "model/yolov8.h"

namespace yq::quant {

FusedConv fold_conv_bn(const torch::Tensor& weight, const torch::Tensor& conv_bias,
                       const torch::nn::BatchNorm2dImpl& bn) {
  YQ_ASSERT(weight.dim() == 4 && weight.size(0) == bn.running_mean.size(0));
  const double eps = bn.options.eps();
  auto g = bn.weight / torch::sqrt(bn.running_var + eps);  // [c2]
  FusedConv f;
  f.weight = weight * g.view({-1, 1, 1, 1});
  auto c = conv_bias.defined() ? conv_bias - bn.running_mean : -bn.running_mean;
  f.bias = bn.bias + c * g;
  return f;
}

std::vector<std::pair<std::string, FusedConv>> fused_convs(model::YoloV8Impl& model) {
  torch::NoGradGuard no_grad;
  std::vector<std::pair<std::string, FusedConv>> out;
  for (const auto& item : model.named_modules("", /*include_self=*/false)) {
    if (auto* m = item.value()->as<model::ConvBnActImpl>()) {
      FusedConv f = fold_conv_bn(m->conv->weight, {}, *m->bn);
      f.weight = f.weight.detach().clone();
      f.bias = f.bias.detach().clone();
      f.stride = m->options().s();
      f.padding = m->options().k() / 2;
      out.emplace_back(item.key(), std::move(f));
    }
  }
  // The head's final convs, after their branch's ConvBnActs in the listing above.
  auto det = model.detect();
  const std::string prefix = "model." + std::to_string(model.layers().size() - 1);
  for (const char* branch : {"cv2", "cv3"}) {
    auto& list = std::string(branch) == "cv2" ? det->cv2 : det->cv3;
    for (size_t i = 0; i < list->size(); ++i) {
      auto* c = list->ptr(i)->as<torch::nn::SequentialImpl>()->ptr(2)->as<torch::nn::Conv2dImpl>();
      FusedConv f;
      f.weight = c->weight.detach().clone();
      f.bias = c->bias.detach().clone();
      f.padding = c->weight.size(2) / 2;
      f.silu = false;
      out.emplace_back(fmt::format("{}.{}.{}.2", prefix, branch, i), std::move(f));
    }
  }
  return out;
}

void set_fused(model::YoloV8Impl& model, bool fused) {
  for (const auto& m : model.modules(/*include_self=*/false)) {
    if (auto* c = m->as<model::ConvBnActImpl>()) {
      YQ_CHECK(c->mode != model::ConvMode::kQat,
               "set_fused: the model is prepared for quantization (its eval forward already folds BN)");
      c->mode = fused ? model::ConvMode::kFused : model::ConvMode::kFloat;
    }
  }
}

}  // namespace yq::quant
