#include "quant/fused_act.h"

#include <ATen/Parallel.h>
#include <ATen/record_function.h>
#include <torch/torch.h>

#include <limits>
#include <vector>

#include "core/error.h"
#include "quant/fused_fake_quant.h"
#include "quant/fused_fake_quant_kernels.h"

namespace yq::quant {

namespace {

constexpr int64_t kGrain = 32768;  // elements per parallel chunk
constexpr int64_t kPad = 512;      // table length given to LibTorch's kernels: a multiple of every vector
                                   // width, so each entry takes the vectorized path

struct Tables {
  at::Tensor out, s, t;  // [levels + 2]: index 0 / levels + 1 = clamped below / above by the pre quantizer
};

// The pre quantizer's output at every index [kPad] (index k = code quant_min - 1 + k, clamped; LibTorch's
// fake quant of a grid value is the grid value).
at::Tensor pre_values(const ActGrid& pre) {
  const int64_t levels = pre.quant_max - pre.quant_min + 1;
  YQ_CHECK(levels >= 2 && levels + 2 <= kPad, "fused activation: {} pre-quantizer levels", levels);
  at::Tensor code = (at::arange(kPad, at::kLong) + (pre.quant_min - 1)).clamp(pre.quant_min, pre.quant_max);
  return at::fake_quantize_per_tensor_affine((code - pre.zero_point).to(at::kFloat) * pre.scale, pre.scale,
                                             pre.zero_point, pre.quant_min, pre.quant_max);
}

// v: pre_values(pre); silu_v: at::silu(v).
Tables make_tables(const ActGrid& pre, const at::Tensor& v, const at::Tensor& silu_v, const ActGrid& act) {
  const int64_t n = pre.quant_max - pre.quant_min + 3;  // levels + 2
  at::Tensor mask;
  at::Tensor out = fake_quantize_per_tensor_forward(silu_v, act.scale, act.zero_point, act.quant_min,
                                                    act.quant_max, &mask);
  at::Tensor sig = 1 / (1 + at::exp(-v));  // as SiLU's backward kernel computes it
  at::Tensor t = 1 + v * (1 - sig);
  at::Tensor s = at::where(mask, sig, at::zeros_like(sig));
  s[0] = 0;  // clamped by the pre quantizer: no gradient
  s[n - 1] = 0;
  return {out.narrow(0, 0, n).contiguous(), s.narrow(0, 0, n).contiguous(), t.narrow(0, 0, n).contiguous()};
}

Tables make_tables(const ActGrid& pre, const ActGrid& act) {
  const at::Tensor v = pre_values(pre);
  return make_tables(pre, v, at::silu(v), act);
}

// x: a dense float32 CPU tensor (the kernels walk it flat, in memory order).
bool dense(const at::Tensor& x) {
  return x.device().is_cpu() && x.scalar_type() == at::kFloat && x.layout() == at::kStrided &&
         x.is_non_overlapping_and_dense();
}

kernels::FakeQuantParams params(const ActGrid& g) {
  YQ_CHECK(g.scale > 0.0f && std::isfinite(g.scale), "fused activation: scale must be positive, got {}",
           g.scale);
  return {g.scale, 1.0f / g.scale, float(g.zero_point), float(g.quant_min), float(g.quant_max)};
}

at::Tensor forward_impl(const at::Tensor& x, const ActGrid& pre, const Tables& tab, at::Tensor* idx_out) {
  RECORD_FUNCTION("yq::fake_quant_silu_fake_quant", std::vector<c10::IValue>());
  const kernels::FakeQuantParams p = params(pre);
  at::Tensor y = at::empty_like(x);
  at::Tensor idx = at::empty_like(x, x.options().dtype(at::kShort));
  const float* xp = x.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  auto* ip = reinterpret_cast<uint16_t*>(idx.data_ptr<int16_t>());
  const float* table = tab.out.data_ptr<float>();
  at::parallel_for(0, x.numel(), kGrain, [&](int64_t b, int64_t e) {
    kernels::pre_act_forward(xp + b, yp + b, ip + b, e - b, p, table);
  });
  if (idx_out) *idx_out = idx;
  return y;
}

// The index pass with the set of indices met, then act = act_for_range(range of SiLU over them), then
// the table pass.
at::Tensor forward_observing(const at::Tensor& x, const ActGrid& pre,
                             const std::function<ActGrid(float, float)>& act_for_range, at::Tensor* idx_out,
                             Tables* tab_out) {
  RECORD_FUNCTION("yq::fake_quant_silu_fake_quant", std::vector<c10::IValue>());
  const kernels::FakeQuantParams p = params(pre);
  const int64_t levels = pre.quant_max - pre.quant_min + 1;
  at::Tensor idx = at::empty_like(x, x.options().dtype(at::kShort));
  const float* xp = x.data_ptr<float>();
  auto* ip = reinterpret_cast<uint16_t*>(idx.data_ptr<int16_t>());
  const int threads = at::get_num_threads();
  std::vector<uint8_t> seen(size_t(threads) * size_t(levels + 2), 0);
  at::parallel_for(0, x.numel(), kGrain, [&](int64_t b, int64_t e) {
    kernels::pre_index(xp + b, ip + b, e - b, p,
                       seen.data() + size_t(at::get_thread_num()) * size_t(levels + 2));
  });
  const at::Tensor v = pre_values(pre), sv = at::silu(v);
  const float* svp = sv.data_ptr<float>();
  float mn = std::numeric_limits<float>::infinity(), mx = -mn;
  for (int64_t k = 0; k < levels + 2; ++k) {
    bool met = false;
    for (int t = 0; t < threads; ++t) met = met || seen[size_t(t) * size_t(levels + 2) + size_t(k)];
    if (met) mn = std::min(mn, svp[k]), mx = std::max(mx, svp[k]);
  }
  const ActGrid act = act_for_range(mn, mx);
  Tables tab = make_tables(pre, v, sv, act);
  at::Tensor y = at::empty_like(x);
  float* yp = y.data_ptr<float>();
  const float* table = tab.out.data_ptr<float>();
  at::parallel_for(0, x.numel(), kGrain,
                   [&](int64_t b, int64_t e) { kernels::gather(ip + b, table, yp + b, e - b); });
  if (idx_out) *idx_out = idx;
  if (tab_out) *tab_out = std::move(tab);
  return y;
}

class PreSiluAct : public torch::autograd::Function<PreSiluAct> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, ActGrid pre,
                            ActGrid act) {
    const Tables tab = make_tables(pre, act);
    at::Tensor idx;
    at::Tensor y = forward_impl(x, pre, tab, &idx);
    ctx->save_for_backward({idx, tab.s, tab.t});
    return y;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    RECORD_FUNCTION("yq::fake_quant_silu_fake_quant_backward", std::vector<c10::IValue>());
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &idx = saved[0], &s = saved[1], &t = saved[2];
    at::Tensor g = grads[0];
    at::Tensor gx;
    if (g.defined()) {
      if (g.strides() != idx.strides()) g = at::empty_like(idx, g.options()).copy_(g);  // idx's layout
      gx = at::empty_like(g);
      const float* gp = g.data_ptr<float>();
      const auto* ip = reinterpret_cast<const uint16_t*>(idx.data_ptr<int16_t>());
      const float *sp = s.data_ptr<float>(), *tp = t.data_ptr<float>();
      float* op = gx.data_ptr<float>();
      at::parallel_for(0, g.numel(), kGrain, [&](int64_t b, int64_t e) {
        kernels::pre_act_backward(gp + b, ip + b, sp, tp, op + b, e - b);
      });
    }
    return {gx, at::Tensor(), at::Tensor()};
  }
};

