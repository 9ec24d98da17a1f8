#include "quant/scheme.h"

#include <ATen/ATen.h>
#include <fmt/format.h>

#include <cmath>

#include "core/error.h"

namespace yq::quant {

int64_t QScheme::quant_min() const {
  int64_t lo = is_signed ? -(int64_t(1) << (bits - 1)) : 0;
  return narrow_range ? lo + 1 : lo;
}

int64_t QScheme::quant_max() const {
  return is_signed ? (int64_t(1) << (bits - 1)) - 1 : (int64_t(1) << bits) - 1;
}

int64_t QScheme::symmetric_zero_point() const {
  if (is_signed) return 0;
  // PyTorch: 128 for the default quint8 range, (qmin + qmax) // 2 for a customized range.
  if (bits == 8 && !narrow_range) return 128;
  return (quant_min() + quant_max()) / 2;  // both >= 0: division rounds down
}

void QScheme::validate() const {
  YQ_CHECK_USAGE(bits >= 2 && bits <= 8, "quantization scheme: bits must be in 2..8, found {}", bits);
  YQ_CHECK_USAGE(axis >= 0, "quantization scheme: axis must be >= 0, found {}", axis);
  YQ_CHECK_USAGE(eps > 0.0 && std::isfinite(eps), "quantization scheme: eps must be > 0, found {}", eps);
}

std::string QScheme::to_string() const {
  std::string s = fmt::format("{}int{} {}", is_signed ? "" : "u", bits, symmetric ? "symmetric" : "affine");
  s += per_channel ? fmt::format(" per-channel(axis {})", axis) : " per-tensor";
  if (narrow_range) s += " narrow";
  return s;
}

bool QScheme::operator==(const QScheme& o) const {
  return bits == o.bits && symmetric == o.symmetric && per_channel == o.per_channel &&
         (!per_channel || axis == o.axis) && is_signed == o.is_signed && narrow_range == o.narrow_range &&
         eps == o.eps;
}

QScheme QScheme::uint8_affine() {
  return QScheme{};
}

QScheme QScheme::int8_symmetric() {
  QScheme s;
  s.symmetric = true;
  s.is_signed = true;
  return s;
}

QScheme QScheme::int8_symmetric_per_channel(int64_t axis) {
  QScheme s = int8_symmetric();
  s.per_channel = true;
  s.axis = axis;
  return s;
}

QParams calculate_qparams(const at::Tensor& min_in, const at::Tensor& max_in, const QScheme& scheme) {
  scheme.validate();
  const auto device = min_in.device();
  auto defaults = [&] {
    return QParams{at::ones({1}, at::TensorOptions().dtype(at::kFloat).device(device)),
                   at::zeros({1}, at::TensorOptions().dtype(at::kLong).device(device))};
  };
  // Nothing observed yet: empty per-channel stats, or the (+inf, -inf) start of per-tensor ones.
  if (min_in.numel() == 0 || max_in.numel() == 0) return defaults();
  at::Tensor min_val = min_in.detach().to(at::kFloat);
  at::Tensor max_val = max_in.detach().to(at::kFloat);
  if (min_val.numel() == 1 && max_val.numel() == 1 && std::isinf(min_val.item<float>()) &&
      min_val.item<float>() > 0 && std::isinf(max_val.item<float>()) && max_val.item<float>() < 0)
    return defaults();
  YQ_CHECK(min_val.sizes() == max_val.sizes(), "calculate_qparams: min shape {} differs from max shape {}",
           fmt::join(min_val.sizes(), "x"), fmt::join(max_val.sizes(), "x"));
  YQ_CHECK(at::all(min_val <= max_val).item<bool>(), "calculate_qparams: min {} is above max {}",
           at::min(min_val).item<float>(), at::max(max_val).item<float>());

  const int64_t qmin = scheme.quant_min(), qmax = scheme.quant_max();
  // The same float32 tensor operations as PyTorch's _calculate_qparams (see scheme.h).
  at::Tensor min_neg = at::minimum(min_val, at::zeros_like(min_val));
  at::Tensor max_pos = at::maximum(max_val, at::zeros_like(max_val));
  at::Tensor eps = at::full({1}, scheme.eps, min_val.options());
  at::Tensor scale, zero_point;
  if (scheme.symmetric) {
    max_pos = at::maximum(-min_neg, max_pos);
    scale = max_pos / (double(qmax - qmin) / 2.0);
    scale = at::maximum(scale, eps);
    zero_point = at::full(scale.sizes(), scheme.symmetric_zero_point(),
                          at::TensorOptions().dtype(at::kLong).device(device));
  } else {
    scale = (max_pos - min_neg) / double(qmax - qmin);
    scale = at::maximum(scale, eps);
    zero_point = at::neg(at::round(min_neg / scale).to(at::kInt)) + qmin;
    zero_point = at::clamp(zero_point, qmin, qmax).to(at::kLong);
  }
  return QParams{scale.reshape({-1}).contiguous(), zero_point.reshape({-1}).contiguous()};
}

ScalarQParams calculate_qparams(float min_val, float max_val, const QScheme& scheme) {
  QScheme s = scheme;
  s.per_channel = false;
  QParams qp =
      calculate_qparams(at::scalar_tensor(min_val, at::kFloat), at::scalar_tensor(max_val, at::kFloat), s);
  return ScalarQParams{qp.scale.item<float>(), qp.zero_point.item<int64_t>()};
}

int64_t quantize_value(float x, float scale, int64_t zero_point, int64_t quant_min, int64_t quant_max) {
  const float inv_scale = 1.0f / scale;
  const auto q = static_cast<int64_t>(zero_point + std::nearbyint(x * inv_scale));
  return std::min(std::max(q, quant_min), quant_max);
}

float dequantize_value(int64_t q, float scale, int64_t zero_point) {
  return static_cast<float>(static_cast<double>(q - zero_point) * scale);
}

namespace {

// Calls fn(flat index, channel) for every element of a contiguous tensor of `sizes`, where channel
// is the index along `axis` (0 for per-tensor).
template <class Fn>
void for_each_channel(at::IntArrayRef sizes, bool per_channel, int64_t axis, Fn&& fn) {
  int64_t outer = 1, channels = 1, inner = 1;
  if (per_channel) {
    YQ_CHECK(axis < int64_t(sizes.size()), "quantization axis {} is out of range for a {}-d tensor", axis,
             sizes.size());
    for (int64_t d = 0; d < axis; ++d) outer *= sizes[d];
    channels = sizes[axis];
    for (int64_t d = axis + 1; d < int64_t(sizes.size()); ++d) inner *= sizes[d];
  } else {
    for (auto s : sizes) inner *= s;
  }
  int64_t i = 0;
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t c = 0; c < channels; ++c)
      for (int64_t k = 0; k < inner; ++k) fn(i++, c);
}

struct HostQParams {
  at::Tensor scale, zero_point;  // contiguous CPU float32 / int64
};

HostQParams host_qparams(const at::Tensor& x, const QParams& qp, const QScheme& s) {
  HostQParams h{qp.scale.detach().to(at::kCPU, at::kFloat).contiguous(),
                qp.zero_point.detach().to(at::kCPU).to(at::kLong).contiguous()};
  const int64_t want = s.per_channel ? x.size(s.axis) : 1;
  YQ_CHECK(h.scale.numel() == want && h.zero_point.numel() == want,
           "quantization parameters hold {} scales and {} zero points, the tensor needs {}", h.scale.numel(),
           h.zero_point.numel(), want);
  return h;
}

}  // namespace

