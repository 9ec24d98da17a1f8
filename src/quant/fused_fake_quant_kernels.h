// The element loops of quant/fused_fake_quant.h on raw float arrays (no LibTorch here, so this file
// compiles with the flags that let compilers vectorize it: -fno-trapping-math, set in CMakeLists.txt,
// which changes no value, only whether floating-point exception flags may be raised speculatively).
// See fused_fake_quant.h for the math; callers split the work into chunks and pass each one here.
#pragma once

#include <cstdint>

namespace yq::quant::kernels {

struct FakeQuantParams {
  float scale, inv_scale;  // inv_scale = 1.0f / scale, as LibTorch computes it
  float zero_point, quant_min, quant_max;
};

// y[i] = fake_quant(x[i]) for i < n.
void fake_quant_forward(const float* x, float* y, int64_t n, const FakeQuantParams& p);
// The same, and mask[i] = 1 when x[i] quantizes inside [quant_min, quant_max], else 0.
void fake_quant_forward_mask(const float* x, float* y, uint8_t* mask, int64_t n, const FakeQuantParams& p);
// out[i] = grad[i] * float(mask[i]) (LibTorch's straight-through backward, signed zeros included).
void fake_quant_backward(const float* grad, const uint8_t* mask, float* out, int64_t n);

}  // namespace yq::quant::kernels
