#include "quant/fused_fake_quant.h"

#include <ATen/Parallel.h>
#include <ATen/record_function.h>
#include <torch/torch.h>

#include <atomic>
#include <cmath>

#include "core/error.h"

// The loops below are written so that compilers vectorize them; on x86 with GCC or clang they are also
// compiled for AVX2 and AVX-512 and the best one is chosen when the program starts (ifunc).
#if defined(__x86_64__) && defined(__has_attribute)
#if __has_attribute(target_clones) && !defined(__SANITIZE_ADDRESS__)
#define YQ_CPU_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#endif
#endif
#ifndef YQ_CPU_CLONES
#define YQ_CPU_CLONES
#endif

namespace yq::quant {

namespace {

constexpr float kTwo23 = 8388608.0f;              // 2^23: floats at or above it are integers
constexpr float kTwo63 = 9223372036854775808.0f;  // 2^63: the int64 range ends here
std::atomic<bool> g_enabled{true};
constexpr int64_t kGrain = 32768;                 // elements per parallel chunk

struct Params {
  float scale, inv_scale, zero_point, quant_min, quant_max;
};

// Round half to even (std::nearbyint in the default rounding mode) without a library call: adding
// 2^23 to |v| < 2^23 leaves no fraction bits, so the float addition itself rounds.
inline float round_half_even(float v) {
  const float a = std::fabs(v);
  return a < kTwo23 ? std::copysign((a + kTwo23) - kTwo23, v) : v;
}

// q as LibTorch's kernel sees it after static_cast<int64_t>, kept in float: integer-valued floats
// convert exactly; NaN and values outside int64 become INT64_MIN (x86's cvttss2si).
inline float quantized_value(float x, const Params& p) {
  const float q = p.zero_point + round_half_even(x * p.inv_scale);
  return (q >= -kTwo63 && q < kTwo63) ? q : -kTwo63;
}

// q is never NaN here, so plain comparisons do what LibTorch's fmin / fmax do.
inline float clamp(float q, const Params& p) {
  return q < p.quant_min ? p.quant_min : (q > p.quant_max ? p.quant_max : q);
}

YQ_CPU_CLONES
void forward_kernel(const float* __restrict x, float* __restrict y, int64_t n, Params p) {
  for (int64_t i = 0; i < n; ++i) {
    const float q = quantized_value(x[i], p);
    y[i] = (clamp(q, p) - p.zero_point) * p.scale;
  }
}

YQ_CPU_CLONES
void forward_mask_kernel(const float* __restrict x, float* __restrict y, bool* __restrict mask, int64_t n,
                         Params p) {
  for (int64_t i = 0; i < n; ++i) {
    const float q = quantized_value(x[i], p);
    y[i] = (clamp(q, p) - p.zero_point) * p.scale;
    mask[i] = (q >= p.quant_min) & (q <= p.quant_max);
  }
}

YQ_CPU_CLONES
void backward_kernel(const float* __restrict grad, const bool* __restrict mask, float* __restrict out,
                     int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = grad[i] * static_cast<float>(mask[i]);
}

bool fast_path(const at::Tensor& x) {
  return g_enabled.load(std::memory_order_relaxed) && x.defined() && x.device().is_cpu() && x.scalar_type() == at::kFloat && x.layout() == at::kStrided &&
         x.is_non_overlapping_and_dense();
}

// Two dense tensors whose elements correspond one to one in memory order.
bool same_layout(const at::Tensor& a, const at::Tensor& b) {
  return a.sizes() == b.sizes() && a.strides() == b.strides();
}

Params make_params(float scale, int64_t zero_point, int64_t quant_min, int64_t quant_max) {
  YQ_CHECK(scale > 0.0f && std::isfinite(scale), "fake quantize: scale must be positive and finite, got {}",
           scale);
  YQ_CHECK(quant_min <= zero_point && zero_point <= quant_max,
           "fake quantize: zero point {} is outside [{}, {}]", zero_point, quant_min, quant_max);
  return Params{scale, 1.0f / scale, float(zero_point), float(quant_min), float(quant_max)};
}

class FakeQuantizePerTensorFunction : public torch::autograd::Function<FakeQuantizePerTensorFunction> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, double scale,
                            int64_t zero_point, int64_t quant_min, int64_t quant_max) {
    at::Tensor mask;
    at::Tensor y = fake_quantize_per_tensor_forward(x, float(scale), zero_point, quant_min, quant_max, &mask);
    ctx->save_for_backward({mask});
    return y;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    RECORD_FUNCTION("yq::fake_quantize_per_tensor_backward", std::vector<c10::IValue>());
    const at::Tensor mask = ctx->get_saved_variables()[0];
    const at::Tensor& g = grads[0];
    at::Tensor gx;
    if (g.defined()) {
      if (fast_path(g) && same_layout(g, mask)) {
        gx = at::empty_like(g);
        const float* gp = g.data_ptr<float>();
        const bool* mp = mask.data_ptr<bool>();
        float* op = gx.data_ptr<float>();
        at::parallel_for(0, g.numel(), kGrain, [&](int64_t begin, int64_t end) {
          backward_kernel(gp + begin, mp + begin, op + begin, end - begin);
        });
      } else {
        gx = g * mask;  // LibTorch's own backward
      }
    }
    return {gx, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

void set_fused_fake_quant(bool on) {
  g_enabled.store(on);
}

bool fused_fake_quant_enabled() {
  return g_enabled.load();
}

at::Tensor fake_quantize_per_tensor_forward(const at::Tensor& x, float scale, int64_t zero_point,
                                            int64_t quant_min, int64_t quant_max, at::Tensor* mask) {
  RECORD_FUNCTION("yq::fake_quantize_per_tensor", std::vector<c10::IValue>());
  const Params p = make_params(scale, zero_point, quant_min, quant_max);
  if (!fast_path(x)) {
    auto [y, m] =
        at::fake_quantize_per_tensor_affine_cachemask(x.detach(), scale, zero_point, quant_min, quant_max);
    if (mask) *mask = m;
    return y;
  }
  // empty_like keeps the strides of a dense tensor (channels-last stays channels-last), so the flat
  // loops below walk x, y and the mask in the same order.
  at::Tensor y = at::empty_like(x);
  const float* xp = x.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  if (mask) {
    *mask = at::empty_like(x, x.options().dtype(at::kBool));
    bool* mp = mask->data_ptr<bool>();
    at::parallel_for(0, x.numel(), kGrain, [&](int64_t begin, int64_t end) {
      forward_mask_kernel(xp + begin, yp + begin, mp + begin, end - begin, p);
    });
  } else {
    at::parallel_for(0, x.numel(), kGrain, [&](int64_t begin, int64_t end) {
      forward_kernel(xp + begin, yp + begin, end - begin, p);
    });
  }
  return y;
}

at::Tensor fake_quantize_per_tensor(const at::Tensor& x, float scale, int64_t zero_point, int64_t quant_min,
                                    int64_t quant_max) {
  if (!fast_path(x)) return at::fake_quantize_per_tensor_affine(x, scale, zero_point, quant_min, quant_max);
  if (!(torch::GradMode::is_enabled() && x.requires_grad()))
    return fake_quantize_per_tensor_forward(x, scale, zero_point, quant_min, quant_max);
  return FakeQuantizePerTensorFunction::apply(x, double(scale), zero_point, quant_min, quant_max);
}

}  // namespace yq::quant
