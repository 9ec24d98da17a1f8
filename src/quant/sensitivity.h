// Per-layer quantization sensitivity (`yoloqat sensitivity`, src/cli/cmd_sensitivity.cpp).
//
// A "layer" is one quantizable module of a prepared model with all of its quantizers:
//   conv    "model.2.m.0.cv1": weight_fq, pre_fq, act_fq
//   head    "model.22.cv3.1.2": weight_fq, act_fq
//   add / concat  "model.2.m.0.add", "model.11": out_fq
// Layers the qconfig keeps float have no quantizers and are not measured. The image quantizer
// ("input_fq", scale 1/255 on uint8 pixels, lossless for images on the uint8 grid) is not a layer of its
// own: it is on whenever the other layers are ("all quantized", "all but this") and off otherwise.
//
// The analysis only switches fake quantization on and off; the quantizers' ranges are fixed first
// (freeze_quantizers), so every configuration computes with the same calibrated qparams. For every
// layer L it measures the metric (higher = better) with
//   only_this     L quantized, everything else float      (how much L alone costs)
//   all_but_this  everything quantized except L           (how much keeping L float gives back)
// plus the baselines fp32 (nothing quantized) and all_quantized. Layers are ranked most sensitive
// first by the sum of two ranks (a Borda count, so dB and mAP rank alike):
//   rank by only_this ascending (the largest drop when alone first) +
//   rank by all_but_this descending (the largest gain when excluded first);
// ties go to the larger all_but_this, then to the lower only_this, then to module order.
//
// SQNR metric: 10 log10(sum ref^2 / sum (ref - x)^2) in dB over the RAW head outputs (per level
// [B, 64 + nc, H / s, W / s]: the DFL box logits and the class logits, every level and image together)
// against the same model with every quantizer off, whose outputs are computed once and cached. The raw
// outputs are used rather than the decoded ones because decoded boxes are in pixels and would swamp
// the class scores; both are what quantization perturbs directly.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "quant/fake_quantize.h"
#include "quant/qconfig.h"

namespace yq::model {
class YoloV8Impl;
}

namespace yq::quant {

// SQNR accumulated over any number of (reference, quantized) tensor pairs: signal and noise energies
// are summed in double precision, so db() is the SQNR of everything added as if it were one tensor.
class SqnrAccumulator {
 public:
  // ref and x: same shape (any).
  void add(const torch::Tensor& ref, const torch::Tensor& x);
  // 10 log10(signal / noise): +inf when the noise is exactly 0 (identical tensors, signal > 0),
  // -inf for a zero reference with noise; NaN when nothing was added or both energies are 0.
  double db() const;
  double signal() const { return signal_; }
  double noise() const { return noise_; }

 private:
  double signal_ = 0, noise_ = 0;
  bool any_ = false;
};

// SQNR (dB) of x against ref (one pair, SqnrAccumulator's rules).
double sqnr_db(const torch::Tensor& ref, const torch::Tensor& x);

// One quantized layer: its name, kind and quantizers (module order).
struct QuantizedLayer {
  std::string name;                                              // "model.2.m.0.cv1"
  std::string kind;                                              // conv, head, add, concat
  std::vector<std::pair<std::string, FakeQuantize>> quantizers;  // full names, "model.0.act_fq"
};

// The layers of a prepared model that hold at least one quantizer, in module order (input_fq excluded).
std::vector<QuantizedLayer> quantized_layers(model::YoloV8Impl& model);
// Quantizable layers of `model` that hold no quantizer (kept float by the qconfig), in module order.
std::vector<std::string> float_layers(model::YoloV8Impl& model);

// Fake quant on for the quantizers of the layers whose `on[i]` is true (indices of `layers`), off for
// all others; input_fq follows `input_on`.
void set_quantized(model::YoloV8Impl& model, const std::vector<QuantizedLayer>& layers,
                   const std::vector<bool>& on, bool input_on);

struct LayerSensitivity {
  std::string name;
  std::string kind;
  double only_this = 0;       // metric with only this layer quantized
  double all_but_this = 0;    // metric with every layer but this one quantized
  int rank = 0;               // 1 = most sensitive
  int rank_only_this = 0;     // 1 = the lowest only_this
  int rank_all_but_this = 0;  // 1 = the highest all_but_this
};

struct SensitivityResult {
  std::string metric;                     // "sqnr" (dB) or "map" (mAP50-95)
  double fp32 = 0;                        // nothing quantized
  double all_quantized = 0;               // every layer quantized
  std::vector<LayerSensitivity> layers;   // ranked, most sensitive first
  std::vector<std::string> float_layers;  // quantizable layers the qconfig keeps float (not measured)
  double seconds = 0;
  int64_t evaluations = 0;  // metric evaluations run

  // {"metric", "baseline": {"fp32", "all_quantized"}, "layers": [{"name", "kind", "only_this",
  //  "all_but_this", "rank", "rank_only_this", "rank_all_but_this"}], "float_layers", "seconds"};
  // an infinite SQNR (no difference at all) is written as null.
  nlohmann::json to_json() const;
  // Printable ranked table (the first `max_rows` layers; 0 = all).
  std::string table(size_t max_rows = 0) const;
  // Names of the `k` most sensitive layers.
  std::vector<std::string> top(size_t k) const;
};

// Fills rank, rank_only_this and rank_all_but_this and sorts `layers` most sensitive first (header
// comment). NaN values rank last.
void rank_layers(std::vector<LayerSensitivity>& layers);

// A metric of the model in its current quantizer state; higher is better.
using SensitivityMetric = std::function<double(model::YoloV8Impl&)>;

struct SensitivityOptions {
  bool progress = true;  // progress bar over the 2 * layers + 2 evaluations
};

// Runs the analysis on a prepared `model` (eval mode is set, quantizers are frozen). Throws UsageError
// when the model is not prepared or has no quantized layer. Leaves every quantizer's fake quant on.
SensitivityResult analyze_sensitivity(model::YoloV8Impl& model, const std::string& metric_name,
                                      const SensitivityMetric& metric, const SensitivityOptions& opt = {});

// The SQNR metric: caches the raw head outputs of `model` with every quantizer off on `images`
// (batches [B, 3, H, W], float 0..1) at construction; operator() runs the images again and returns the
// SQNR (dB) of the raw outputs against the cache.
class OutputSqnr {
 public:
  OutputSqnr(model::YoloV8Impl& model, std::vector<torch::Tensor> images);
  double operator()(model::YoloV8Impl& model) const;
  int64_t images() const;

 private:
  std::vector<torch::Tensor> images_;
  std::vector<std::vector<torch::Tensor>> reference_;  // per batch, per level
};

// How critical layers are kept in higher precision.
enum class CriticalPrecision {
  kFloat,  // no quantizers at all
  kInt8,   // weight and activation specs with fewer than 8 bits raised to 8 (others unchanged)
};

// Parses "float" | "int8" (UsageError otherwise, naming the key `key`).
CriticalPrecision parse_critical(const std::string& s, const std::string& key = "critical");

// `base` with one rule per critical layer appended (later rules win): keep it float, or its own
// qconfig with sub-8-bit specs raised to 8 bits. A layer `base` already keeps float, or (int8) already
// quantizes at 8 bits, gets no rule. The result is named "<base name>-sensitivity" and its
// description says which layers were raised.
QConfigMapping critical_qconfig(const QConfigMapping& base, const std::vector<std::string>& critical,
                                CriticalPrecision how);

}  // namespace yq::quant
