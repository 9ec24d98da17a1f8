#include "quant/fused_fake_quant_kernels.h"

#include <algorithm>
#include <cmath>

// Compiled also for AVX2 and AVX-512 on x86 with GCC or clang; the best one is chosen when the program
// starts (ifunc).
#if defined(__x86_64__) && defined(__has_attribute)
#if __has_attribute(target_clones) && !defined(__SANITIZE_ADDRESS__)
#define YQ_CPU_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#endif
#endif
#ifndef YQ_CPU_CLONES
#define YQ_CPU_CLONES
#endif

namespace yq::quant::kernels {

namespace {

constexpr float kTwo23 = 8388608.0f;              // 2^23: floats at or above it are integers
constexpr float kTwo63 = 9223372036854775808.0f;  // 2^63: the int64 range ends here

// Round half to even (std::nearbyint in the default rounding mode) without a library call: adding
// 2^23 to |v| < 2^23 leaves no fraction bits, so the float addition itself rounds. Every value is
// computed and then selected (no branches), which is what lets the loops vectorize.
inline float round_half_even(float v) {
  const float a = std::fabs(v);
  const float r = std::copysign((a + kTwo23) - kTwo23, v);
  return a < kTwo23 ? r : v;
}

// q as LibTorch's kernel has it after static_cast<int64_t>(zero_point + nearbyint(x * inv_scale)),
// kept in float: integer-valued floats convert exactly; NaN and values outside int64 become INT64_MIN
// (x86's conversion).
inline float quantized_value(float x, const FakeQuantParams& p) {
  const float q = p.zero_point + round_half_even(x * p.inv_scale);
  const bool representable = (q >= -kTwo63) & (q < kTwo63);
  return representable ? q : -kTwo63;
}

// q is never NaN here, so min / max do what LibTorch's fmin / fmax do.
inline float dequantized(float q, const FakeQuantParams& p) {
  return (std::min(std::max(q, p.quant_min), p.quant_max) - p.zero_point) * p.scale;
}

}  // namespace

YQ_CPU_CLONES
void fake_quant_forward(const float* __restrict x, float* __restrict y, int64_t n,
                        const FakeQuantParams& p_in) {
  const FakeQuantParams p = p_in;
  for (int64_t i = 0; i < n; ++i) y[i] = dequantized(quantized_value(x[i], p), p);
}

YQ_CPU_CLONES
void fake_quant_forward_mask(const float* __restrict x, float* __restrict y, uint8_t* __restrict mask,
                             int64_t n, const FakeQuantParams& p_in) {
  const FakeQuantParams p = p_in;
  for (int64_t i = 0; i < n; ++i) {
    const float q = quantized_value(x[i], p);
    y[i] = dequantized(q, p);
    mask[i] = static_cast<uint8_t>((q >= p.quant_min) & (q <= p.quant_max));
  }
}

YQ_CPU_CLONES
void fake_quant_backward(const float* __restrict grad, const uint8_t* __restrict mask, float* __restrict out,
                         int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = grad[i] * static_cast<float>(mask[i]);
}

YQ_CPU_CLONES
void pre_act_forward(const float* __restrict x, float* __restrict y, uint16_t* __restrict idx, int64_t n,
                     const FakeQuantParams& pre_in, const float* __restrict table) {
  const FakeQuantParams p = pre_in;
  const float lo = p.quant_min - 1, hi = p.quant_max + 1;
  for (int64_t i = 0; i < n; ++i) {
    const float q = std::min(std::max(quantized_value(x[i], p), lo), hi);
    const int k = static_cast<int>(q - lo);
    idx[i] = static_cast<uint16_t>(k);
    y[i] = table[k];
  }
}

YQ_CPU_CLONES
void pre_index(const float* __restrict x, uint16_t* __restrict idx, int64_t n, const FakeQuantParams& pre_in,
               uint8_t* __restrict seen) {
  const FakeQuantParams p = pre_in;
  const float lo = p.quant_min - 1, hi = p.quant_max + 1;
  for (int64_t i = 0; i < n; ++i)
    idx[i] =
        static_cast<uint16_t>(static_cast<int>(std::min(std::max(quantized_value(x[i], p), lo), hi) - lo));
  for (int64_t i = 0; i < n; ++i) seen[idx[i]] = 1;
}

YQ_CPU_CLONES
void gather(const uint16_t* __restrict idx, const float* __restrict table, float* __restrict y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = table[idx[i]];
}

YQ_CPU_CLONES
void pre_act_backward(const float* __restrict grad, const uint16_t* __restrict idx, const float* __restrict s,
                      const float* __restrict t, float* __restrict out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = (grad[i] * s[idx[i]]) * t[idx[i]];
}

}  // namespace yq::quant::kernels
