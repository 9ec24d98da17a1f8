#include "quant/observer.h"

#include <fmt/format.h>

#include <cmath>
#include <functional>
#include <limits>

#include "core/config.h"
#include "core/error.h"
#include "core/log.h"

namespace yq::quant {

namespace {

const float kInf = std::numeric_limits<float>::infinity();

torch::Tensor scalar(float v) {
  return torch::scalar_tensor(v, torch::kFloat);
}

void check_options(const ObserverOptions& o, const char* kind) {
  o.scheme.validate();
  YQ_CHECK_USAGE(o.averaging_constant > 0.0 && o.averaging_constant <= 1.0,
                 "{} observer: averaging_constant must be in (0, 1], found {}", kind, o.averaging_constant);
  YQ_CHECK_USAGE(o.bins >= 16, "{} observer: bins must be >= 16, found {}", kind, o.bins);
  YQ_CHECK_USAGE(o.upsample_rate >= 1, "{} observer: upsample_rate must be >= 1, found {}", kind,
                 o.upsample_rate);
  YQ_CHECK_USAGE(o.percentile > 50.0 && o.percentile <= 100.0,
                 "{} observer: percentile must be in (50, 100], found {}", kind, o.percentile);
  YQ_CHECK_USAGE(o.search_steps >= 1, "{} observer: search_steps must be >= 1, found {}", kind,
                 o.search_steps);
}

}  // namespace

// ---------------------------------------------------------------------------------------------------
// ObserverBase

ObserverBase::ObserverBase(ObserverOptions options) : options_(std::move(options)) {}

torch::Tensor ObserverBase::forward(const torch::Tensor& x) {
  observe(x);
  return x;
}

QParams ObserverBase::qparams() const {
  return calculate_qparams(min_val_, max_val_, options_.scheme);
}

bool ObserverBase::has_observed() const {
  if (min_val_.numel() == 0) return false;
  if (min_val_.numel() == 1) return !(std::isinf(min_val_.item<float>()) && min_val_.item<float>() > 0);
  return true;
}

void ObserverBase::copy_buffers_from(const ObserverBase& other, const c10::optional<torch::Device>& device) {
  torch::NoGradGuard no_grad;
  YQ_CHECK(kind() == other.kind(), "cannot copy a {} observer into a {} observer", other.kind(), kind());
  auto mine = named_buffers(/*recurse=*/false);
  for (const auto& item : other.named_buffers(/*recurse=*/false)) {
    torch::Tensor* dst = mine.find(item.key());
    YQ_ASSERT(dst != nullptr);
    const torch::Tensor& src = item.value();
    dst->set_data(device && src.device() != *device ? src.to(*device) : src.clone());
  }
}

std::shared_ptr<torch::nn::Module> ObserverBase::clone(const c10::optional<torch::Device>& device) const {
  std::shared_ptr<ObserverBase> copy = make_fresh();
  copy->copy_buffers_from(*this, device);
  return copy;
}

void ObserverBase::clone_(torch::nn::Module& other, const c10::optional<torch::Device>& device) {
  auto* src = dynamic_cast<ObserverBase*>(&other);
  YQ_CHECK(src != nullptr, "cannot clone a {} into a {} observer", other.name(), kind());
  copy_buffers_from(*src, device);
}

void ObserverBase::pretty_print(std::ostream& stream) const {
  stream << "yq::quant::Observer(" << kind() << ", " << options_.scheme.to_string() << ")";
}

// ---------------------------------------------------------------------------------------------------
// MinMax family (per-tensor)

MinMaxObserverImpl::MinMaxObserverImpl(ObserverOptions options) : ObserverBase(std::move(options)) {
  check_options(options_, "minmax");
  YQ_CHECK_USAGE(!options_.scheme.per_channel,
                 "observer '{}' is per-tensor but the scheme is per-channel (use a per_channel_* observer)",
                 "minmax");
  min_val_ = register_buffer("min_val", scalar(kInf));
  max_val_ = register_buffer("max_val", scalar(-kInf));
}

void MinMaxObserverImpl::observe(const torch::Tensor& x_in) {
  if (x_in.numel() == 0) return;
  torch::NoGradGuard no_grad;
  torch::Tensor x = x_in.detach().to(min_val_.dtype());
  auto [cur_min, cur_max] = torch::aminmax(x);
  min_val_.copy_(torch::minimum(cur_min, min_val_));
  max_val_.copy_(torch::maximum(cur_max, max_val_));
}

void MinMaxObserverImpl::reset() {
  torch::NoGradGuard no_grad;
  min_val_.fill_(kInf);
  max_val_.fill_(-kInf);
}

std::shared_ptr<ObserverBase> MinMaxObserverImpl::make_fresh() const {
  return std::make_shared<MinMaxObserverImpl>(options_);
}

MovingAverageMinMaxObserverImpl::MovingAverageMinMaxObserverImpl(ObserverOptions options)
    : MinMaxObserverImpl(std::move(options)) {}

void MovingAverageMinMaxObserverImpl::observe(const torch::Tensor& x_in) {
  if (x_in.numel() == 0) return;
  torch::NoGradGuard no_grad;
  torch::Tensor x = x_in.detach().to(min_val_.dtype());
  auto [cur_min, cur_max] = torch::aminmax(x);
  if (!has_observed()) {
    min_val_.copy_(cur_min);
    max_val_.copy_(cur_max);
    return;
  }
  const double c = options_.averaging_constant;
  min_val_.copy_(min_val_ + c * (cur_min - min_val_));
  max_val_.copy_(max_val_ + c * (cur_max - max_val_));
}

std::shared_ptr<ObserverBase> MovingAverageMinMaxObserverImpl::make_fresh() const {
  return std::make_shared<MovingAverageMinMaxObserverImpl>(options_);
}

// ---------------------------------------------------------------------------------------------------
// Per-channel MinMax family

PerChannelMinMaxObserverImpl::PerChannelMinMaxObserverImpl(ObserverOptions options)
    : ObserverBase(std::move(options)) {
  check_options(options_, "per_channel_minmax");
  YQ_CHECK_USAGE(options_.scheme.per_channel,
                 "observer '{}' is per-channel but the scheme is per-tensor (use a per-tensor observer)",
                 "per_channel_minmax");
  min_val_ = register_buffer("min_val", torch::empty({0}, torch::kFloat));
  max_val_ = register_buffer("max_val", torch::empty({0}, torch::kFloat));
}

std::pair<torch::Tensor, torch::Tensor> PerChannelMinMaxObserverImpl::channel_min_max(
    const torch::Tensor& x_in) const {
  const int64_t axis = options_.scheme.axis;
  YQ_CHECK(axis < x_in.dim(), "{} observer: channel axis {} is out of range for a tensor of shape [{}]",
           kind(), axis, fmt::join(x_in.sizes(), ", "));
  torch::Tensor y = x_in.detach().transpose(0, axis).to(min_val_.dtype()).flatten(1);  // [C, rest]
  auto [mn, mx] = torch::aminmax(y, /*dim=*/1);
  if (min_val_.numel() != 0)
    YQ_CHECK(mn.size(0) == min_val_.size(0), "{} observer: saw {} channels, earlier tensors had {}", kind(),
             mn.size(0), min_val_.size(0));
  return {mn, mx};
}

void PerChannelMinMaxObserverImpl::observe(const torch::Tensor& x) {
  if (x.numel() == 0) return;
  torch::NoGradGuard no_grad;
  auto [mn, mx] = channel_min_max(x);
  if (min_val_.numel() != 0) {
    mn = torch::minimum(mn, min_val_);
    mx = torch::maximum(mx, max_val_);
  }
  min_val_.resize_(mn.sizes()).copy_(mn);
  max_val_.resize_(mx.sizes()).copy_(mx);
}

void PerChannelMinMaxObserverImpl::reset() {
  torch::NoGradGuard no_grad;
  min_val_.resize_({0});
  max_val_.resize_({0});
}

std::shared_ptr<ObserverBase> PerChannelMinMaxObserverImpl::make_fresh() const {
  return std::make_shared<PerChannelMinMaxObserverImpl>(options_);
}

MovingAveragePerChannelMinMaxObserverImpl::MovingAveragePerChannelMinMaxObserverImpl(ObserverOptions options)
    : PerChannelMinMaxObserverImpl(std::move(options)) {}

void MovingAveragePerChannelMinMaxObserverImpl::observe(const torch::Tensor& x) {
  if (x.numel() == 0) return;
  torch::NoGradGuard no_grad;
  auto [mn, mx] = channel_min_max(x);
  if (min_val_.numel() != 0) {
    const double c = options_.averaging_constant;
    mn = min_val_ + c * (mn - min_val_);
    mx = max_val_ + c * (mx - max_val_);
  }
  min_val_.resize_(mn.sizes()).copy_(mn);
  max_val_.resize_(mx.sizes()).copy_(mx);
}

std::shared_ptr<ObserverBase> MovingAveragePerChannelMinMaxObserverImpl::make_fresh() const {
  return std::make_shared<MovingAveragePerChannelMinMaxObserverImpl>(options_);
}

// ---------------------------------------------------------------------------------------------------
// Histogram family

HistogramObserverImpl::HistogramObserverImpl(ObserverOptions options) : ObserverBase(std::move(options)) {
  check_options(options_, "histogram");
  YQ_CHECK_USAGE(!options_.scheme.per_channel,
                 "histogram-based observers are per-tensor but the scheme is per-channel");
  histogram_ = register_buffer("histogram", torch::zeros({options_.bins}, torch::kFloat));
  min_val_ = register_buffer("min_val", scalar(kInf));
  max_val_ = register_buffer("max_val", scalar(-kInf));
}

void HistogramObserverImpl::reset() {
  torch::NoGradGuard no_grad;
  histogram_.zero_();
  min_val_.fill_(kInf);
  max_val_.fill_(-kInf);
}

std::shared_ptr<ObserverBase> HistogramObserverImpl::make_fresh() const {
  return std::make_shared<HistogramObserverImpl>(options_);
}

void HistogramObserverImpl::reset_histogram(const torch::Tensor& x, const torch::Tensor& mn,
                                            const torch::Tensor& mx) {
  min_val_.copy_(mn);
  max_val_.copy_(mx);
  histogram_.copy_(torch::histc(x, options_.bins, mn.item<double>(), mx.item<double>()));
}

void HistogramObserverImpl::observe(const torch::Tensor& x_in) {
  if (x_in.numel() == 0) return;
  torch::NoGradGuard no_grad;
  torch::Tensor x = x_in.detach().to(torch::kFloat);
  auto [x_min, x_max] = torch::aminmax(x);
  if (!std::isfinite(x_min.item<float>()) || !std::isfinite(x_max.item<float>())) {
    log::warn("{} observer: ignoring non-finite values in the observed tensor", kind());
    x = x.masked_select(torch::isfinite(x));
    if (x.numel() == 0) return;
    std::tie(x_min, x_max) = torch::aminmax(x);
  }
  const int64_t bins = options_.bins, up = options_.upsample_rate;
  const float cur_min = min_val_.item<float>(), cur_max = max_val_.item<float>();
  const bool uninitialized = std::isinf(cur_min) && cur_min > 0 && std::isinf(cur_max) && cur_max < 0;
  if (uninitialized || cur_min == cur_max || double(cur_max) - double(cur_min) < 1e-6) {
    reset_histogram(x, x_min, x_max);
    return;
  }
  torch::Tensor combined_min = torch::minimum(x_min, min_val_);
  torch::Tensor combined_max = torch::maximum(x_max, max_val_);
  // PyTorch's _adjust_min_max: widen the max so that the new range is a whole number
  // (downsample_rate) of 1/upsample_rate-ths of the old one; start_idx places the old range in it.
  const torch::Tensor old_width = max_val_ - min_val_;
  const int64_t downsample_rate =
      static_cast<int64_t>(torch::ceil((combined_max - combined_min) / old_width * double(up)).item<float>());
  torch::Tensor e = double(downsample_rate) / double(up) * old_width - (combined_max - combined_min);
  const int64_t start_idx =
      static_cast<int64_t>(torch::round((min_val_ - combined_min) / old_width * bins * up).item<float>());
  combined_max = combined_max + e;

  torch::Tensor combined = torch::histc(x, bins, combined_min.item<double>(), combined_max.item<double>());
  if (combined_min.item<float>() == cur_min && combined_max.item<float>() == cur_max) {
    combined += histogram_;
  } else {
    if (double(bins) * double(downsample_rate) * 4.0 > 1e9) {
      log::warn("{} observer: the range widened {}x at once; restarting the histogram from this batch",
                kind(), downsample_rate / up);
      reset_histogram(x, x_min, x_max);
      return;
    }
    // PyTorch's _combine_histograms: upsample the old histogram, place it at start_idx in the new
    // range, integrate (float64) and sample every downsample_rate-th value, difference, add.
    torch::Tensor upsampled = histogram_.repeat_interleave(up);
    torch::Tensor wide = torch::zeros({bins * downsample_rate}, histogram_.options());
    YQ_ASSERT(start_idx >= 0 && start_idx + bins * up <= bins * downsample_rate);
    wide.slice(0, start_idx, start_idx + bins * up).copy_(upsampled);
    torch::Tensor integral = torch::cumsum(wide, 0, torch::kDouble)
                                 .slice(0, downsample_rate - 1, c10::nullopt, downsample_rate);  // [bins]
    torch::Tensor shifted = torch::zeros({bins}, histogram_.options());  // float32 as in PyTorch
    shifted.slice(0, 1, bins).copy_(integral.slice(0, 0, bins - 1));
    torch::Tensor interpolated = (integral - shifted) / double(up);
    combined = combined + interpolated.to(torch::kFloat);
  }
  histogram_.copy_(combined);
  min_val_.copy_(combined_min);
  max_val_.copy_(combined_max);
}

namespace {

// PyTorch's _get_norm: density * (end^3 - begin^3) / 3.
torch::Tensor l2_norm(const torch::Tensor& begin, const torch::Tensor& end, const torch::Tensor& density) {
  return density * ((end * end * end - begin * begin * begin) / 3);
}

}  // namespace

double HistogramObserverImpl::quantization_error(const torch::Tensor& hist, double min_val, double max_val,
                                                 int64_t start_bin, int64_t end_bin) const {
  // PyTorch's _compute_quantization_error, with the same float32 tensor operations.
  const int64_t bins = options_.bins;
  const int64_t dst_nbins = int64_t(1) << options_.scheme.bits;
  const double bin_width = (max_val - min_val) / double(bins);
  const double dst_bin_width = bin_width * double(end_bin - start_bin + 1) / double(dst_nbins);
  if (dst_bin_width == 0.0) return 0.0;
  torch::Tensor src_bin = torch::arange(bins, torch::kLong);
  torch::Tensor src_begin = (src_bin - start_bin) * bin_width;
  torch::Tensor src_end = src_begin + bin_width;
  torch::Tensor dst_of_begin = torch::clamp(torch::div(src_begin, dst_bin_width, "floor"), 0, dst_nbins - 1);
  torch::Tensor dst_of_begin_center = (dst_of_begin + 0.5) * dst_bin_width;
  torch::Tensor dst_of_end = torch::clamp(torch::div(src_end, dst_bin_width, "floor"), 0, dst_nbins - 1);
  torch::Tensor density = hist / bin_width;
  torch::Tensor norm = torch::zeros({bins}, torch::kFloat);
  const torch::Tensor half_neg = torch::scalar_tensor(-dst_bin_width / 2, torch::kFloat);
  const torch::Tensor half_pos = torch::scalar_tensor(dst_bin_width / 2, torch::kFloat);
  norm += l2_norm(src_begin - dst_of_begin_center, torch::ones({bins}, torch::kFloat) * (dst_bin_width / 2),
                  density);
  norm += (dst_of_end - dst_of_begin - 1) * l2_norm(half_neg, half_pos, density);
  torch::Tensor dst_of_end_center = dst_of_end * dst_bin_width + dst_bin_width / 2;
  norm += l2_norm(half_neg, src_end - dst_of_end_center, density);
  return norm.sum().item<double>();
}

std::pair<torch::Tensor, torch::Tensor> HistogramObserverImpl::non_linear_param_search() const {
  torch::NoGradGuard no_grad;
  const int64_t bins = options_.bins;
  torch::Tensor hist = histogram_.detach().to(torch::kCPU).contiguous();
  torch::Tensor mn = min_val_.detach().to(torch::kCPU), mx = max_val_.detach().to(torch::kCPU);
  YQ_ASSERT(hist.numel() == bins);
  const torch::Tensor bin_width = (mx - mn) / bins;
  const double total = hist.sum().item<double>();
  const torch::Tensor csum_t = torch::cumsum(hist, 0).contiguous();
  const float* csum = csum_t.data_ptr<float>();
  const double min_d = mn.item<double>(), max_d = mx.item<double>();

  const double stepsize = 1e-5;
  double alpha = 0.0, beta = 1.0;
  int64_t start_bin = 0, end_bin = bins - 1;
  double norm_min = std::numeric_limits<double>::infinity();
  while (alpha < beta) {
    const double next_alpha = alpha + stepsize, next_beta = beta - stepsize;
    // The comparisons are float32 (a float32 tensor against a Python float in PyTorch).
    const float lo_mass = static_cast<float>(next_alpha * total);
    const float hi_mass = static_cast<float>(next_beta * total);
    int64_t l = start_bin, r = end_bin;
    while (l < end_bin && csum[l] < lo_mass) ++l;
    while (r > start_bin && csum[r] > hi_mass) --r;
    int64_t next_start = start_bin, next_end = end_bin;
    if ((l - start_bin) > (end_bin - r)) {
      next_start = l;
      alpha = next_alpha;
    } else {
      next_end = r;
      beta = next_beta;
    }
    if (next_start == start_bin && next_end == end_bin) continue;
    const double norm = quantization_error(hist, min_d, max_d, next_start, next_end);
    if (norm > norm_min) break;
    norm_min = norm;
    start_bin = next_start;
    end_bin = next_end;
  }
  return {mn + bin_width * start_bin, mn + bin_width * (end_bin + 1)};
}

QParams HistogramObserverImpl::qparams() const {
  if (!has_observed()) return calculate_qparams(min_val_, max_val_, options_.scheme);
  auto [lo, hi] = non_linear_param_search();
  QParams qp = calculate_qparams(lo, hi, options_.scheme);
  return {qp.scale.to(min_val_.device()), qp.zero_point.to(min_val_.device())};
}

// Percentile ------------------------------------------------------------------------------------------

PercentileObserverImpl::PercentileObserverImpl(ObserverOptions options)
    : HistogramObserverImpl(std::move(options)) {}

std::shared_ptr<ObserverBase> PercentileObserverImpl::make_fresh() const {
  return std::make_shared<PercentileObserverImpl>(options_);
}

std::pair<torch::Tensor, torch::Tensor> PercentileObserverImpl::clip_range() const {
  torch::NoGradGuard no_grad;
  if (!has_observed()) return {min_val_.clone(), max_val_.clone()};
  torch::Tensor hist = histogram_.detach().to(torch::kCPU, torch::kDouble).contiguous();
  const int64_t bins = options_.bins;
  const double mn = min_val_.item<double>(), mx = max_val_.item<double>();
  const double width = (mx - mn) / double(bins);
  const double* h = hist.data_ptr<double>();
  double total = 0;
  for (int64_t i = 0; i < bins; ++i) total += h[i];
  if (total <= 0 || width <= 0) return {min_val_.clone(), max_val_.clone()};
  // The value below which `mass` of the total lies (bins hold uniformly spread values).
  auto quantile = [&](double mass) {
    double acc = 0;
    for (int64_t i = 0; i < bins; ++i) {
      if (h[i] > 0 && acc + h[i] >= mass) return mn + width * (double(i) + (mass - acc) / h[i]);
      acc += h[i];
    }
    return mx;
  };
  const double p = options_.percentile / 100.0;
  const double lo = std::max(mn, quantile((1.0 - p) * total));
  const double hi = std::min(mx, quantile(p * total));
  return {scalar(static_cast<float>(lo)), scalar(static_cast<float>(std::max(lo, hi)))};
}

QParams PercentileObserverImpl::qparams() const {
  if (!has_observed()) return calculate_qparams(min_val_, max_val_, options_.scheme);
  auto [lo, hi] = clip_range();
  QParams qp = calculate_qparams(lo, hi, options_.scheme);
  return {qp.scale.to(min_val_.device()), qp.zero_point.to(min_val_.device())};
}

// MSE -----------------------------------------------------------------------------------------------

MseObserverImpl::MseObserverImpl(ObserverOptions options) : HistogramObserverImpl(std::move(options)) {}

std::shared_ptr<ObserverBase> MseObserverImpl::make_fresh() const {
  return std::make_shared<MseObserverImpl>(options_);
}

double MseObserverImpl::histogram_mse(const QParams& qp) const {
  torch::NoGradGuard no_grad;
  constexpr int64_t kPointsPerBin = 8;
  const int64_t bins = options_.bins;
  const double mn = min_val_.item<double>(), mx = max_val_.item<double>();
  const double width = (mx - mn) / double(bins);
  torch::Tensor hist = histogram_.detach().to(torch::kCPU, torch::kFloat);
  const double total = hist.sum().item<double>();
  if (total <= 0) return 0.0;
  // Points at the centres of kPointsPerBin equal slices of every bin, each with count / kPointsPerBin.
  torch::Tensor offsets = (torch::arange(kPointsPerBin, torch::kDouble) + 0.5) / double(kPointsPerBin);
  torch::Tensor points =
      (mn + width * (torch::arange(bins, torch::kDouble).unsqueeze(1) + offsets.unsqueeze(0)))
          .to(torch::kFloat)
          .reshape({-1});
  torch::Tensor weights =
      (hist / double(kPointsPerBin)).unsqueeze(1).expand({bins, kPointsPerBin}).reshape({-1});
  const QScheme& s = options_.scheme;
  torch::Tensor fq = torch::fake_quantize_per_tensor_affine(
      points, qp.scale.item<double>(), qp.zero_point.item<int64_t>(), s.quant_min(), s.quant_max());
  torch::Tensor err = (fq - points).to(torch::kDouble);
  return (weights.to(torch::kDouble) * err * err).sum().item<double>() / total;
}

std::pair<torch::Tensor, torch::Tensor> MseObserverImpl::clip_range(double* mse) const {
  torch::NoGradGuard no_grad;
  if (!has_observed()) return {min_val_.clone(), max_val_.clone()};
  torch::Tensor mn = min_val_.detach().to(torch::kCPU), mx = max_val_.detach().to(torch::kCPU);
  const int64_t steps = options_.search_steps;
  double best = std::numeric_limits<double>::infinity();
  torch::Tensor best_lo = mn.clone(), best_hi = mx.clone();
  for (int64_t k = steps; k >= 1; --k) {  // widest first: ties keep the wider range
    const double a = double(k) / double(steps);
    torch::Tensor lo = mn * a, hi = mx * a;
    const double err = histogram_mse(calculate_qparams(lo, hi, options_.scheme));
    if (err < best) {
      best = err;
      best_lo = lo;
      best_hi = hi;
    }
  }
  if (mse) *mse = best;
  return {best_lo, best_hi};
}

QParams MseObserverImpl::qparams() const {
  if (!has_observed()) return calculate_qparams(min_val_, max_val_, options_.scheme);
  auto [lo, hi] = clip_range();
  QParams qp = calculate_qparams(lo, hi, options_.scheme);
  return {qp.scale.to(min_val_.device()), qp.zero_point.to(min_val_.device())};
}

// ---------------------------------------------------------------------------------------------------
// Registry

namespace {

struct Entry {
  const char* name;
  bool per_channel;
  std::function<std::shared_ptr<ObserverBase>(const ObserverOptions&)> make;
};

template <class T>
std::function<std::shared_ptr<ObserverBase>(const ObserverOptions&)> maker() {
  return [](const ObserverOptions& o) { return std::make_shared<T>(o); };
}

const std::vector<Entry>& registry() {
  static const std::vector<Entry> r = {
      {"minmax", false, maker<MinMaxObserverImpl>()},
      {"moving_average_minmax", false, maker<MovingAverageMinMaxObserverImpl>()},
      {"per_channel_minmax", true, maker<PerChannelMinMaxObserverImpl>()},
      {"moving_average_per_channel_minmax", true, maker<MovingAveragePerChannelMinMaxObserverImpl>()},
      {"histogram", false, maker<HistogramObserverImpl>()},
      {"percentile", false, maker<PercentileObserverImpl>()},
      {"mse", false, maker<MseObserverImpl>()},
  };
  return r;
}

const Entry& find_entry(const std::string& name) {
  for (const auto& e : registry())
    if (name == e.name) return e;
  std::string closest;
  size_t best = std::numeric_limits<size_t>::max();
  for (const auto& e : registry()) {
    size_t d = edit_distance(name, e.name);
    if (d < best) best = d, closest = e.name;
  }
  std::string hint = best <= 3 ? fmt::format(" (did you mean '{}'?)", closest) : "";
  throw UsageError(fmt::format("unknown observer '{}'{}; known observers: {}", name, hint,
                               fmt::join(observer_names(), ", ")));
}

}  // namespace

const std::vector<std::string>& observer_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> n;
    for (const auto& e : registry()) n.emplace_back(e.name);
    return n;
  }();
  return names;
}

void check_observer(const std::string& name, const QScheme& scheme) {
  const Entry& e = find_entry(name);
  scheme.validate();
  if (e.per_channel && !scheme.per_channel)
    throw UsageError(fmt::format("observer '{}' needs a per-channel scheme (per_channel: true)", name));
  if (!e.per_channel && scheme.per_channel)
    throw UsageError(
        fmt::format("observer '{}' is per-tensor but the scheme is per-channel; per-channel observers: {}",
                    name, "per_channel_minmax, moving_average_per_channel_minmax"));
}

std::shared_ptr<ObserverBase> make_observer(const std::string& name, const ObserverOptions& options) {
  check_observer(name, options.scheme);
  return find_entry(name).make(options);
}

std::shared_ptr<ObserverBase> make_observer(const std::string& name, const QScheme& scheme) {
  ObserverOptions o;
  o.scheme = scheme;
  return make_observer(name, o);
}

}  // namespace yq::quant
