#include "eval/analyze.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <map>

#include "core/csv_log.h"
#include "core/error.h"
#include "core/log.h"
#include "eval/svg.h"
#include "quant/prepare.h"

namespace yq::eval {

namespace {

double finite_or_null(double v) {
  return v;
}

nlohmann::json stats_json(const ErrorStats& s) {
  nlohmann::json j;
  // JSON has no infinity: identical tensors write a null SQNR.
  j["sqnr_db"] = std::isfinite(s.sqnr_db) ? nlohmann::json(s.sqnr_db) : nlohmann::json();
  j["mse"] = finite_or_null(s.mse);
  j["cosine"] = s.cosine;
  j["values"] = s.values;
  return j;
}

// The quantizers of one layer.
struct LayerQ {
  std::string name, kind;
  quant::FakeQuantize weight{nullptr}, pre{nullptr}, out{nullptr};
  quant::FakeQuantize ref_weight{nullptr}, ref_out{nullptr};  // the same in the reference model
  std::vector<quant::FakeQuantize> all;
};

std::string suffix_of(const std::string& name) {
  const auto dot = name.rfind('.');
  return dot == std::string::npos ? name : name.substr(dot + 1);
}
std::string layer_of(const std::string& name) {
  const auto dot = name.rfind('.');
  return dot == std::string::npos ? "input" : name.substr(0, dot);
}

std::vector<LayerQ> group_layers(model::YoloV8Impl& m) {
  std::vector<LayerQ> layers;
  std::map<std::string, size_t> index;
  for (auto& [full, fq] : quant::named_quantizers(m)) {
    const std::string layer = layer_of(full), suf = suffix_of(full);
    if (!index.count(layer)) {
      index[layer] = layers.size();
      layers.emplace_back();
      layers.back().name = layer;
    }
    LayerQ& l = layers[index[layer]];
    l.all.push_back(fq);
    if (suf == "weight_fq")
      l.weight = fq;
    else if (suf == "pre_fq")
      l.pre = fq;
    else
      l.out = fq;  // act_fq, out_fq, input_fq
  }
  // The image quantizer is registered last but comes first in the data flow.
  std::stable_partition(layers.begin(), layers.end(), [](const LayerQ& l) { return l.name == "input"; });
  for (auto& l : layers) {
    if (l.name == "input")
      l.kind = "input";
    else if (!l.pre.is_empty())
      l.kind = "conv";
    else if (!l.weight.is_empty())
      l.kind = "head";
    else if (l.name.size() >= 4 && l.name.compare(l.name.size() - 4, 4, ".add") == 0)
      l.kind = "add";
    else
      l.kind = "concat";
  }
  return layers;
}

// Representable range of a quantizer per scale entry.
void clip_ranges(quant::FakeQuantizeImpl& fq, torch::Tensor& lo, torch::Tensor& hi) {
  quant::QParams q = fq.qparams();
  torch::Tensor s = q.scale.to(torch::kDouble), zp = q.zero_point.to(torch::kDouble);
  lo = (double(fq.quant_min()) - zp) * s;
  hi = (double(fq.quant_max()) - zp) * s;
}

// Values, min/max and clipped count of one quantizer's inputs, accumulated over batches.
struct ValueSampler {
  std::vector<float> sample;
  double min = std::numeric_limits<double>::infinity(), max = -std::numeric_limits<double>::infinity();
  int64_t values = 0, clipped = 0;
  torch::Tensor lo, hi;  // per channel ([C]) or [1]
  int64_t axis = -1;     // channel axis of lo / hi (-1 = per tensor)

  void add(const torch::Tensor& x_in, int64_t max_per_call) {
    torch::Tensor x = x_in.detach().to(torch::kFloat).contiguous();
    if (x.numel() == 0) return;
    min = std::min(min, x.min().item<double>());
    max = std::max(max, x.max().item<double>());
    values += x.numel();
    if (lo.defined()) {
      torch::Tensor l = lo.to(torch::kFloat), h = hi.to(torch::kFloat);
      if (axis >= 0 && l.numel() > 1) {
        std::vector<int64_t> shape(size_t(x.dim()), 1);
        shape[size_t(axis)] = l.numel();
        l = l.view(shape), h = h.view(shape);
      }
      clipped += ((x < l) | (x > h)).sum().item<int64_t>();
    }
    const int64_t stride = std::max<int64_t>(1, (x.numel() + max_per_call - 1) / max_per_call);
    torch::Tensor flat = x.view(-1).slice(0, 0, x.numel(), stride).contiguous();
    const float* p = flat.data_ptr<float>();
    sample.insert(sample.end(), p, p + flat.numel());
  }

