// Layer-wise quantization analysis (`yoloqat analyze`, DESIGN.md "analyze"): how far each quantized
// layer's activations move from float, weight and activation histograms with the quantizers' clipping
// ranges, and the accuracy drift of a QAT run against its fp32 baseline.
//
// Capture: every quantizer gets a FakeQuantize tap (quant/fake_quantize.h) for the duration of a pass.
// A layer's output is what its output quantizer sees (act_fq of a conv / head conv, out_fq of an add or
// concat, input_fq of the image); its weight is what weight_fq sees (the BN-folded weight).
// Per batch of images:
//  - reference pass: the quantized model with every fake quant off (its own weights, float math);
//  - "alone" pass per layer L: only L's quantizers on (weight, pre-activation, output); measured at L;
//  - "accumulated" pass: every quantizer on; each layer measured at its output against the float
//    reference: the reference pass, or the fp32 model when one is given (then the error also holds the
//    weight change of QAT fine-tuning).
// Metrics over all images (sums in double): SQNR = 10 log10(sum ref^2 / sum (ref - q)^2) dB,
// MSE = mean (ref - q)^2, cosine = <ref, q> / (|ref| |q|).
// Histograms are computed on a deterministic subsample (every k-th value, at most max_samples per
// layer), min / max and the clipped fraction on all values.
#pragma once

#include <torch/torch.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/fs.h"
#include "model/yolov8.h"

namespace yq::eval {

struct ErrorStats {
  double sqnr_db = 0, mse = 0, cosine = 0;
  int64_t values = 0;
};

// Accumulates ErrorStats over several tensors.
class ErrorAccumulator {
 public:
  void add(const torch::Tensor& ref, const torch::Tensor& q);  // same shape
  ErrorStats stats() const;  // SQNR +inf when identical; 0 values -> all zero

 private:
  double sig_ = 0, err_ = 0, dot_ = 0, qq_ = 0;
  int64_t n_ = 0;
};

struct Histogram {
  std::vector<double> edges;        // [bins + 1]
  std::vector<double> counts;       // [bins]
  double min = 0, max = 0;          // of all values seen
  double clip_lo = 0, clip_hi = 0;  // the quantizer's representable range (per channel: the widest)
  double clip_lo_median = 0, clip_hi_median = 0;  // per channel: the median channel's range
  double clipped_fraction = 0;                    // values outside their (channel's) range
  int64_t values = 0;
  nlohmann::json to_json() const;
};

// Builds a histogram of `values` (bins equal-width over [min(values, lo), max(values, hi)]).
Histogram make_histogram(const std::vector<float>& values, int bins, double lo, double hi);

struct LayerAnalysis {
  std::string name;                              // "model.2.m.0.cv1", "input"
  std::string kind;                              // conv, head, add, concat, input
  std::string activation_scheme, weight_scheme;  // "" when float
  std::optional<ErrorStats> alone, accumulated;  // none when the output is not quantized
  std::optional<Histogram> weight_hist, act_hist;
};

struct AccuracyDrift {
  std::string qat_results, fp32_source;       // files read
  std::vector<double> epoch, map50, map5095;  // of the QAT run
  double fp32_map50 = 0, fp32_map5095 = 0;    // baseline (best-fitness row or metrics.json)
  nlohmann::json to_json() const;
};

struct AnalyzeOptions {
  int bins = 64;
  int64_t max_samples = 200000;  // per layer and histogram
  bool alone = true;             // run the per-layer "alone" passes (one forward per layer and batch)
};

struct AnalyzeResult {
  std::vector<LayerAnalysis> layers;  // module order
  int64_t images = 0;
  double seconds = 0;
  bool fp32_reference = false;  // accumulated errors against a separate fp32 model
  std::optional<AccuracyDrift> drift;
  // {"images", "seconds", "reference", "layers": [{"name", "kind", "activation_scheme",
  //  "weight_scheme", "alone": {"sqnr_db", "mse", "cosine"}, "accumulated": {...},
  //  "weight_hist": {...}, "act_hist": {...}}], "drift": {...}}
  nlohmann::json to_json() const;
};

// Incremental analysis: call add_batch for each batch of images, then finish(). `quantized` must be a
// prepared model (quant::prepare or a quantized checkpoint); `fp32` (empty holder = none) is a prepared
// model of the same architecture and qconfig carrying the fp32 weights (e.g. the quantized checkpoint
// loaded again with the fp32 checkpoint's tensors on top); its quantizers are only tapped, with fake
// quant off. Both are used in eval mode and left with their switches as they were and no taps.
class QuantAnalyzer {
 public:
  QuantAnalyzer(model::YoloV8 quantized, model::YoloV8 fp32, AnalyzeOptions opt = {});
  ~QuantAnalyzer();
  QuantAnalyzer(const QuantAnalyzer&) = delete;
  QuantAnalyzer& operator=(const QuantAnalyzer&) = delete;

  // images [B, 3, H, W] float 0..1 (or uint8, divided by 255).
  void add_batch(const torch::Tensor& images);
  AnalyzeResult finish();

 private:
  struct State;
  std::unique_ptr<State> s_;
};

// Reads the QAT run's results.csv and the fp32 baseline: a metrics.json (keys mAP50, mAP50-95) or a
// results.csv (the row of best fitness 0.1 mAP50 + 0.9 mAP50-95). Errors name the file.
AccuracyDrift read_accuracy_drift(const fs::path& qat_results_csv, const fs::path& fp32_source);

// Writes analyze.json and the SVG charts (sqnr.svg, drift.svg, hist_<layer>_{w,a}.svg for the `worst`
// layers by accumulated SQNR) into `dir`; returns the files written.
std::vector<fs::path> write_analysis(const AnalyzeResult& r, const fs::path& dir, int worst = 6);

// The SVG charts the report also uses.
std::string sqnr_chart(const AnalyzeResult& r, int max_layers = 40);
std::string sqnr_profile_chart(const AnalyzeResult& r);  // alone and accumulated by layer index
std::string drift_chart(const AccuracyDrift& d);
std::string histogram_chart(const LayerAnalysis& l, bool weight);
// Layers with an accumulated SQNR, worst (lowest) first.
std::vector<const LayerAnalysis*> worst_layers(const AnalyzeResult& r, int n);

}  // namespace yq::eval
