// Observers: modules that watch tensors and choose a quantization range (PyTorch's
// torch.ao.quantization.observer in C++, DESIGN.md "Quantization").
//
// Every observer is a torch::nn::Module whose statistics live in buffers, so they save and load with
// the model (torch::save / torch::load) and move with it (to(device)). The common interface:
//   observe(x)   records statistics of x (detached, no autograd graph, returns nothing);
//   qparams()    scale and zero point from the statistics (scale 1, zero point 0 before any observe());
//   reset()      forgets the statistics;
//   min_val(), max_val()  the running range (what qparams() starts from).
// Scale and zero point always come from calculate_qparams (scheme.h), the one place of that math.
//
// Observers by registry name (make_observer):
//   minmax                             running min / max (per-tensor)           = MinMaxObserver
//   moving_average_minmax              min/max averaged over batches            = MovingAverageMinMaxObserver
//   per_channel_minmax                 running min / max per channel            = PerChannelMinMaxObserver
//   moving_average_per_channel_minmax  per-channel moving average               =
//   MovingAveragePerChannelMinMaxObserver histogram                          2048-bin histogram + PyTorch's
//   L2 search = HistogramObserver percentile                         histogram, range = [100 - p, p]
//   percentiles (yoloqat's design) mse                                histogram, range minimising the
//   quantization MSE (yoloqat's design)
// The PyTorch-named ones reproduce PyTorch 1.13's scale and zero point for the same inputs
// (tests/quant/golden). The histogram family is per-tensor only; the per_channel_* ones need a
// per-channel scheme and the others a per-tensor one.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "quant/scheme.h"

namespace yq::quant {

struct ObserverOptions {
  QScheme scheme;
  double averaging_constant = 0.01;  // moving-average observers: m <- m + c * (batch - m), c in (0, 1]
  int64_t bins = 2048;               // histogram family: number of histogram bins
  int64_t upsample_rate = 128;       // histogram family: resolution used when the range widens
  double percentile = 99.99;   // percentile: clip at the (100 - p)th and p-th percentile, p in (50, 100]
  int64_t search_steps = 100;  // mse: candidate ranges k / search_steps of the observed one, k = 1..steps
};

class ObserverBase : public torch::nn::Module {
 public:
  explicit ObserverBase(ObserverOptions options);

  // Records statistics of x (any shape; per-channel observers need x.dim() > axis). No gradient is
  // recorded. Empty tensors are ignored.
  virtual void observe(const torch::Tensor& x) = 0;
  // Observes x and returns it unchanged (so an observer can sit in a forward pass).
  torch::Tensor forward(const torch::Tensor& x);
  // Scale [1] or [C] (float32) and zero point [1] or [C] (int64) for the statistics so far.
  virtual QParams qparams() const;
  // Forgets all statistics (the freshly constructed state).
  virtual void reset() = 0;
  // Registry name ("minmax", ...).
  virtual std::string kind() const = 0;
  // True once observe() has seen a non-empty tensor.
  bool has_observed() const;

  // Running range: 0-dim per-tensor; [C] per-channel ([0] before the first observe()).
  const torch::Tensor& min_val() const { return min_val_; }
  const torch::Tensor& max_val() const { return max_val_; }
  const ObserverOptions& options() const { return options_; }
  const QScheme& scheme() const { return options_.scheme; }

  // A deep copy: the same kind and options with copies of the buffers. (torch::nn::Cloneable does this
  // for concrete modules; observers share a polymorphic base, so the base implements it.)
  std::shared_ptr<torch::nn::Module> clone(
      const c10::optional<torch::Device>& device = c10::nullopt) const override;
  void pretty_print(std::ostream& stream) const override;

 protected:
  // A fresh observer of the same kind and options.
  virtual std::shared_ptr<ObserverBase> make_fresh() const = 0;
  // Copies every buffer of `other` (same kind) into this observer's buffers.
  void copy_buffers_from(const ObserverBase& other, const c10::optional<torch::Device>& device);

  ObserverOptions options_;
  torch::Tensor min_val_;  // buffer "min_val"
  torch::Tensor max_val_;  // buffer "max_val"

 private:
  // Called by a torch::nn::Cloneable parent's clone(): makes this (fresh) observer a copy of `other`.
  void clone_(torch::nn::Module& other, const c10::optional<torch::Device>& device) override;
};

// Running min and max over every observed tensor. Per-tensor schemes.
class MinMaxObserverImpl : public ObserverBase {
 public:
  explicit MinMaxObserverImpl(ObserverOptions options);
  void observe(const torch::Tensor& x) override;
  void reset() override;
  std::string kind() const override { return "minmax"; }

 protected:
  std::shared_ptr<ObserverBase> make_fresh() const override;
};
TORCH_MODULE(MinMaxObserver);

// First batch's min / max, then m <- m + averaging_constant * (batch - m). Per-tensor schemes.
class MovingAverageMinMaxObserverImpl : public MinMaxObserverImpl {
 public:
  explicit MovingAverageMinMaxObserverImpl(ObserverOptions options);
  void observe(const torch::Tensor& x) override;
  std::string kind() const override { return "moving_average_minmax"; }

 protected:
  std::shared_ptr<ObserverBase> make_fresh() const override;
};
TORCH_MODULE(MovingAverageMinMaxObserver);

// Running min and max of every slice along scheme.axis. Per-channel schemes.
class PerChannelMinMaxObserverImpl : public ObserverBase {
 public:
  explicit PerChannelMinMaxObserverImpl(ObserverOptions options);
  void observe(const torch::Tensor& x) override;
  void reset() override;
  std::string kind() const override { return "per_channel_minmax"; }

