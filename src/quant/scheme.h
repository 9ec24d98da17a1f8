// Quantization schemes and the quantization-parameter math (DESIGN.md "Quantization").
//
// A QScheme says how real values map to integers: bit width (2..8), signed or unsigned integers,
// symmetric (zero point fixed) or asymmetric (affine), per-tensor or per-channel along `axis`, and
// narrow range (the lowest integer dropped: [-127, 127] for int8, the TensorRT convention).
//
// calculate_qparams() is the ONE place that turns a [min, max] range into scale and zero point. It
// reproduces PyTorch's UniformQuantizationObserverBase._calculate_qparams
// (torch/ao/quantization/observer.py, 1.13) with the same float32 tensor operations, so observers
// that feed it the same min/max produce bit-identical scales:
//   min_neg = min(min, 0), max_pos = max(max, 0)     (the range always holds 0 exactly)
//   symmetric:  scale = max(-min_neg, max_pos) / ((qmax - qmin) / 2)
//               zero_point = 0 for signed integers; for unsigned ones PyTorch's mid point: 128 for the
//               plain 8-bit range [0, 255], (qmin + qmax) / 2 rounded down for any other range (what
//               PyTorch does with a customized quant_min/quant_max)
//   asymmetric: scale = (max_pos - min_neg) / (qmax - qmin)
//               zero_point = clamp(qmin - round_half_even(min_neg / scale), qmin, qmax)
//   scale = max(scale, eps), eps = float32 epsilon by default
//   no observation yet (min = +inf, max = -inf, or empty per-channel stats): scale 1, zero point 0.
//
// PyTorch's dtypes map onto schemes as: quint8 = {8 bits, unsigned}, qint8 = {8 bits, signed},
// reduce_range = one bit less (quint8 -> [0, 127] = 7 bits unsigned, qint8 -> [-64, 63] = 7 bits signed),
// a customized quant_min/quant_max = fewer bits and/or narrow_range.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <limits>
#include <string>

namespace yq::quant {

struct QScheme {
  int bits = 8;               // 2..8
  bool symmetric = false;     // zero point fixed (0 signed, mid point unsigned) vs affine
  bool per_channel = false;   // one scale / zero point per slice along `axis`
  int64_t axis = 0;           // channel axis for per_channel (0 = output channels of a conv weight)
  bool is_signed = false;     // integers in [-2^(b-1), 2^(b-1) - 1] vs [0, 2^b - 1]
  bool narrow_range = false;  // drop the lowest integer: int8 [-127, 127], uint8 [1, 255]
  double eps = std::numeric_limits<float>::epsilon();  // smallest scale

  int64_t quant_min() const;
  int64_t quant_max() const;
  // Number of integer levels (quant_max - quant_min + 1).
  int64_t levels() const { return quant_max() - quant_min() + 1; }
  // The zero point symmetric schemes use (0 for signed; see the header comment for unsigned).
  int64_t symmetric_zero_point() const;
  // Throws UsageError naming the bad field (bits outside 2..8, negative axis, eps <= 0).
  void validate() const;
  // Short human-readable form, e.g. "int8 symmetric per-channel(axis 0) narrow".
  std::string to_string() const;

  bool operator==(const QScheme& o) const;
  bool operator!=(const QScheme& o) const { return !(*this == o); }

  // Common schemes.
  static QScheme uint8_affine();                                // PyTorch's quint8 per_tensor_affine
  static QScheme int8_symmetric();                              // qint8 per_tensor_symmetric
  static QScheme int8_symmetric_per_channel(int64_t axis = 0);  // qint8 per_channel_symmetric
};

// Scale (float32) and zero point (int64), both of shape [1] per-tensor or [C] per-channel.
struct QParams {
  at::Tensor scale;       // [1] or [C] float32
  at::Tensor zero_point;  // [1] or [C] int64
};

// Scale and zero point for the range [min_val, max_val] (0-dim or [1] per-tensor, [C] per-channel;
// any float dtype, computed in float32). See the header comment for the formulas. Throws yq::Error
// when some min_val > max_val.
QParams calculate_qparams(const at::Tensor& min_val, const at::Tensor& max_val, const QScheme& scheme);

// Scalar form of calculate_qparams for one range (same code path).
struct ScalarQParams {
  float scale = 1.0f;
  int64_t zero_point = 0;
};
ScalarQParams calculate_qparams(float min_val, float max_val, const QScheme& scheme);

// Reference quantization, written as plain loops to check the fast paths against. They follow
// ATen's fake-quantize kernels exactly: q = clamp(zero_point + nearbyint(x * (1 / scale)), qmin, qmax)
// (round half to even in the default rounding mode), x' = (q - zero_point) * scale.
int64_t quantize_value(float x, float scale, int64_t zero_point, int64_t quant_min, int64_t quant_max);
float dequantize_value(int64_t q, float scale, int64_t zero_point);

// Whole tensors (any shape, float32). Per-tensor qparams have one element; per-channel ones have
// x.size(scheme.axis) elements. quantize_reference returns int64 codes of x's shape.
at::Tensor quantize_reference(const at::Tensor& x, const QParams& qp, const QScheme& scheme);
at::Tensor dequantize_reference(const at::Tensor& q, const QParams& qp, const QScheme& scheme);
at::Tensor fake_quantize_reference(const at::Tensor& x, const QParams& qp, const QScheme& scheme);

}  // namespace yq::quant