  Histogram finish(int bins) const {
    double clo = 0, chi = 0, mlo = 0, mhi = 0;
    if (lo.defined()) {
      clo = lo.min().item<double>(), chi = hi.max().item<double>();
      mlo = lo.median().item<double>(), mhi = hi.median().item<double>();
    }
    Histogram h = make_histogram(sample, bins, std::isfinite(min) ? min : 0, std::isfinite(max) ? max : 0);
    h.min = std::isfinite(min) ? min : 0, h.max = std::isfinite(max) ? max : 0;
    h.clip_lo = clo, h.clip_hi = chi, h.clip_lo_median = mlo, h.clip_hi_median = mhi;
    h.values = values;
    h.clipped_fraction = values > 0 ? double(clipped) / double(values) : 0;
    return h;
  }
};

struct Switches {
  std::vector<std::pair<quant::FakeQuantize, std::pair<bool, bool>>> saved;
  explicit Switches(model::YoloV8Impl& m) {
    for (auto& [n, fq] : quant::named_quantizers(m))
      saved.push_back({fq, {fq->observer_enabled(), fq->fake_quant_enabled()}});
  }
  void restore() {
    for (auto& [fq, s] : saved) {
      fq->clear_tap();
      fq->enable_observer(s.first);
      fq->enable_fake_quant(s.second);
    }
  }
};

}  // namespace

void ErrorAccumulator::add(const torch::Tensor& ref, const torch::Tensor& q) {
  YQ_ASSERT(ref.sizes() == q.sizes());
  torch::Tensor r = ref.detach().to(torch::kDouble), x = q.detach().to(torch::kDouble);
  sig_ += r.pow(2).sum().item<double>();
  err_ += (r - x).pow(2).sum().item<double>();
  dot_ += (r * x).sum().item<double>();
  qq_ += x.pow(2).sum().item<double>();
  n_ += r.numel();
}

ErrorStats ErrorAccumulator::stats() const {
  ErrorStats s;
  s.values = n_;
  if (n_ == 0) return s;
  s.mse = err_ / double(n_);
  s.sqnr_db = err_ > 0 ? 10.0 * std::log10(sig_ / err_) : std::numeric_limits<double>::infinity();
  const double den = std::sqrt(sig_) * std::sqrt(qq_);
  s.cosine = den > 0 ? dot_ / den : (sig_ == 0 && qq_ == 0 ? 1.0 : 0.0);
  return s;
}

Histogram make_histogram(const std::vector<float>& values, int bins, double lo, double hi) {
  YQ_CHECK_USAGE(bins >= 1, "histogram bins must be >= 1, got {}", bins);
  for (float v : values)
    if (std::isfinite(v)) lo = std::min(lo, double(v)), hi = std::max(hi, double(v));
  if (!(hi > lo)) hi = lo + 1e-6;
  Histogram h;
  h.edges.resize(size_t(bins) + 1);
  for (int k = 0; k <= bins; ++k) h.edges[size_t(k)] = lo + (hi - lo) * double(k) / double(bins);
  h.counts.assign(size_t(bins), 0.0);
  for (float v : values) {
    if (!std::isfinite(v)) continue;
    int k = int((double(v) - lo) / (hi - lo) * double(bins));
    h.counts[size_t(std::clamp(k, 0, bins - 1))] += 1;
  }
  h.values = int64_t(values.size());
  if (!values.empty()) {
    auto [a, b] = std::minmax_element(values.begin(), values.end());
    h.min = *a, h.max = *b;
  }
  return h;
}

nlohmann::json Histogram::to_json() const {
  return {{"edges", edges},
          {"counts", counts},
          {"min", min},
          {"max", max},
          {"clip_lo", clip_lo},
          {"clip_hi", clip_hi},
          {"clip_lo_median", clip_lo_median},
          {"clip_hi_median", clip_hi_median},
          {"clipped_fraction", clipped_fraction},
          {"values", values}};
}

nlohmann::json AccuracyDrift::to_json() const {
  return {{"qat_results", qat_results},
          {"fp32_source", fp32_source},
          {"epoch", epoch},
          {"map50", map50},
          {"map5095", map5095},
          {"fp32_map50", fp32_map50},
          {"fp32_map5095", fp32_map5095}};
}

nlohmann::json AnalyzeResult::to_json() const {
  nlohmann::json j;
  j["images"] = images;
  j["seconds"] = seconds;
  j["reference"] = fp32_reference ? "fp32 model" : "quantized model with fake quant off";
  j["layers"] = nlohmann::json::array();
  for (const auto& l : layers) {
    nlohmann::json e{{"name", l.name},
                     {"kind", l.kind},
                     {"activation_scheme", l.activation_scheme},
                     {"weight_scheme", l.weight_scheme}};
    e["alone"] = l.alone ? stats_json(*l.alone) : nlohmann::json();
    e["accumulated"] = l.accumulated ? stats_json(*l.accumulated) : nlohmann::json();
    e["weight_hist"] = l.weight_hist ? l.weight_hist->to_json() : nlohmann::json();
    e["act_hist"] = l.act_hist ? l.act_hist->to_json() : nlohmann::json();
    j["layers"].push_back(std::move(e));
  }
  j["drift"] = drift ? drift->to_json() : nlohmann::json();
  return j;
}

struct QuantAnalyzer::State {
  model::YoloV8 q{nullptr}, ref{nullptr};
  AnalyzeOptions opt;
  std::vector<LayerQ> layers;
  std::vector<ErrorAccumulator> alone, acc;
  std::vector<ValueSampler> wsamp, asamp;
  std::unique_ptr<Switches> qsw, rsw;
  int64_t images = 0;
  double seconds = 0;
  bool weights_seen = false;
};

QuantAnalyzer::QuantAnalyzer(model::YoloV8 quantized, model::YoloV8 fp32, AnalyzeOptions opt)
    : s_(std::make_unique<State>()) {
  YQ_CHECK_USAGE(quant::is_prepared(*quantized), "analyze needs a quantized (prepared) model");
  s_->q = quantized, s_->ref = fp32, s_->opt = opt;
  s_->layers = group_layers(*quantized);
  s_->qsw = std::make_unique<Switches>(*quantized);
  if (!fp32.is_empty()) {
    YQ_CHECK_USAGE(quant::is_prepared(*fp32),
                   "the fp32 reference of analyze must be prepared like the model");
    s_->rsw = std::make_unique<Switches>(*fp32);
    std::map<std::string, quant::FakeQuantize> by_name;
    for (auto& [n, fq] : quant::named_quantizers(*fp32)) by_name.emplace(n, fq);
    for (auto& [n, fq] : quant::named_quantizers(*quantized)) {
      YQ_CHECK_USAGE(by_name.count(n), "the fp32 reference has no quantizer {}", n);
      const std::string layer = layer_of(n), suf = suffix_of(n);
      for (auto& l : s_->layers)
        if (l.name == layer) {
          if (suf == "weight_fq")
            l.ref_weight = by_name.at(n);
          else if (suf != "pre_fq")
            l.ref_out = by_name.at(n);
        }
    }
  }
  const size_t n = s_->layers.size();
  s_->alone.resize(n), s_->acc.resize(n), s_->wsamp.resize(n), s_->asamp.resize(n);
  for (size_t i = 0; i < n; ++i) {
    auto& l = s_->layers[i];
    if (!l.weight.is_empty()) {
      clip_ranges(*l.weight, s_->wsamp[i].lo, s_->wsamp[i].hi);
      s_->wsamp[i].axis = l.weight->scheme().per_channel ? l.weight->scheme().axis : -1;
    }
    if (!l.out.is_empty()) {
      clip_ranges(*l.out, s_->asamp[i].lo, s_->asamp[i].hi);
      s_->asamp[i].axis = l.out->scheme().per_channel ? l.out->scheme().axis : -1;
    }
  }
}

QuantAnalyzer::~QuantAnalyzer() {
  if (s_->qsw) s_->qsw->restore();
  if (s_->rsw) s_->rsw->restore();
}

void QuantAnalyzer::add_batch(const torch::Tensor& images_in) {
  auto t0 = std::chrono::steady_clock::now();
  torch::NoGradGuard no_grad;
  State& s = *s_;
  torch::Tensor x = images_in.scalar_type() == torch::kByte ? images_in.to(torch::kFloat) / 255.0
                                                            : images_in.to(torch::kFloat);
  s.q->eval();
  for (auto& [fq, sw] : s.qsw->saved) fq->enable_observer(false), fq->enable_fake_quant(false);
  const size_t n = s.layers.size();
  const int64_t per_call = std::max<int64_t>(1, s.opt.max_samples / 16);

  // Reference pass of the quantized model, fake quant off: its own float outputs (the "alone" baseline).
  std::vector<torch::Tensor> own(n);
  for (size_t i = 0; i < n; ++i) {
    auto& l = s.layers[i];
    if (!l.out.is_empty())
      l.out->set_tap(
          [&own, i](const torch::Tensor& in, const torch::Tensor&) { own[i] = in.detach().clone(); });
    if (!l.weight.is_empty() && !s.weights_seen)
      l.weight->set_tap([&s, i](const torch::Tensor& in, const torch::Tensor&) {
        if (s.wsamp[i].values == 0) s.wsamp[i].add(in, s.opt.max_samples);
      });
  }
  s.q->forward(x);
  for (auto& l : s.layers)
    for (auto& fq : l.all) fq->clear_tap();
  s.weights_seen = true;

  // The float reference of the accumulated errors and of the activation histograms.
  std::vector<torch::Tensor> ref = own;
  if (!s.ref.is_empty()) {
    s.ref->eval();
    for (auto& [fq, sw] : s.rsw->saved) fq->enable_observer(false), fq->enable_fake_quant(false);
    for (size_t i = 0; i < n; ++i)
      if (!s.layers[i].ref_out.is_empty())
        s.layers[i].ref_out->set_tap(
            [&ref, i](const torch::Tensor& in, const torch::Tensor&) { ref[i] = in.detach().clone(); });
    s.ref->forward(x);
    for (auto& l : s.layers)
      if (!l.ref_out.is_empty()) l.ref_out->clear_tap();
  }
  for (size_t i = 0; i < n; ++i)
    if (ref[i].defined()) s.asamp[i].add(ref[i], per_call);

  // Accumulated: everything on, each layer's quantized output against the float reference.
  for (size_t i = 0; i < n; ++i) {
    auto& l = s.layers[i];
    for (auto& fq : l.all) fq->enable_fake_quant(true);
    if (!l.out.is_empty() && ref[i].defined())
      l.out->set_tap(
          [&s, &ref, i](const torch::Tensor&, const torch::Tensor& out) { s.acc[i].add(ref[i], out); });
  }
  s.q->forward(x);
  for (auto& l : s.layers) {
    for (auto& fq : l.all) fq->enable_fake_quant(false), fq->clear_tap();
  }

  // Alone: one pass per layer with only its quantizers on.
  if (s.opt.alone) {
    for (size_t i = 0; i < n; ++i) {
      auto& l = s.layers[i];
      if (l.out.is_empty() || !own[i].defined()) continue;
      for (auto& fq : l.all) fq->enable_fake_quant(true);
      l.out->set_tap(
          [&s, &own, i](const torch::Tensor&, const torch::Tensor& out) { s.alone[i].add(own[i], out); });
      s.q->forward(x);
      l.out->clear_tap();
      for (auto& fq : l.all) fq->enable_fake_quant(false);
    }
  }
  s.images += x.size(0);
  s.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

AnalyzeResult QuantAnalyzer::finish() {
  State& s = *s_;
  AnalyzeResult r;
  r.images = s.images, r.seconds = s.seconds, r.fp32_reference = !s.ref.is_empty();
  for (size_t i = 0; i < s.layers.size(); ++i) {
    const auto& l = s.layers[i];
    LayerAnalysis a;
    a.name = l.name, a.kind = l.kind;
    if (!l.weight.is_empty()) {
      a.weight_scheme = l.weight->scheme().to_string();
      a.weight_hist = s.wsamp[i].finish(s.opt.bins);
    }
    if (!l.out.is_empty()) {
      a.activation_scheme = l.out->scheme().to_string();
      if (s.images > 0) {
        a.accumulated = s.acc[i].stats();
        if (s.opt.alone) a.alone = s.alone[i].stats();
        a.act_hist = s.asamp[i].finish(s.opt.bins);
      }
    }
    r.layers.push_back(std::move(a));
  }
  s.qsw->restore();
  if (s.rsw) s.rsw->restore();
  return r;
}

AccuracyDrift read_accuracy_drift(const fs::path& qat_results_csv, const fs::path& fp32_source) {
  AccuracyDrift d;
  d.qat_results = qat_results_csv.string(), d.fp32_source = fp32_source.string();
  auto col = [](const CsvTable& t, const std::string& name, const fs::path& f) {
    for (size_t c = 0; c < t.columns.size(); ++c)
      if (t.columns[c] == name) return c;
    throw UsageError(fmt::format("{} has no column '{}'", f.string(), name));
  };
  const CsvTable q = read_csv_log(qat_results_csv);
  const size_t ce = col(q, "epoch", qat_results_csv), c50 = col(q, "metrics/mAP50(B)", qat_results_csv),
               c95 = col(q, "metrics/mAP50-95(B)", qat_results_csv);
  for (const auto& row : q.rows) {
    d.epoch.push_back(row[ce]);
    d.map50.push_back(row[c50]);
    d.map5095.push_back(row[c95]);
  }
  if (fp32_source.extension() == ".json") {
    auto j = with_context("while reading " + fp32_source.string(),
                          [&] { return nlohmann::json::parse(read_text(fp32_source)); });
    YQ_CHECK_USAGE(j.contains("mAP50") && j.contains("mAP50-95"), "{} has no mAP50 / mAP50-95 keys",
                   fp32_source.string());
    d.fp32_map50 = j["mAP50"].get<double>(), d.fp32_map5095 = j["mAP50-95"].get<double>();
  } else {
    const CsvTable f = read_csv_log(fp32_source);
    YQ_CHECK_USAGE(!f.rows.empty(), "{} has no rows", fp32_source.string());
    const size_t f50 = col(f, "metrics/mAP50(B)", fp32_source),
                 f95 = col(f, "metrics/mAP50-95(B)", fp32_source);
    double best = -1;
    for (const auto& row : f.rows) {
      const double fit = 0.1 * row[f50] + 0.9 * row[f95];
      if (fit > best) best = fit, d.fp32_map50 = row[f50], d.fp32_map5095 = row[f95];
    }
  }
  return d;
}

std::vector<const LayerAnalysis*> worst_layers(const AnalyzeResult& r, int n) {
  std::vector<const LayerAnalysis*> out;
  for (const auto& l : r.layers)
    if (l.accumulated && std::isfinite(l.accumulated->sqnr_db)) out.push_back(&l);
  std::stable_sort(out.begin(), out.end(), [](const LayerAnalysis* a, const LayerAnalysis* b) {
    return a->accumulated->sqnr_db < b->accumulated->sqnr_db;
  });
  if (int(out.size()) > n) out.resize(size_t(n));
  return out;
}

std::string sqnr_chart(const AnalyzeResult& r, int max_layers) {
  // Module order tells where error grows; a line chart over layer index shows alone vs accumulated,
  // and the bar chart (worst first) names the layers.
  std::vector<svg::Bar> bars;
  for (const auto* l : worst_layers(r, max_layers))
    bars.push_back(
        {l->name + " (" + l->kind + ")", l->accumulated->sqnr_db, l->kind == "conv" ? "" : svg::palette(1)});
  svg::ChartText t{fmt::format("Accumulated SQNR per layer, the {} worst (higher is better)", bars.size()),
                   "SQNR (dB)", "layer", 760, int(90 + 16 * std::max<size_t>(4, bars.size()))};
  return svg::bar_chart(bars, t, /*ascending=*/true, "accumulated SQNR (dB); orange: not a conv", 20,
                        "20 dB (about 1% noise power)");
}

std::string sqnr_profile_chart(const AnalyzeResult& r) {
  svg::Series alone{"this layer alone", {}, {}, "", false}, acc{"accumulated up to here", {}, {}, "", false};
  int idx = 0;
  for (const auto& l : r.layers) {
    if (!l.accumulated) continue;
    acc.x.push_back(idx),
        acc.y.push_back(std::isfinite(l.accumulated->sqnr_db) ? l.accumulated->sqnr_db : NAN);
    if (l.alone)
      alone.x.push_back(idx), alone.y.push_back(std::isfinite(l.alone->sqnr_db) ? l.alone->sqnr_db : NAN);
    ++idx;
  }
  return svg::line_chart(
      {alone, acc}, {"SQNR through the network", "quantized layer (module order)", "SQNR (dB)", 760, 320});
}

std::string drift_chart(const AccuracyDrift& d) {
  const double e0 = d.epoch.empty() ? 0 : d.epoch.front(), e1 = d.epoch.empty() ? 1 : d.epoch.back();
  std::vector<svg::Series> s{
      {"QAT mAP50", d.epoch, d.map50, svg::palette(0), false},
      {"QAT mAP50-95", d.epoch, d.map5095, svg::palette(1), false},
      {"fp32 mAP50", {e0, e1}, {d.fp32_map50, d.fp32_map50}, svg::palette(0), true},
      {"fp32 mAP50-95", {e0, e1}, {d.fp32_map5095, d.fp32_map5095}, svg::palette(1), true}};
  return svg::line_chart(
      s, {"Accuracy drift during QAT vs the fp32 baseline", "QAT epoch", "mAP (0..1)", 640, 340});
}

std::string histogram_chart(const LayerAnalysis& l, bool weight) {
  const Histogram& h = weight ? *l.weight_hist : *l.act_hist;
  // Unlabelled markers do not repeat their legend entry.
  std::vector<svg::Marker> markers{{h.clip_lo, "clipping range", svg::palette(3)},
                                   {h.clip_hi, "", svg::palette(3)}};
  if (weight && (h.clip_lo_median != h.clip_lo || h.clip_hi_median != h.clip_hi))
    markers = {{h.clip_lo, "widest channel's range", svg::palette(3)},
               {h.clip_hi, "", svg::palette(3)},
               {h.clip_lo_median, "median channel's range", svg::palette(2)},
               {h.clip_hi_median, "", svg::palette(2)}};
  const std::string what = weight ? "weights (BN folded)" : "activations";
  svg::ChartText t{fmt::format("{} {}: {:.2f}% outside the range", l.name, what, 100 * h.clipped_fraction),
                   weight ? "weight value" : "activation value", "values (log10(1 + count))", 520, 280};
  return svg::histogram(h.edges, h.counts, markers, t, /*log_y=*/true);
}

std::vector<fs::path> write_analysis(const AnalyzeResult& r, const fs::path& dir, int worst) {
  std::vector<fs::path> files;
  auto put = [&](const fs::path& f, const std::string& text) {
    atomic_write(dir / f, text);
    files.push_back(dir / f);
  };
  put("analyze.json", r.to_json().dump(1));
  put("sqnr.svg", sqnr_chart(r));
  put("sqnr_profile.svg", sqnr_profile_chart(r));
  if (r.drift) put("drift.svg", drift_chart(*r.drift));
  for (const auto* l : worst_layers(r, worst)) {
    std::string base = l->name;
    std::replace(base.begin(), base.end(), '.', '_');
    if (l->weight_hist) put("hist_" + base + "_w.svg", histogram_chart(*l, true));
    if (l->act_hist) put("hist_" + base + "_a.svg", histogram_chart(*l, false));
  }
  return files;
}

}  // namespace yq::eval