// The observing variant (the act grid comes from the callback between the two passes).
class PreSiluActObserving : public torch::autograd::Function<PreSiluActObserving> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, ActGrid pre,
                            const std::function<ActGrid(float, float)>* act_for_range) {
    at::Tensor idx;
    Tables tab;
    at::Tensor y = forward_observing(x, pre, *act_for_range, &idx, &tab);
    ctx->save_for_backward({idx, tab.s, tab.t});
    return y;
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto g = PreSiluAct::backward(ctx, grads);
    return {g[0], at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor fake_quant_silu_fake_quant(const at::Tensor& x, const ActGrid& pre,
                                      const std::function<ActGrid(float, float)>& act_for_range) {
  if (!dense(x)) {  // the three ops, the act range observed on SiLU's output
    at::Tensor y =
        at::fake_quantize_per_tensor_affine(x, pre.scale, pre.zero_point, pre.quant_min, pre.quant_max);
    y = at::silu(y);
    at::Tensor d = y.detach();
    const ActGrid act = act_for_range(d.min().item<float>(), d.max().item<float>());
    return at::fake_quantize_per_tensor_affine(y, act.scale, act.zero_point, act.quant_min, act.quant_max);
  }
  if (!(torch::GradMode::is_enabled() && x.requires_grad()))
    return forward_observing(x, pre, act_for_range, nullptr, nullptr);
  return PreSiluActObserving::apply(x, pre, &act_for_range);
}

at::Tensor fake_quant_silu_fake_quant(const at::Tensor& x, const ActGrid& pre, const ActGrid& act) {
  if (!dense(x)) {  // the three ops
    at::Tensor y =
        at::fake_quantize_per_tensor_affine(x, pre.scale, pre.zero_point, pre.quant_min, pre.quant_max);
    return at::fake_quantize_per_tensor_affine(at::silu(y), act.scale, act.zero_point, act.quant_min,
                                               act.quant_max);
  }
  if (!(torch::GradMode::is_enabled() && x.requires_grad()))
    return forward_impl(x, pre, make_tables(pre, act), nullptr);
  return PreSiluAct::apply(x, pre, act);
}

}  // namespace yq::quant
