// Per-tensor fake quantization in one pass over the data, with a one-pass straight-through backward
// (the hot op of QAT: every activation quantizer runs it on every conv output, twice per conv).
//
// LibTorch 1.13's at::fake_quantize_per_tensor_affine (CPU) rounds with a scalar std::nearbyint per
// element, and its backward multiplies the gradient by a bool mask, which TensorIterator first copies
// into a float tensor: on yolov8n at 320 px these two cost about as much as all the convolutions'
// backward. fake_quantize_per_tensor computes the same numbers:
//   v = x * (1 / scale)                           (float32, as LibTorch)
//   q = float(zero_point) + round_half_even(v)    (float32; LibTorch adds the int64 zero point to a float)
//   q = INT64_MIN when q is NaN or outside int64  (what LibTorch's static_cast<int64_t> gives on x86)
//   y = (clamp(q, quant_min, quant_max) - zero_point) * scale
//   mask = quant_min <= q <= quant_max;  dL/dx = dL/dy * float(mask)
// with a rounding that compilers vectorize (|v| + 2^23 - 2^23 in round-to-nearest, sign restored; |v|
// >= 2^23 is already an integer), so outputs and gradients are bit-identical to LibTorch's
// (tests/quant/fused_fake_quant_test.cpp compares them, edge cases included).
// Dense float32 CPU tensors take this path; any other input (another dtype or device, overlapping
// strides) goes to at::fake_quantize_per_tensor_affine. Scale and zero point are plain numbers: the
// scale is not learned here (LSQ stays on LibTorch's learnable kernels).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace yq::quant {

// x: any shape -> same shape and strides. Gradient to x only (straight-through inside the range).
at::Tensor fake_quantize_per_tensor(const at::Tensor& x, float scale, int64_t zero_point, int64_t quant_min,
                                    int64_t quant_max);

// The forward pass alone, without recording anything for autograd; `mask` (bool, like x) receives the
// in-range flags when defined. For tests and for callers that need the mask themselves.
at::Tensor fake_quantize_per_tensor_forward(const at::Tensor& x, float scale, int64_t zero_point,
                                            int64_t quant_min, int64_t quant_max, at::Tensor* mask = nullptr);

// Process-wide switch, on by default: off sends every call to LibTorch's kernels (A/B benchmarks such as
// bench/bench_qat_step, or ruling this path out when debugging).
void set_fused_fake_quant(bool on);
bool fused_fake_quant_enabled();

}  // namespace yq::quant
