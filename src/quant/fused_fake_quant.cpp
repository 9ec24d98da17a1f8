#include "quant/fused_fake_quant.h"

#include <ATen/Parallel.h>
#include <ATen/record_function.h>
#include <torch/torch.h>

#include <atomic>
#include <cmath>

#include "core/error.h"
#include "quant/fused_fake_quant_kernels.h"

namespace yq::quant {

namespace {

std::atomic<bool> g_enabled{true};  // set_fused_fake_quant
constexpr int64_t kGrain = 32768;   // elements per parallel chunk

using kernels::FakeQuantParams;

bool fast_path(const at::Tensor& x) {
  return g_enabled.load(std::memory_order_relaxed) && x.defined() && x.device().is_cpu() &&
         x.scalar_type() == at::kFloat && x.layout() == at::kStrided && x.is_non_overlapping_and_dense();
}

// Two dense tensors whose elements correspond one to one in memory order.
bool same_layout(const at::Tensor& a, const at::Tensor& b) {
  return a.sizes() == b.sizes() && a.strides() == b.strides();
}

FakeQuantParams make_params(float scale, int64_t zero_point, int64_t quant_min, int64_t quant_max) {
  YQ_CHECK(scale > 0.0f && std::isfinite(scale), "fake quantize: scale must be positive and finite, got {}",
           scale);
  YQ_CHECK(quant_min <= zero_point && zero_point <= quant_max,
           "fake quantize: zero point {} is outside [{}, {}]", zero_point, quant_min, quant_max);
  return FakeQuantParams{scale, 1.0f / scale, float(zero_point), float(quant_min), float(quant_max)};
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
        const auto* mp = reinterpret_cast<const uint8_t*>(mask.data_ptr<bool>());
        float* op = gx.data_ptr<float>();
        at::parallel_for(0, g.numel(), kGrain, [&](int64_t begin, int64_t end) {
          kernels::fake_quant_backward(gp + begin, mp + begin, op + begin, end - begin);
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
  const FakeQuantParams p = make_params(scale, zero_point, quant_min, quant_max);
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
    auto* mp = reinterpret_cast<uint8_t*>(mask->data_ptr<bool>());
    at::parallel_for(0, x.numel(), kGrain, [&](int64_t begin, int64_t end) {
      kernels::fake_quant_forward_mask(xp + begin, yp + begin, mp + begin, end - begin, p);
    });
  } else {
    at::parallel_for(0, x.numel(), kGrain, [&](int64_t begin, int64_t end) {
      kernels::fake_quant_forward(xp + begin, yp + begin, end - begin, p);
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
