// The building blocks of YOLOv8 (SPEC-YOLOV8.md "Modules"): ConvBnAct, Bottleneck, C2f, SPPF,
// Concat, Upsample and the Detect head with its DFL.
//
// Quantization-aware by construction (DESIGN.md "Quantization"): every tensor that flows between
// layers is produced by one module, so the quantizer of that tensor has one obvious owner.
//  - ConvBnAct (conv -> bn -> SiLU) is the unit; its children are named `conv` and `bn` as in the
//    reference state dict. Modes: float, fused (BN folded, quant/fusion.h) and QAT (BN folding
//    simulated, quant/qat_modules.h).
//  - Junctions are small modules of their own: Add (residual), Concat, Split (channel chunks),
//    MaxPool, Upsample. They hold no parameters, so they do not change the state dict.
// Child names follow the reference's state-dict names (cv1, cv2, m, cv3, dfl).
#pragma once

#include <torch/torch.h>

#include <vector>

#include "quant/fake_quantize.h"

namespace yq::model {

inline constexpr double kBnEps = 1e-3;
inline constexpr double kBnMomentum = 0.03;
inline constexpr int64_t kRegMax = 16;  // DFL bins per box side

// Conv2d(c1 -> c2, k, stride s, padding k / 2, no bias) -> BatchNorm2d(eps 1e-3, momentum 0.03)
// -> SiLU. The reference calls it Conv.
struct ConvBnActOptions {
  ConvBnActOptions(int64_t c1, int64_t c2, int64_t k = 1, int64_t s = 1) : c1_(c1), c2_(c2), k_(k), s_(s) {}
  TORCH_ARG(int64_t, c1);
  TORCH_ARG(int64_t, c2);
  TORCH_ARG(int64_t, k);
  TORCH_ARG(int64_t, s);
};

// How ConvBnAct computes its output (quant/qat_modules.h has the fused and QAT math).
enum class ConvMode {
  kFloat,  // silu(bn(conv(x)))
  kFused,  // silu(conv(x, W * g, beta - mean * g)) with g = gamma / sqrt(running_var + eps)
  kQat,    // BN folding simulated with fake-quantized folded weights (quant::prepare sets it)
};

class ConvBnActImpl : public torch::nn::Module {
 public:
  explicit ConvBnActImpl(const ConvBnActOptions& o);
  ConvBnActImpl(int64_t c1, int64_t c2, int64_t k = 1, int64_t s = 1)
      : ConvBnActImpl(ConvBnActOptions(c1, c2, k, s)) {}
  torch::Tensor forward(const torch::Tensor& x);  // [B, c1, H, W] -> [B, c2, H / s, W / s]

  const ConvBnActOptions& options() const { return options_; }
  torch::nn::Conv2d conv{nullptr};
  torch::nn::BatchNorm2d bn{nullptr};

  // Quantization state, installed by quant::prepare (empty holders = none). weight_fq quantizes the
  // BN-folded weight per output channel (child "weight_fq"); pre_fq the conv output before SiLU
  // ("pre_fq": an int8 model's conv writes that grid, and its SiLU is a lookup table from pre_fq's to
  // act_fq's qparams); act_fq the output after SiLU ("act_fq").
  ConvMode mode = ConvMode::kFloat;
  quant::FakeQuantize weight_fq{nullptr};
  quant::FakeQuantize pre_fq{nullptr};
  quant::FakeQuantize act_fq{nullptr};
  bool bn_frozen = false;  // QAT: BN uses (and no longer updates) its running statistics

 private:
  ConvBnActOptions options_;
};
TORCH_MODULE(ConvBnAct);

// Residual junction: a + b. Quantized, the sum has its own output quantizer (child "out_fq").
class AddImpl : public torch::nn::Module {
 public:
  torch::Tensor forward(const torch::Tensor& a, const torch::Tensor& b);
  quant::FakeQuantize out_fq{nullptr};
};
TORCH_MODULE(Add);

// Channel concatenation junction (dim 1 for NCHW). Quantized, all inputs and the output share one
// quantizer (the TensorRT rule that avoids requantization): it sits on the output (child "out_fq"), and
// an int8 model requantizes each input to its qparams.
class ConcatImpl : public torch::nn::Module {
 public:
  explicit ConcatImpl(int64_t dim = 1) : dim_(dim) {}
  torch::Tensor forward(const std::vector<torch::Tensor>& xs);
  int64_t dim() const { return dim_; }
  quant::FakeQuantize out_fq{nullptr};

 private:
  int64_t dim_;
};
TORCH_MODULE(Concat);

// Split, MaxPool and Upsample select or repeat values, so a quantized input stays on its grid: they
// pass the input's qparams through and hold no quantizer.

// Splits [B, C, H, W] into `parts` equal channel chunks (C2f's split).
class SplitImpl : public torch::nn::Module {
 public:
  explicit SplitImpl(int64_t parts = 2) : parts_(parts) {}
  std::vector<torch::Tensor> forward(const torch::Tensor& x);
  int64_t parts() const { return parts_; }

 private:
  int64_t parts_;
};
TORCH_MODULE(Split);

// Max pooling, kernel k, stride 1, padding k / 2 (SPPF); keeps H and W.
class MaxPoolImpl : public torch::nn::Module {
 public:
  explicit MaxPoolImpl(int64_t k = 5) : k_(k) {}
  torch::Tensor forward(const torch::Tensor& x);
  int64_t kernel() const { return k_; }

