#include "quant/fake_quantize.h"

#include <fmt/format.h>

#include <cmath>

#include "core/error.h"
#include "quant/fused_fake_quant.h"

namespace yq::quant {

ObserverOptions observer_options(const QuantSpec& spec) {
  ObserverOptions o;
  o.scheme = spec.scheme;
  o.averaging_constant = spec.averaging_constant;
  o.bins = spec.bins;
  o.upsample_rate = spec.upsample_rate;
  o.percentile = spec.percentile;
  o.search_steps = spec.search_steps;
  return o;
}

FakeQuantizeImpl::FakeQuantizeImpl(QuantSpec spec) : spec_(std::move(spec)) {
  reset();
}

void FakeQuantizeImpl::reset() {
  spec_.validate();
  const QScheme& s = spec_.scheme;
  observer_ = register_module("observer", make_observer(spec_.observer, observer_options(spec_)));
  // Before any observation: scale 1 and the scheme's natural zero point (inside [quant_min, quant_max]).
  const int64_t zp0 =
      s.symmetric ? s.symmetric_zero_point() : std::clamp<int64_t>(0, s.quant_min(), s.quant_max());
  if (spec_.learnable) {
    scale_ = register_parameter("scale", torch::ones({1}, torch::kFloat));
    if (s.symmetric)
      zero_point_ = register_buffer("zero_point", torch::full({1}, double(zp0), torch::kFloat));
    else
      zero_point_ = register_parameter("zero_point", torch::full({1}, double(zp0), torch::kFloat));
  } else {
    scale_ = register_buffer("scale", torch::ones({1}, torch::kFloat));
    zero_point_ = register_buffer("zero_point", torch::full({1}, zp0, torch::kInt));
  }
  observer_enabled_ = register_buffer("observer_enabled", torch::ones({1}, torch::kUInt8));
  fake_quant_enabled_ = register_buffer("fake_quant_enabled", torch::ones({1}, torch::kUInt8));
  stale_ = false;
}

bool FakeQuantizeImpl::observer_enabled() const {
  return observer_enabled_.item<uint8_t>() != 0;
}
bool FakeQuantizeImpl::fake_quant_enabled() const {
  return fake_quant_enabled_.item<uint8_t>() != 0;
}

void FakeQuantizeImpl::enable_observer(bool on) {
  if (!on) refresh_if_stale();
  torch::NoGradGuard no_grad;
  observer_enabled_.fill_(on ? 1 : 0);
}

void FakeQuantizeImpl::enable_fake_quant(bool on) {
  if (on) refresh_if_stale();
  torch::NoGradGuard no_grad;
  fake_quant_enabled_.fill_(on ? 1 : 0);
}

void FakeQuantizeImpl::enable_learning(bool on) {
  if (!spec_.learnable) return;
  scale_.requires_grad_(on);
  if (!spec_.scheme.symmetric) zero_point_.requires_grad_(on);
}

void FakeQuantizeImpl::freeze() {
  refresh_if_stale();
  enable_observer(false);
  enable_learning(false);
}

void FakeQuantizeImpl::refresh_if_stale() {
  if (stale_) update_qparams();
}

void FakeQuantizeImpl::update_qparams() {
  QParams qp = observer_->qparams();
  copy_qparams(qp.scale, qp.zero_point);
  stale_ = false;
}

void FakeQuantizeImpl::copy_qparams(const torch::Tensor& scale_in, const torch::Tensor& zp_in) {
  torch::NoGradGuard no_grad;
  torch::Tensor scale = scale_in.detach().reshape({-1}).to(scale_.device(), torch::kFloat);
  torch::Tensor zp = zp_in.detach().reshape({-1}).to(zero_point_.device(), torch::kDouble).round();
  YQ_CHECK(scale.numel() == zp.numel() && scale.numel() > 0, "fake quantize: {} scales but {} zero points",
           scale.numel(), zp.numel());
  YQ_CHECK(spec_.scheme.per_channel || scale.numel() == 1,
           "fake quantize: a per-tensor quantizer takes one scale, got {}", scale.numel());
  zp = zp.clamp(double(quant_min()), double(quant_max())).to(zero_point_.scalar_type());
  if (scale_.sizes() != scale.sizes()) {
    scale_.set_data(scale.clone());
    zero_point_.set_data(zp.clone());
  } else {
    scale_.copy_(scale);
    zero_point_.copy_(zp);
  }
}

void FakeQuantizeImpl::set_qparams(const torch::Tensor& scale, const torch::Tensor& zero_point) {
  YQ_CHECK(torch::all(scale > 0).item<bool>(), "fake quantize: set_qparams needs positive scales");
  copy_qparams(scale, zero_point);
  stale_ = false;
  freeze();
}

void FakeQuantizeImpl::set_qparams(double scale, int64_t zero_point) {
  set_qparams(torch::full({1}, scale, torch::kFloat), torch::full({1}, zero_point, torch::kLong));
}

QParams FakeQuantizeImpl::qparams() {
  refresh_if_stale();
  torch::NoGradGuard no_grad;
  torch::Tensor zp = zero_point_.detach();
  if (zp.is_floating_point()) zp = zp.round().clamp(double(quant_min()), double(quant_max()));
  return QParams{scale_.detach().clone(), zp.to(torch::kLong).clone()};
}

torch::Tensor FakeQuantizeImpl::forward(const torch::Tensor& x) {
  if (!tap_) return quantize(x);
  torch::Tensor y = quantize(x);
  tap_(x, y);
  return y;
}

void FakeQuantizeImpl::observe(const torch::Tensor& x) {
  if (!observer_enabled()) return;
  observer_->observe(x);
  stale_ = true;
}

torch::Tensor FakeQuantizeImpl::quantize(const torch::Tensor& x) {
  observe(x);
  if (!fake_quant_enabled()) return x;
  refresh_if_stale();
  const QScheme& s = spec_.scheme;
  const int64_t qmin = s.quant_min(), qmax = s.quant_max();
  if (s.per_channel) {
    YQ_CHECK(
        s.axis < x.dim() && scale_.numel() == x.size(s.axis),
        "fake quantize ({}): the input of shape [{}] has {} channels on axis {} but the quantizer holds {} "
        "scales (observe data or set_qparams first)",
        s.to_string(), fmt::join(x.sizes(), ", "), s.axis < x.dim() ? x.size(s.axis) : 0, s.axis,
        scale_.numel());
  }
  if (spec_.learnable) {
    if (!observer_enabled()) {
      torch::NoGradGuard no_grad;
      scale_.clamp_min_(s.eps);
    }
    double grad_factor = 1.0;
    if (spec_.grad_scaling) {
      const double per_scale = double(x.numel()) / double(scale_.numel());
      grad_factor = 1.0 / std::sqrt(std::max(1.0, per_scale * double(qmax)));
    }
    if (s.per_channel)
      return at::_fake_quantize_learnable_per_channel_affine(x, scale_, zero_point_, s.axis, qmin, qmax,
                                                             grad_factor);
    return at::_fake_quantize_learnable_per_tensor_affine(x, scale_, zero_point_, qmin, qmax, grad_factor);
  }
  if (s.per_channel) return at::fake_quantize_per_channel_affine(x, scale_, zero_point_, s.axis, qmin, qmax);
  // One pass forward and backward, bit-identical to at::fake_quantize_per_tensor_affine
  // (quant/fused_fake_quant.h).
  return fake_quantize_per_tensor(x, scale_.item<float>(), zero_point_.item<int64_t>(), qmin, qmax);
}

void FakeQuantizeImpl::pretty_print(std::ostream& stream) const {
  stream << "yq::quant::FakeQuantize(" << spec_.to_string()
         << ", observer=" << (observer_enabled() ? "on" : "off")
         << ", fake_quant=" << (fake_quant_enabled() ? "on" : "off") << ")";
}

}  // namespace yq::quant
