#include "quant/qat_modules.h"

#include "quant/fused_act.h"
#include "quant/fused_fake_quant.h"
#include "quant/fusion.h"

namespace yq::quant {

namespace {

torch::Tensor conv2d(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b, int64_t stride) {
  const int64_t pad = w.size(2) / 2;
  return torch::conv2d(x, w, b, {stride, stride}, {pad, pad});
}

// The folded conv of fused (inference) mode. Without gradients a CPU float conv goes to oneDNN directly:
// LibTorch's conv2d sends 3x3 convs on small batch-1 inputs (under 20480 input values: the deep layers
// at 320) to its unvectorized im2col path, which took 70% of a yolov8n forward at 320 (44 of 62 ms).
// (The QAT-mode path keeps conv2d: with quantizers off it must equal the float model bit for bit.)
torch::Tensor fused_conv2d(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b,
                           int64_t stride) {
  const bool no_grad = c10::InferenceMode::is_enabled() || !torch::GradMode::is_enabled() ||
                       !(x.requires_grad() || w.requires_grad() || b.requires_grad());
  if (no_grad && at::hasMKLDNN() && at::globalContext().userEnabledMkldnn() && x.is_cpu() &&
      x.scalar_type() == torch::kFloat && w.scalar_type() == torch::kFloat && x.dim() == 4) {
    const int64_t pad = w.size(2) / 2;
    return at::mkldnn_convolution(x, w, b, {pad, pad}, {stride, stride}, {1, 1}, 1);
  }
  return conv2d(x, w, b, stride);
}

// A quantizer that fake-quantizes per tensor with plain numbers (not learned, no analysis tap): the kind
// fake_quant_silu_fake_quant can take over.
bool plain_per_tensor(FakeQuantizeImpl& q) {
  return q.fake_quant_enabled() && !q.learnable() && !q.scheme().per_channel && !q.has_tap();
}

// Observers whose state depends only on each batch's min and max.
bool range_observer(FakeQuantizeImpl& q) {
  const std::string k = q.observer().kind();
  return k == "minmax" || k == "moving_average_minmax";
}

ActGrid grid_of(FakeQuantizeImpl& q) {
  const QParams qp = q.qparams();
  return {qp.scale.item<float>(), qp.zero_point.item<int64_t>(), q.quant_min(), q.quant_max()};
}

}  // namespace

torch::Tensor conv_bn_act_forward(model::ConvBnActImpl& m, const torch::Tensor& x) {
  auto& bn = *m.bn;
  const torch::Tensor& w = m.conv->weight;
  const int64_t s = m.options().s();
  torch::Tensor y;
  if (m.mode == model::ConvMode::kFused) {
    FusedConv f = fold_conv_bn(w, {}, bn);
    torch::Tensor y = fused_conv2d(x, f.weight, f.bias, s);
    // The conv output is fresh: without autograd SiLU can overwrite it (no second activation-sized buffer).
    const bool in_place = c10::InferenceMode::is_enabled() || !torch::GradMode::is_enabled();
    return in_place ? torch::silu_(y) : torch::silu(y);
  }
  const bool wq = !m.weight_fq.is_empty() && m.weight_fq->fake_quant_enabled();
  const bool batch_stats = m.is_training() && !m.bn_frozen;
  if (!wq) {
    if (!m.weight_fq.is_empty() && m.weight_fq->observer_enabled()) {
      torch::NoGradGuard no_grad;
      m.weight_fq->forward(fold_conv_bn(w, {}, bn).weight);  // observe only
    }
    y = m.conv->forward(x);
    // Frozen BN in training: running statistics, not updated.
    y = m.is_training() && m.bn_frozen
            ? torch::batch_norm(y, bn.weight, bn.bias, bn.running_mean, bn.running_var, /*training=*/false,
                                bn.options.momentum().value(), bn.options.eps(),
                                at::globalContext().userEnabledCuDNN())
            : bn.forward(y);
  } else if (batch_stats) {
    auto g = (bn.weight / torch::sqrt(bn.running_var + bn.options.eps())).view({-1, 1, 1, 1});  // [c2,1,1,1]
    auto wfold = m.weight_fq->forward(w * g);
    // conv(x, fq(W g)) / g computed as conv(x, fq(W g) / g): the same math (the conv is linear in its
    // weight per output channel) without a pass over the activation and its gradient.
    y = bn.forward(conv2d(x, wfold / g, {}, s));
  } else {
    FusedConv f = fold_conv_bn(w, {}, bn);
    y = conv2d(x, m.weight_fq->forward(f.weight), f.bias, s);
  }
  // pre_fq -> SiLU -> act_fq as one op (tables by pre code), also while the observers still observe,
  // when the act observer is a min / max one (quant/fused_act.h).
  if (!m.pre_fq.is_empty() && !m.act_fq.is_empty() && fused_fake_quant_enabled() && y.numel() > 0 &&
      plain_per_tensor(*m.pre_fq) && plain_per_tensor(*m.act_fq)) {
    FakeQuantizeImpl &pre = *m.pre_fq, &act = *m.act_fq;
    if (!act.observer_enabled() || range_observer(act)) {
      pre.observe(y);  // grid_of brings the qparams up to date
      if (!act.observer_enabled()) return fake_quant_silu_fake_quant(y, grid_of(pre), grid_of(act));
      return fake_quant_silu_fake_quant(y, grid_of(pre), [&act](float lo, float hi) {
        act.observe(torch::tensor({lo, hi}));
        return grid_of(act);
      });
    }
  }
  if (!m.pre_fq.is_empty()) y = m.pre_fq->forward(y);
  y = torch::silu(y);
  return m.act_fq.is_empty() ? y : m.act_fq->forward(y);
}

torch::Tensor quantized_conv_forward(torch::nn::Conv2dImpl& conv, const torch::Tensor& x, FakeQuantize& wfq,
                                     FakeQuantize& afq) {
  auto w = wfq.is_empty() ? conv.weight : wfq->forward(conv.weight);
  auto y = conv2d(x, w, conv.bias, conv.options.stride()->at(0));
  return afq.is_empty() ? y : afq->forward(y);
}

}  // namespace yq::quant