at::Tensor quantize_reference(const at::Tensor& x, const QParams& qp, const QScheme& s) {
  at::Tensor xc = x.detach().to(at::kCPU, at::kFloat).contiguous();
  HostQParams h = host_qparams(xc, qp, s);
  at::Tensor q = at::empty(xc.sizes(), at::TensorOptions().dtype(at::kLong));
  const float* src = xc.data_ptr<float>();
  int64_t* dst = q.data_ptr<int64_t>();
  const float* sc = h.scale.data_ptr<float>();
  const int64_t* zp = h.zero_point.data_ptr<int64_t>();
  const int64_t qmin = s.quant_min(), qmax = s.quant_max();
  for_each_channel(xc.sizes(), s.per_channel, s.axis,
                   [&](int64_t i, int64_t c) { dst[i] = quantize_value(src[i], sc[c], zp[c], qmin, qmax); });
  return q;
}

at::Tensor dequantize_reference(const at::Tensor& q, const QParams& qp, const QScheme& s) {
  at::Tensor qc = q.detach().to(at::kCPU, at::kLong).contiguous();
  HostQParams h = host_qparams(qc, qp, s);
  at::Tensor x = at::empty(qc.sizes(), at::TensorOptions().dtype(at::kFloat));
  const int64_t* src = qc.data_ptr<int64_t>();
  float* dst = x.data_ptr<float>();
  const float* sc = h.scale.data_ptr<float>();
  const int64_t* zp = h.zero_point.data_ptr<int64_t>();
  for_each_channel(qc.sizes(), s.per_channel, s.axis,
                   [&](int64_t i, int64_t c) { dst[i] = dequantize_value(src[i], sc[c], zp[c]); });
  return x;
}

at::Tensor fake_quantize_reference(const at::Tensor& x, const QParams& qp, const QScheme& s) {
  return dequantize_reference(quantize_reference(x, qp, s), qp, s);
}

}  // namespace yq::quant
