// FakeQuantize: an observer plus quantize-dequantize in the forward pass (PyTorch's FakeQuantize and
// _LearnableFakeQuantize in C++, DESIGN.md "Quantization").
//
// forward(x):
//   observer on   -> the observer records x and the qparams follow it (recomputed when needed);
//   fake quant on -> returns dequantize(quantize(x)) with LibTorch's own kernels:
//                    at::fake_quantize_per_tensor_affine (tensor qparams) /
//                    at::fake_quantize_per_channel_affine, whose gradient is straight-through inside
//                    [quant_min, quant_max] and zero outside; learnable (LSQ):
//                    at::_fake_quantize_learnable_per_tensor_affine / _per_channel_affine, which also give
//                    the scale (and zero point) a gradient;
//   fake quant off -> returns x unchanged.
// Both switches are uint8 buffers ("observer_enabled", "fake_quant_enabled"), so they are saved with the
// model like scale and zero_point.
//
// Typical use:
//   calibration (PTQ):  enable_observer(true), enable_fake_quant(false), run batches, then freeze();
//   QAT:                both on; later enable_observer(false) (or freeze()) to fix the ranges;
//   LSQ:                calibrate as above, then train: the scale is a parameter.
// With the observer on and fake quant off, qparams are not recomputed every batch (histogram searches are
// costly); they are brought up to date whenever they are needed: in forward with fake quant on,
// qparams(), enable_observer(false), enable_fake_quant(true), freeze(). Read them through qparams() (or
// call update_qparams()) before saving a checkpoint made in that state.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <memory>

#include "quant/observer.h"
#include "quant/qconfig.h"

namespace yq::quant {

// The observer options a spec describes.
ObserverOptions observer_options(const QuantSpec& spec);

class FakeQuantizeImpl : public torch::nn::Cloneable<FakeQuantizeImpl> {
 public:
  explicit FakeQuantizeImpl(QuantSpec spec);

  // (Re)builds the observer, buffers and parameters from the spec (torch::nn::Cloneable's reset: the
  // quantizer starts over, with both switches on).
  void reset() override;

  // x: any shape (per-channel: x.dim() > axis) -> same shape.
  torch::Tensor forward(const torch::Tensor& x);

  // Analysis tap (eval/analyze.h): when set, forward calls tap(input, output) after quantizing, with
  // the tensor this quantizer received and the one it returns (== input when fake quant is off). Not
  // part of the state dict and not saved; unset (the default) it costs one branch. clone() copies it.
  using Tap = std::function<void(const torch::Tensor& input, const torch::Tensor& output)>;
  void set_tap(Tap tap) { tap_ = std::move(tap); }
  void clear_tap() { tap_ = nullptr; }
  bool has_tap() const { return bool(tap_); }

  // What forward does before quantizing: the observer (when on) records x, and the qparams follow it
  // the next time they are needed (qparams(), forward with fake quant on). For callers that quantize x
  // themselves (quant/fused_act.h).
  void observe(const torch::Tensor& x);

  void enable_observer(bool on = true);
  void enable_fake_quant(bool on = true);
  bool observer_enabled() const;
  bool fake_quant_enabled() const;
  // LSQ only: whether scale / zero point receive gradients (on after reset()).
  void enable_learning(bool on = true);

  // Fixes the qparams to their current values: brings them up to date, turns the observer off and,
  // for LSQ, stops learning them.
  void freeze();
  // Sets the qparams ([1] or [C] scale; zero point of any number type, rounded) and freezes them.
  // E.g. the image input quantizer: set_qparams(1.0 / 255, 0) on an uint8 scheme.
  void set_qparams(const torch::Tensor& scale, const torch::Tensor& zero_point);
  void set_qparams(double scale, int64_t zero_point);
  // Recomputes scale / zero point from the observer now (LSQ: overwrites the learned values).
  void update_qparams();

  // Current qparams for export: scale float32 [1] or [C], zero point int64 [1] or [C] (LSQ: rounded and
  // clamped as the kernel uses it). Brings them up to date first.
  QParams qparams();
  const QuantSpec& spec() const { return spec_; }
  const QScheme& scheme() const { return spec_.scheme; }
  int64_t quant_min() const { return spec_.scheme.quant_min(); }
  int64_t quant_max() const { return spec_.scheme.quant_max(); }
  bool learnable() const { return spec_.learnable; }
  ObserverBase& observer() { return *observer_; }
  const ObserverBase& observer() const { return *observer_; }

  // The raw registered tensors: scale [1] / [C] float32; zero point [1] / [C], int32 (float32 for LSQ).
  const torch::Tensor& scale() const { return scale_; }
  const torch::Tensor& zero_point() const { return zero_point_; }

  void pretty_print(std::ostream& stream) const override;

 private:
  torch::Tensor quantize(const torch::Tensor& x);  // forward without the tap
  void refresh_if_stale();
  void copy_qparams(const torch::Tensor& scale, const torch::Tensor& zero_point);

  QuantSpec spec_;
  std::shared_ptr<ObserverBase> observer_;  // child module "observer"
  torch::Tensor scale_;                     // buffer, or parameter when learnable
  torch::Tensor zero_point_;                // buffer, or parameter when learnable and affine
  torch::Tensor observer_enabled_;          // buffer uint8 [1]
  torch::Tensor fake_quant_enabled_;        // buffer uint8 [1]
  bool stale_ = false;                      // observer saw data the qparams do not reflect yet
  Tap tap_;                                 // analysis tap (empty = none)
};
TORCH_MODULE(FakeQuantize);

}  // namespace yq::quant
