#include "model/blocks.h"

#include <cmath>

#include "core/error.h"
#include "model/anchors.h"
#include "quant/qat_modules.h"

namespace yq::model {

namespace F = torch::nn::functional;

// ---------------------------------------------------------------- ConvBnAct

ConvBnActImpl::ConvBnActImpl(const ConvBnActOptions& o) : options_(o) {
  YQ_ASSERT(o.c1() > 0 && o.c2() > 0 && o.k() > 0 && o.s() > 0);
  conv = register_module(
      "conv",
      torch::nn::Conv2d(
          torch::nn::Conv2dOptions(o.c1(), o.c2(), o.k()).stride(o.s()).padding(o.k() / 2).bias(false)));
  bn = register_module(
      "bn", torch::nn::BatchNorm2d(torch::nn::BatchNorm2dOptions(o.c2()).eps(kBnEps).momentum(kBnMomentum)));
}

torch::Tensor ConvBnActImpl::forward(const torch::Tensor& x) {
  if (mode == ConvMode::kFloat) return torch::silu(bn->forward(conv->forward(x)));
  return quant::conv_bn_act_forward(*this, x);
}

// ---------------------------------------------------------------- junctions

torch::Tensor AddImpl::forward(const torch::Tensor& a, const torch::Tensor& b) {
  return out_fq.is_empty() ? a + b : out_fq->forward(a + b);
}

torch::Tensor ConcatImpl::forward(const std::vector<torch::Tensor>& xs) {
  return out_fq.is_empty() ? torch::cat(xs, dim_) : out_fq->forward(torch::cat(xs, dim_));
}

std::vector<torch::Tensor> SplitImpl::forward(const torch::Tensor& x) {
  YQ_ASSERT(x.size(1) % parts_ == 0);
  return x.chunk(parts_, 1);
}

torch::Tensor MaxPoolImpl::forward(const torch::Tensor& x) {
  // Dilation passed explicitly: quantized max_pool2d needs it (DESIGN.md, measured facts).
  return at::max_pool2d(x, {k_, k_}, {1, 1}, {k_ / 2, k_ / 2}, {1, 1});
}

torch::Tensor UpsampleImpl::forward(const torch::Tensor& x) {
  return F::interpolate(x, F::InterpolateFuncOptions()
                               .scale_factor(std::vector<double>{double(scale_), double(scale_)})
                               .mode(torch::kNearest));
}

// ---------------------------------------------------------------- Bottleneck, C2f, SPPF

BottleneckImpl::BottleneckImpl(int64_t c1, int64_t c2, bool shortcut) {
  cv1 = register_module("cv1", ConvBnAct(c1, c2, 3));
  cv2 = register_module("cv2", ConvBnAct(c2, c2, 3));
  if (shortcut && c1 == c2) add = register_module("add", Add());
}

torch::Tensor BottleneckImpl::forward(const torch::Tensor& x) {
  auto y = cv2->forward(cv1->forward(x));
  return add.is_empty() ? y : add->forward(x, y);
}

C2fImpl::C2fImpl(int64_t c1, int64_t c2, int64_t n, bool shortcut) {
  const int64_t c = c2 / 2;  // int(0.5 * c2)
  YQ_ASSERT(c > 0 && n >= 1);
  cv1 = register_module("cv1", ConvBnAct(c1, 2 * c, 1));
  cv2 = register_module("cv2", ConvBnAct((2 + n) * c, c2, 1));
  m = register_module("m", torch::nn::ModuleList());
  for (int64_t i = 0; i < n; ++i) m->push_back(Bottleneck(c, c, shortcut));
  split = register_module("split", Split(2));
  cat = register_module("cat", Concat(1));
}

torch::Tensor C2fImpl::forward(const torch::Tensor& x) {
  std::vector<torch::Tensor> ys = split->forward(cv1->forward(x));  // 2 x [B, c, H, W]
  ys.reserve(2 + m->size());
  for (const auto& b : *m) ys.push_back(b->as<BottleneckImpl>()->forward(ys.back()));
  return cv2->forward(cat->forward(ys));
}

SPPFImpl::SPPFImpl(int64_t c1, int64_t c2, int64_t k) {
  const int64_t c = c1 / 2;
  cv1 = register_module("cv1", ConvBnAct(c1, c, 1));
  cv2 = register_module("cv2", ConvBnAct(4 * c, c2, 1));
  m = register_module("m", MaxPool(k));
  cat = register_module("cat", Concat(1));
}

torch::Tensor SPPFImpl::forward(const torch::Tensor& x) {
  auto x1 = cv1->forward(x);
  auto y1 = m->forward(x1);
  auto y2 = m->forward(y1);
  auto y3 = m->forward(y2);
  return cv2->forward(cat->forward({x1, y1, y2, y3}));
}

// ---------------------------------------------------------------- DFL, Detect

DFLImpl::DFLImpl(int64_t bins) : bins_(bins) {
  conv = register_module("conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(bins, 1, 1).bias(false)));
  torch::NoGradGuard no_grad;
  conv->weight.copy_(torch::arange(bins, torch::kFloat32).view({1, bins, 1, 1}));
  conv->weight.set_requires_grad(false);
}

torch::Tensor DFLImpl::forward(const torch::Tensor& x) {
  const int64_t b = x.size(0), a = x.size(2);
  YQ_ASSERT(x.size(1) == 4 * bins_);
  auto p = x.view({b, 4, bins_, a}).transpose(2, 1).softmax(1);  // [B, bins, 4, A]
  return conv->forward(p).view({b, 4, a});
}

DetectImpl::DetectImpl(int64_t nc, const std::vector<int64_t>& ch) : nc_(nc), ch_(ch) {
  YQ_ASSERT(nc > 0 && !ch.empty());
  const int64_t c2 = std::max({int64_t(16), ch[0] / 4, 4 * kRegMax});
  const int64_t c3 = std::max(ch[0], std::min(nc, int64_t(100)));
  cv2 = register_module("cv2", torch::nn::ModuleList());
  cv3 = register_module("cv3", torch::nn::ModuleList());
  for (int64_t c : ch) {
    cv2->push_back(torch::nn::Sequential(ConvBnAct(c, c2, 3), ConvBnAct(c2, c2, 3),
                                         torch::nn::Conv2d(torch::nn::Conv2dOptions(c2, 4 * kRegMax, 1))));
    cv3->push_back(torch::nn::Sequential(ConvBnAct(c, c3, 3), ConvBnAct(c3, c3, 3),
                                         torch::nn::Conv2d(torch::nn::Conv2dOptions(c3, nc, 1))));
  }
  dfl = register_module("dfl", DFL(kRegMax));
  for (auto* v : {&box_weight_fq, &box_act_fq, &cls_weight_fq, &cls_act_fq})
    v->assign(ch.size(), quant::FakeQuantize(nullptr));
}

std::vector<torch::Tensor> DetectImpl::forward(const std::vector<torch::Tensor>& feats) {
  YQ_ASSERT(static_cast<int64_t>(feats.size()) == nl());
  std::vector<torch::Tensor> out;
  out.reserve(feats.size());
  // Conv, Conv, then the final 1x1 conv with its optional quantizers.
  auto branch = [](torch::nn::SequentialImpl& s, const torch::Tensor& x, quant::FakeQuantize& wfq,
                   quant::FakeQuantize& afq) {
    auto h = s.ptr(1)->as<ConvBnActImpl>()->forward(s.ptr(0)->as<ConvBnActImpl>()->forward(x));
    auto* last = s.ptr(2)->as<torch::nn::Conv2dImpl>();
    if (wfq.is_empty() && afq.is_empty()) return last->forward(h);
    return quant::quantized_conv_forward(*last, h, wfq, afq);
  };
  for (size_t i = 0; i < feats.size(); ++i) {
    auto box = branch(*cv2->ptr(i)->as<torch::nn::SequentialImpl>(), feats[i], box_weight_fq[i],
                      box_act_fq[i]);  // [B, 64, H, W]
    auto cls = branch(*cv3->ptr(i)->as<torch::nn::SequentialImpl>(), feats[i], cls_weight_fq[i],
                      cls_act_fq[i]);  // [B, nc, H, W]
    out.push_back(torch::cat({box, cls}, 1));
  }
  return out;
}

torch::Tensor DetectImpl::decode(const std::vector<torch::Tensor>& raw) {
  YQ_CHECK(static_cast<int64_t>(strides_.size()) == nl(),
           "Detect: strides are not set (init_bias not called)");
  YQ_ASSERT(static_cast<int64_t>(raw.size()) == nl());
  const int64_t b = raw[0].size(0);
  std::vector<torch::Tensor> flat;
  for (const auto& r : raw) flat.push_back(r.reshape({b, no(), -1}));
  auto x = torch::cat(flat, 2);  // [B, no, A]
  auto box = x.slice(1, 0, 4 * kRegMax);
  auto cls = x.slice(1, 4 * kRegMax);
  auto [points, stride] = make_anchors(raw, strides_);  // [A, 2], [A, 1]
  auto xywh = dist2bbox(dfl->forward(box), points.t().unsqueeze(0), /*xywh=*/true, /*dim=*/1);  // [B, 4, A]
  return torch::cat({xywh * stride.t(), cls.sigmoid()}, 1);
}

void DetectImpl::init_bias(const std::vector<int64_t>& strides) {
  YQ_ASSERT(static_cast<int64_t>(strides.size()) == nl());
  strides_ = strides;
  torch::NoGradGuard no_grad;
  for (int64_t i = 0; i < nl(); ++i) {
    auto box_out = cv2->ptr(i)->as<torch::nn::SequentialImpl>()->ptr(2)->as<torch::nn::Conv2dImpl>();
    auto cls_out = cv3->ptr(i)->as<torch::nn::SequentialImpl>()->ptr(2)->as<torch::nn::Conv2dImpl>();
    box_out->bias.fill_(1.0);
    const double cells = std::pow(640.0 / double(strides[i]), 2);
    cls_out->bias.fill_(std::log(5.0 / double(nc_) / cells));
  }
}

}  // namespace yq::model