 private:
  int64_t k_;
};
TORCH_MODULE(MaxPool);

// Nearest-neighbour upsampling by an integer factor.
class UpsampleImpl : public torch::nn::Module {
 public:
  explicit UpsampleImpl(int64_t scale = 2) : scale_(scale) {}
  torch::Tensor forward(const torch::Tensor& x);  // [B, C, H, W] -> [B, C, H * s, W * s]
  int64_t scale() const { return scale_; }

 private:
  int64_t scale_;
};
TORCH_MODULE(Upsample);

// cv1 = Conv(c1, c2, 3), cv2 = Conv(c2, c2, 3) (e = 1.0); adds the input when shortcut and c1 == c2.
class BottleneckImpl : public torch::nn::Module {
 public:
  BottleneckImpl(int64_t c1, int64_t c2, bool shortcut);
  torch::Tensor forward(const torch::Tensor& x);
  bool has_residual() const { return !add.is_empty(); }

  ConvBnAct cv1{nullptr}, cv2{nullptr};
  Add add{nullptr};  // registered only when the residual is used
};
TORCH_MODULE(Bottleneck);

// C2f(c1, c2, n, shortcut): cv1 = Conv(c1, 2c, 1) with c = c2 / 2, split in two halves, n
// Bottlenecks each on the last chunk, cv2 = Conv((2 + n) c, c2, 1) on the concat of all chunks.
class C2fImpl : public torch::nn::Module {
 public:
  C2fImpl(int64_t c1, int64_t c2, int64_t n, bool shortcut);
  torch::Tensor forward(const torch::Tensor& x);  // [B, c1, H, W] -> [B, c2, H, W]

  ConvBnAct cv1{nullptr}, cv2{nullptr};
  torch::nn::ModuleList m{nullptr};  // of Bottleneck
  Split split{nullptr};
  Concat cat{nullptr};
};
TORCH_MODULE(C2f);

// SPPF(c1, c2, k): cv1 = Conv(c1, c1 / 2, 1); three chained k x k max-pools; cv2 = Conv(2 c1, c2, 1)
// on concat(x, y1, y2, y3).
class SPPFImpl : public torch::nn::Module {
 public:
  SPPFImpl(int64_t c1, int64_t c2, int64_t k = 5);
  torch::Tensor forward(const torch::Tensor& x);

  ConvBnAct cv1{nullptr}, cv2{nullptr};
  MaxPool m{nullptr};
  Concat cat{nullptr};
};
TORCH_MODULE(SPPF);

// Distribution focal loss integral: softmax over 16 bins per side, expectation with the frozen
// 1x1 conv whose weights are 0..15.
class DFLImpl : public torch::nn::Module {
 public:
  explicit DFLImpl(int64_t bins = kRegMax);
  torch::Tensor forward(const torch::Tensor& x);  // [B, 4 * bins, A] -> [B, 4, A]

  torch::nn::Conv2d conv{nullptr};

 private:
  int64_t bins_;
};
TORCH_MODULE(DFL);

// Detect(nc, ch): per level i a box branch cv2[i] (Conv 3, Conv 3, Conv2d 1x1 -> 64 with bias)
// and a class branch cv3[i] (Conv 3, Conv 3, Conv2d 1x1 -> nc with bias).
class DetectImpl : public torch::nn::Module {
 public:
  DetectImpl(int64_t nc, const std::vector<int64_t>& ch);

  // Raw head outputs per level: [B, 64 + nc, H_i, W_i] (box distribution bins first, class logits
  // after). This is what the loss takes.
  std::vector<torch::Tensor> forward(const std::vector<torch::Tensor>& feats);
  // Decodes raw outputs: [B, 4 + nc, A] with rows cx, cy, w, h in input pixels, then sigmoid
  // class scores; A = sum H_i * W_i, levels in order. Float only (DFL and decoding stay float).
  torch::Tensor decode(const std::vector<torch::Tensor>& raw);

  // Sets the head biases from the strides (box bias 1.0, class bias log(5 / nc / (640 / s)^2))
  // and remembers the strides for decoding.
  void init_bias(const std::vector<int64_t>& strides);

  int64_t nc() const { return nc_; }
  int64_t nl() const { return static_cast<int64_t>(ch_.size()); }
  int64_t no() const { return nc_ + 4 * kRegMax; }  // outputs per anchor
  const std::vector<int64_t>& strides() const { return strides_; }
  const std::vector<int64_t>& in_channels() const { return ch_; }

  torch::nn::ModuleList cv2{nullptr};  // of Sequential(ConvBnAct, ConvBnAct, Conv2d)
  torch::nn::ModuleList cv3{nullptr};
  DFL dfl{nullptr};

  // Quantizers of the final 1x1 convs cv2[i][2] / cv3[i][2] per level (empty holders = float),
  // installed by quant::prepare as children "weight_fq" / "act_fq" of those convs. DFL, decoding and
  // sigmoid always stay float.
  std::vector<quant::FakeQuantize> box_weight_fq, box_act_fq, cls_weight_fq, cls_act_fq;  // [nl] each

 private:
  int64_t nc_;
  std::vector<int64_t> ch_;
  std::vector<int64_t> strides_;
};
TORCH_MODULE(Detect);

}  // namespace yq::model
