// The int8 building blocks of a converted model (DESIGN.md "Int8 and export"), on LibTorch's quantized
// tensors and kernels.
//
// Activations are quint8 tensors in channels-last layout. Every activation grid of the fake-quant model
// maps onto quint8 exactly: an unsigned scheme keeps its codes, a signed one (TensorRT profile, zero
// point 0, codes -128..127) is the same grid as quint8 with every code and the zero point shifted by
// +128. A QGrid also keeps the scheme's code range (narrow range, fewer bits), so that the int8 model
// clamps where the fake-quant model clamps.
//
// Ops and their fake-quant equivalents (each agrees within 1 LSB; tests/deploy/int8_ops_test.cpp):
//   qquantize     fq(x)                          at::quantize_per_tensor (+ clamp table when narrow)
//   qconv         fq_out(conv(x, fq_w(W)) + b)   quantized::conv2d with prepacked per-channel qint8
//                                                weights (zero points 0), float bias
//   silu table    fq_out(silu(fq_in(x)))         256-entry uint8 table, exact
//   requantize    fq_out(x)                      256-entry uint8 table, exact
//   qadd          fq_out(a + b)                  quantized::add
//   qcat          fq_out(cat(xs))                requantize inputs whose grid differs, then at::cat
//   qmaxpool      max_pool2d                     at::max_pool2d (dilation {1, 1})
//   qupsample     nearest upsample               at::upsample_nearest2d
// LibTorch exposes quantized::conv2d_prepack / conv2d / add / cat only through the operator registry:
// they are called through c10::Dispatcher (boxed calls, stable from 1.13 to 2.x).
#pragma once

#include <ATen/core/Tensor.h>
#include <ATen/core/ivalue.h>
#include <ATen/core/stack.h>

#include <cstdint>
#include <string>
#include <vector>

#include "quant/scheme.h"

namespace yq::deploy {

// A per-tensor activation grid in the quint8 domain: value = (u - zero_point) * scale, with codes u
// clamped to [qmin, qmax] (0..255 unless the scheme is narrower).
struct QGrid {
  float scale = 1.0f;
  int64_t zero_point = 0;  // 0..255
  int64_t qmin = 0;        // 0..255
  int64_t qmax = 255;      // qmin..255

  bool full_range() const { return qmin == 0 && qmax == 255; }
  // Same scale and zero point (values read the same; ranges may differ).
  bool same_values(const QGrid& o) const { return scale == o.scale && zero_point == o.zero_point; }
  bool operator==(const QGrid& o) const { return same_values(o) && qmin == o.qmin && qmax == o.qmax; }
  bool operator!=(const QGrid& o) const { return !(*this == o); }
  std::string to_string() const;  // "scale 0.0123 zp 128 [0, 255]"
};

// The quint8 grid of a per-tensor activation quantizer (scheme + its qparams). Throws UsageError for
// schemes with more than 8 bits' range or per-channel activation schemes; `where` names the layer.
QGrid grid_of(const quant::QScheme& scheme, const quant::QParams& qp, const std::string& where);

// The quint8 grid of a quantized tensor (full range).
QGrid grid_of(const at::Tensor& q);

// ---------------------------------------------------------------- engines

// Selects LibTorch's quantized engine: "onednn" (x86, the default) or "qnnpack" (ARM). Throws
// UsageError naming the engines this LibTorch has when `name` is unknown or not built in.
void set_quantized_engine(const std::string& name);
std::string quantized_engine();  // the current one's name

// ---------------------------------------------------------------- quantize / dequantize

// float [any shape] -> quint8 on `g` (channels-last for 4-d inputs), clamped to g's code range, with
// fake quant's arithmetic (bit-identical to quant::quantize_value). Parallel and vectorized (NCHW
// inputs are transposed in the same pass); the reference calls at::quantize_per_tensor.
at::Tensor qquantize(const at::Tensor& x, const QGrid& g);
at::Tensor qquantize_reference(const at::Tensor& x, const QGrid& g);
// quint8 -> float, same layout.
at::Tensor qdequantize(const at::Tensor& q);
// quint8 [B, C_k, H, W] (k = 0..n-1, any layout) -> float [B, sum C_k, H, W] contiguous (NCHW): the
// dequantized inputs concatenated along channels in one pass (the head's outputs).
at::Tensor qdequantize_cat_nchw(const std::vector<at::Tensor>& qs);

// ---------------------------------------------------------------- lookup tables

// 256-entry uint8 tables from the codes of `in` to the codes of `out`:
//   silu_table:    u -> clamp(zp_out + round(silu(v) / s_out))   with v = (clamp(u, in) - zp_in) * s_in
//   requant_table: u -> clamp(zp_out + round(v / s_out))
// computed with the float32 arithmetic of LibTorch's fake-quant kernels and torch::silu, so a table
// lookup is bit-identical to fq_out(silu(fq_in(x))) / fq_out(fq_in(x)).
at::Tensor silu_table(const QGrid& in, const QGrid& out);     // [256] uint8
at::Tensor requant_table(const QGrid& in, const QGrid& out);  // [256] uint8

// Applies a table to a quint8 tensor: a new quint8 tensor on `out` of q's shape and layout. The fast
// version runs vectorized over chunks in parallel (at::parallel_for); the reference is a plain loop.
at::Tensor apply_table(const at::Tensor& q, const at::Tensor& table, const QGrid& out);
at::Tensor apply_table_reference(const at::Tensor& q, const at::Tensor& table, const QGrid& out);

// ---------------------------------------------------------------- conv

// Per-channel qint8 weight from integer codes [c2, c1, k, k] (any integer dtype, in -128..127) and
// per-output-channel scales [c2] (zero points 0).
at::Tensor make_qweight(const at::Tensor& codes, const at::Tensor& scales);

// Prepacks a quantized conv for the current engine: qweight from make_qweight, bias [c2] float
// (undefined = none), stride, padding k / 2, dilation 1, groups 1. The packed object is opaque.
c10::IValue prepack_conv(const at::Tensor& qweight, const at::Tensor& bias, int64_t stride, int64_t padding);

// quantized::conv2d: quint8 [B, c1, H, W] (made channels-last when it is not) -> quint8
// [B, c2, H / s, W / s] channels-last on `out` (codes clamped to out's range).
at::Tensor qconv(const at::Tensor& qx, const c10::IValue& packed, const QGrid& out);

// ---------------------------------------------------------------- junctions

// a + b on `out` (same shapes): code of (dq(a) + dq(b)) in float, the fake-quant model's arithmetic
// (parallel, vectorized); the reference calls LibTorch's quantized::add (within 1 LSB of it).
at::Tensor qadd(const at::Tensor& a, const at::Tensor& b, const QGrid& out);
at::Tensor qadd_reference(const at::Tensor& a, const at::Tensor& b, const QGrid& out);
// Channel concat (dim 1) on `out`: inputs on another grid (or any input when `out` is narrower than
// full range) are requantized by table first.
at::Tensor qcat(const std::vector<at::Tensor>& xs, const QGrid& out);
// k x k max pool, stride 1, padding k / 2 (SPPF); keeps the grid.
at::Tensor qmaxpool(const at::Tensor& q, int64_t k);
// Nearest upsample by an integer factor; keeps the grid.
at::Tensor qupsample(const at::Tensor& q, int64_t scale);
// (qmaxpool and qupsample also take float tensors.)

// Codes clamped to g's range (q itself when g is full range).
at::Tensor clamp_codes(const at::Tensor& q, const QGrid& g);

}  // namespace yq::deploy