 protected:
  std::shared_ptr<ObserverBase> make_fresh() const override;
  // x [..., C (axis), ...] -> per-channel (min [C], max [C]).
  std::pair<torch::Tensor, torch::Tensor> channel_min_max(const torch::Tensor& x) const;
};
TORCH_MODULE(PerChannelMinMaxObserver);

// Per-channel moving average of min / max (as MovingAverageMinMax, per slice). Per-channel schemes.
class MovingAveragePerChannelMinMaxObserverImpl : public PerChannelMinMaxObserverImpl {
 public:
  explicit MovingAveragePerChannelMinMaxObserverImpl(ObserverOptions options);
  void observe(const torch::Tensor& x) override;
  std::string kind() const override { return "moving_average_per_channel_minmax"; }

 protected:
  std::shared_ptr<ObserverBase> make_fresh() const override;
};
TORCH_MODULE(MovingAveragePerChannelMinMaxObserver);

// PyTorch's HistogramObserver: a `bins`-bin histogram over the running [min, max] (when the range
// widens, the old histogram is upsampled by upsample_rate and re-binned onto the new range), and
// qparams() from the range that PyTorch's greedy L2 search (_non_linear_param_search) picks: it moves
// the start or end bin inwards in cumulative-mass steps of 1e-5 while the estimated L2 quantization
// error onto 2^bits levels does not grow. Per-tensor schemes.
//
// Differences from PyTorch 1.13, all taken from later PyTorch versions: the histogram is built over the
// float range (1.13 passes int(min), int(max) to torch.histc, a bug fixed later); infinite values are
// ignored; a range narrower than 1e-6 or a widening that would need a > 1 GB temporary histogram
// restarts the histogram from the new batch. For batches with integer extremes whose range widens by
// powers of two (the golden inputs) 1.13 computes exactly the same.
class HistogramObserverImpl : public ObserverBase {
 public:
  explicit HistogramObserverImpl(ObserverOptions options);
  void observe(const torch::Tensor& x) override;
  QParams qparams() const override;
  void reset() override;
  std::string kind() const override { return "histogram"; }

  const torch::Tensor& histogram() const { return histogram_; }  // [bins] float32
  // The range PyTorch's L2 search selects (0-dim float32 tensors), before calculate_qparams.
  std::pair<torch::Tensor, torch::Tensor> non_linear_param_search() const;

 protected:
  std::shared_ptr<ObserverBase> make_fresh() const override;
  // Estimated L2 error of quantizing the histogram with the range of bins [start_bin, end_bin].
  double quantization_error(const torch::Tensor& hist, double min_val, double max_val, int64_t start_bin,
                            int64_t end_bin) const;
  void reset_histogram(const torch::Tensor& x, const torch::Tensor& min_val, const torch::Tensor& max_val);

  torch::Tensor histogram_;  // buffer "histogram" [bins]
};
TORCH_MODULE(HistogramObserver);

// Percentile observer (yoloqat's design): the histogram of HistogramObserver; the range is
// [P_(100-p), P_p], the (100 - p)th and p-th percentiles of the observed values, each located in the
// cumulative histogram and linearly interpolated inside its bin (the values of a bin are taken as
// uniformly spread). calculate_qparams then widens the range to hold 0 and, for symmetric schemes, takes
// max(|P_lo|, |P_hi|). p = 100 gives the min-max range. Per-tensor schemes.
class PercentileObserverImpl : public HistogramObserverImpl {
 public:
  explicit PercentileObserverImpl(ObserverOptions options);
  QParams qparams() const override;
  std::string kind() const override { return "percentile"; }
  // The clipped range (0-dim float32 tensors).
  std::pair<torch::Tensor, torch::Tensor> clip_range() const;

 protected:
  std::shared_ptr<ObserverBase> make_fresh() const override;
};
TORCH_MODULE(PercentileObserver);

// MSE-optimal observer (yoloqat's design): the histogram of HistogramObserver; candidate ranges are the
// observed range scaled towards 0, [a * min, a * max] with a = k / search_steps, k = 1..search_steps
// (scaling both ends keeps the zero point and the sign structure). Each candidate's qparams come from
// calculate_qparams, and its error is the histogram-weighted mean squared error of fake-quantizing the
// observed distribution, each bin's count spread uniformly over 8 points inside the bin (so rounding
// inside wide bins is counted). The candidate with the smallest error wins; ties go to the wider range.
// Per-tensor schemes.
class MseObserverImpl : public HistogramObserverImpl {
 public:
  explicit MseObserverImpl(ObserverOptions options);
  QParams qparams() const override;
  std::string kind() const override { return "mse"; }
  // The chosen range (0-dim float32 tensors) and its mean squared error.
  std::pair<torch::Tensor, torch::Tensor> clip_range(double* mse = nullptr) const;
  // Mean squared error of fake-quantizing the histogram's distribution with `qp`.
  double histogram_mse(const QParams& qp) const;

 protected:
  std::shared_ptr<ObserverBase> make_fresh() const override;
};
TORCH_MODULE(MseObserver);

// The registry: makes the observer named `name` (see the header comment). Throws UsageError for an
// unknown name (listing the known ones) or a scheme the observer cannot use (per-channel vs per-tensor).
std::shared_ptr<ObserverBase> make_observer(const std::string& name, const ObserverOptions& options);
std::shared_ptr<ObserverBase> make_observer(const std::string& name, const QScheme& scheme);
// Registered names, in registry order.
const std::vector<std::string>& observer_names();
// Throws UsageError when `name` is unknown or does not fit `scheme` (what make_observer checks).
void check_observer(const std::string& name, const QScheme& scheme);

}  // namespace yq::quant
