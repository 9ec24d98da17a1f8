// act_fq(silu(pre_fq(x))) as one autograd op: the tail of every ConvBnAct in QAT once its two activation
// quantizers are fixed (observers off, not learnable, per tensor).
//
// The pre quantizer's output takes one of (quant_max - quant_min + 1) values, so SiLU and the act
// quantizer collapse into a table indexed by the pre code, and the backward into one multiply per
// element by tables of SiLU's derivative at those values (zero where either straight-through mask is
// zero). The forward keeps 2 bytes per element for the backward (the index) where the three-op chain
// keeps 10 (pre mask, pre output for SiLU's backward, SiLU output, act mask) and writes two fewer
// activation-sized tensors.
//
// The tables are computed with LibTorch's own kernels (fake quant, at::silu / at::exp on the 256 grid
// values), and the backward multiplies in SiLU-backward's order (dy * sigmoid) * (1 + v (1 - sigmoid)),
// so results equal the chain's, except where LibTorch's SiLU kernel took its scalar path (a vector loop's
// last few elements use std::exp instead of the vectorized exp, which may differ by one ulp and, rarely,
// move an output by one act step). tests/quant/fused_act_test.cpp bounds that.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>

namespace yq::quant {

struct ActGrid {
  float scale = 1;
  int64_t zero_point = 0, quant_min = 0, quant_max = 255;
};

// x: dense float32 CPU (any memory format) -> same shape and strides; gradient to x.
at::Tensor fake_quant_silu_fake_quant(const at::Tensor& x, const ActGrid& pre, const ActGrid& act);

// The same while the act quantizer still observes with a min / max observer: its batch range is
// silu(v) over the pre-quantizer values v that occur in x (the chain's SiLU output takes exactly those
// values), so `act_for_range(min, max)` is called with it (it observes the range and returns the act
// grid to use) between the index pass and the table pass.
at::Tensor fake_quant_silu_fake_quant(const at::Tensor& x, const ActGrid& pre,
                                      const std::function<ActGrid(float, float)>& act_for_range);

}  // namespace yq::quant
