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

// act_fq(silu(pre_fq(x))) by table (quant/fused_act.h): idx[i] = clamp(q_pre(x[i]), quant_min - 1,
// quant_max + 1) - (quant_min - 1), so 0 and levels + 1 mark inputs the pre quantizer clamps;
// y[i] = table[idx[i]].
void pre_act_forward(const float* x, float* y, uint16_t* idx, int64_t n, const FakeQuantParams& pre,
                     const float* table);
// The index alone (the pre quantizer's code, as in pre_act_forward), and seen[k] = 1 for every index met.
void pre_index(const float* x, uint16_t* idx, int64_t n, const FakeQuantParams& pre, uint8_t* seen);
// y[i] = table[idx[i]].
void gather(const uint16_t* idx, const float* table, float* y, int64_t n);
// out[i] = (grad[i] * s[idx[i]]) * t[idx[i]]: SiLU's backward (dy * sigmoid * (1 + v (1 - sigmoid))) at the
// code's value, with s = 0 where either quantizer's straight-through mask is 0.
void pre_act_backward(const float* grad, const uint16_t* idx, const float* s, const float* t, float* out,
                      int64_t n);

}  // namespace yq::quant::kernels
