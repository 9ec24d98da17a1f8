// The quantization-aware computations of the model's layers (DESIGN.md "Quantization").
//
// The model is quantization-aware by construction: its modules carry optional quantizers
// (model/blocks.h: ConvBnAct::weight_fq / act_fq, Add::out_fq, Concat::out_fq, the head's final
// conv quantizers, YoloV8::input_fq) that quant::prepare installs; the modules call these functions
// when they have them.
//
// ConvBnAct in QAT mode (PyTorch's ConvBn QAT recipe), g = gamma / sqrt(running_var + eps):
//  - weight fake quant on, training, BN not frozen:
//        y = BN_batch(conv(x, fq_w(W * g)) / g)     (BN with batch statistics, which it updates;
//                                                    computed as conv(x, fq_w(W * g) / g))
//  - weight fake quant on, eval or BN frozen: the inference folding,
//        y = conv(x, fq_w(W * g)) + (beta - running_mean * g)
//  - weight fake quant off: the float math, y = BN(conv(x, W)) (running statistics when frozen);
//    an enabled weight observer still watches W * g (PTQ calibration).
//  then out = fq_a(silu(fq_pre(y))) with the quantizers it has (fq_pre: the conv output's grid, which
//  a real int8 conv writes before its SiLU lookup table).
// With every quantizer off, the output is bit-identical to the float model's.
// Fused mode: out = silu(conv(x, W * g) + beta - running_mean * g) (quant/fusion.h).
#pragma once

#include <torch/torch.h>

#include "model/blocks.h"

namespace yq::quant {

// ConvBnAct's forward in fused or QAT mode (see above). [B, c1, H, W] -> [B, c2, H / s, W / s]
torch::Tensor conv_bn_act_forward(model::ConvBnActImpl& m, const torch::Tensor& x);

// A plain conv (the head's final 1x1 convs) with an optional weight quantizer (per output channel)
// and output quantizer; empty holders are skipped.
torch::Tensor quantized_conv_forward(torch::nn::Conv2dImpl& conv, const torch::Tensor& x, FakeQuantize& wfq,
                                     FakeQuantize& afq);

}  // namespace yq::quant
