#include "quant/sensitivity.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>
#include <optional>

#include "core/error.h"
#include "core/progress.h"
#include "model/yolov8.h"
#include "quant/prepare.h"

namespace yq::quant {

// ---------------------------------------------------------------------------------------------- SQNR

void SqnrAccumulator::add(const torch::Tensor& ref, const torch::Tensor& x) {
  YQ_CHECK(ref.sizes() == x.sizes(), "SQNR: reference {} and quantized {} shapes differ",
           c10::str(ref.sizes()), c10::str(x.sizes()));
  torch::NoGradGuard no_grad;
  const torch::Tensor r = ref.detach().to(torch::kDouble);
  signal_ += r.pow(2).sum().item<double>();
  noise_ += (r - x.detach().to(torch::kDouble)).pow(2).sum().item<double>();
  any_ = true;
}

double SqnrAccumulator::db() const {
  if (!any_ || (signal_ == 0 && noise_ == 0)) return std::numeric_limits<double>::quiet_NaN();
  if (noise_ == 0) return std::numeric_limits<double>::infinity();
  if (signal_ == 0) return -std::numeric_limits<double>::infinity();
  return 10.0 * std::log10(signal_ / noise_);
}

double sqnr_db(const torch::Tensor& ref, const torch::Tensor& x) {
  SqnrAccumulator acc;
  acc.add(ref, x);
  return acc.db();
}

// ------------------------------------------------------------------------------------------ layers

namespace {

std::string kind_of(torch::nn::Module* m) {
  if (m->as<model::ConvBnActImpl>()) return "conv";
  if (m->as<model::AddImpl>()) return "add";
  if (m->as<model::ConcatImpl>()) return "concat";
  if (m->as<torch::nn::Conv2dImpl>()) return "head";
  return "other";
}

// "model.0.act_fq" -> "model.0"; "input_fq" -> "".
std::string parent_of(const std::string& quantizer) {
  const auto dot = quantizer.rfind('.');
  return dot == std::string::npos ? std::string() : quantizer.substr(0, dot);
}

}  // namespace

std::vector<QuantizedLayer> quantized_layers(model::YoloV8Impl& model) {
  std::map<std::string, std::vector<std::pair<std::string, FakeQuantize>>> by_layer;
  for (auto& [name, fq] : named_quantizers(model)) {
    if (name == "input_fq") continue;
    by_layer[parent_of(name)].emplace_back(name, fq);
  }
  std::map<std::string, torch::nn::Module*> modules;
  for (const auto& item : model.named_modules("", /*include_self=*/false))
    modules[item.key()] = item.value().get();

  std::vector<QuantizedLayer> out;
  size_t placed = 0;
  for (const std::string& name : quantizable_layers(model)) {
    auto it = by_layer.find(name);
    if (it == by_layer.end()) continue;
    YQ_ASSERT(modules.count(name));
    out.push_back(QuantizedLayer{name, kind_of(modules[name]), it->second});
    placed += 1;
  }
  YQ_CHECK(placed == by_layer.size(), "sensitivity: {} quantizer owners are not quantizable layers",
           by_layer.size() - placed);
  return out;
}

std::vector<std::string> float_layers(model::YoloV8Impl& model) {
  std::map<std::string, bool> has;
  for (auto& [name, fq] : named_quantizers(model)) has[parent_of(name)] = true;
  std::vector<std::string> out;
  for (const std::string& name : quantizable_layers(model))
    if (!has.count(name)) out.push_back(name);
  return out;
}

void set_quantized(model::YoloV8Impl& model, const std::vector<QuantizedLayer>& layers,
                   const std::vector<bool>& on, bool input_on) {
  YQ_ASSERT(on.size() == layers.size());
  for (size_t i = 0; i < layers.size(); ++i)
    for (const auto& q : layers[i].quantizers) {
      FakeQuantize fq = q.second;
      fq->enable_fake_quant(on[i]);
    }
  if (model.input_fq) model.input_fq->enable_fake_quant(input_on);
}

// ----------------------------------------------------------------------------------------- ranking

namespace {

// a before b in ascending order, NaN last.
bool less_nan_last(double a, double b) {
  if (std::isnan(a)) return false;
  if (std::isnan(b)) return true;
  return a < b;
}

bool greater_nan_last(double a, double b) {
  if (std::isnan(a)) return false;
  if (std::isnan(b)) return true;
  return a > b;
}

// JSON number, or null for an infinite / NaN value.
nlohmann::json num(double v) {
  return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
}

}  // namespace

void rank_layers(std::vector<LayerSensitivity>& layers) {
  const size_t n = layers.size();
  std::vector<size_t> idx(n);
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t b) {
    return less_nan_last(layers[a].only_this, layers[b].only_this);
  });
  for (size_t r = 0; r < n; ++r) layers[idx[r]].rank_only_this = int(r) + 1;
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t b) {
    return greater_nan_last(layers[a].all_but_this, layers[b].all_but_this);
  });
  for (size_t r = 0; r < n; ++r) layers[idx[r]].rank_all_but_this = int(r) + 1;

  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t b) {
    const auto& x = layers[a];
    const auto& y = layers[b];
    const int sx = x.rank_only_this + x.rank_all_but_this, sy = y.rank_only_this + y.rank_all_but_this;
    if (sx != sy) return sx < sy;
    if (x.all_but_this != y.all_but_this) return greater_nan_last(x.all_but_this, y.all_but_this);
    return less_nan_last(x.only_this, y.only_this);
  });
  std::vector<LayerSensitivity> sorted;
  sorted.reserve(n);
  for (size_t r = 0; r < n; ++r) {
    sorted.push_back(std::move(layers[idx[r]]));
    sorted.back().rank = int(r) + 1;
  }
  layers = std::move(sorted);
}

nlohmann::json SensitivityResult::to_json() const {
  nlohmann::json j;
  j["metric"] = metric;
  j["baseline"] = {{"fp32", num(fp32)}, {"all_quantized", num(all_quantized)}};
  j["layers"] = nlohmann::json::array();
  for (const auto& l : layers)
    j["layers"].push_back({{"name", l.name},
                           {"kind", l.kind},
                           {"only_this", num(l.only_this)},
                           {"all_but_this", num(l.all_but_this)},
                           {"rank", l.rank},
                           {"rank_only_this", l.rank_only_this},
                           {"rank_all_but_this", l.rank_all_but_this}});
  j["float_layers"] = float_layers;
  j["seconds"] = seconds;
  j["evaluations"] = evaluations;
  return j;
}

std::string SensitivityResult::table(size_t max_rows) const {
  const bool db = metric == "sqnr";
  const std::string unit = db ? "SQNR dB" : "mAP50-95";
  auto f = [&](double v) { return db ? fmt::format("{:.2f}", v) : fmt::format("{:.4f}", v); };
  size_t width = 5;
  for (const auto& l : layers) width = std::max(width, l.name.size());
  std::string t = fmt::format("{} - fp32 {}, all quantized {}\n", unit, f(fp32), f(all_quantized));
  t += fmt::format("{:>4}  {:<{}}  {:<6}  {:>10}  {:>12}\n", "rank", "layer", width, "kind", "only_this",
                   "all_but_this");
  const size_t rows = max_rows == 0 ? layers.size() : std::min(max_rows, layers.size());
  for (size_t i = 0; i < rows; ++i) {
    const auto& l = layers[i];
    t += fmt::format("{:>4}  {:<{}}  {:<6}  {:>10}  {:>12}\n", l.rank, l.name, width, l.kind, f(l.only_this),
                     f(l.all_but_this));
  }
  if (rows < layers.size()) t += fmt::format("... {} more layers\n", layers.size() - rows);
  return t;
}

std::vector<std::string> SensitivityResult::top(size_t k) const {
  std::vector<std::string> out;
  for (size_t i = 0; i < std::min(k, layers.size()); ++i) out.push_back(layers[i].name);
  return out;
}

// ---------------------------------------------------------------------------------------- analysis

SensitivityResult analyze_sensitivity(model::YoloV8Impl& model, const std::string& metric_name,
                                      const SensitivityMetric& metric, const SensitivityOptions& opt) {
  YQ_CHECK_USAGE(is_prepared(model),
                 "sensitivity: the model has no quantizers (prepare and calibrate it, or load a PTQ / QAT "
                 "checkpoint)");
  const auto t0 = std::chrono::steady_clock::now();
  model.eval();
  freeze_quantizers(model);
  const std::vector<QuantizedLayer> layers = quantized_layers(model);
  YQ_CHECK_USAGE(!layers.empty(), "sensitivity: the qconfig keeps every layer float; nothing to measure");
  const size_t n = layers.size();

  SensitivityResult res;
  res.metric = metric_name;
  res.float_layers = float_layers(model);
  const int64_t total = 2 * int64_t(n) + 2;
  std::optional<ProgressBar> bar;
  if (opt.progress) bar.emplace("sensitivity", total);
  auto step = [&](const std::string& what) {
    res.evaluations += 1;
    if (bar) bar->update(res.evaluations, what);
  };

  torch::NoGradGuard no_grad;
  set_quantized(model, layers, std::vector<bool>(n, false), false);
  res.fp32 = metric(model);
  step("fp32");
  set_quantized(model, layers, std::vector<bool>(n, true), true);
  res.all_quantized = metric(model);
  step("all quantized");
  for (size_t i = 0; i < n; ++i) {
    LayerSensitivity l;
    l.name = layers[i].name;
    l.kind = layers[i].kind;
    std::vector<bool> on(n, false);
    on[i] = true;
    set_quantized(model, layers, on, false);
    l.only_this = metric(model);
    step(l.name + " only");
    on.assign(n, true);
    on[i] = false;
    set_quantized(model, layers, on, true);
    l.all_but_this = metric(model);
    step(l.name + " excluded");
    res.layers.push_back(std::move(l));
  }
  set_quantized(model, layers, std::vector<bool>(n, true), true);
  if (bar) bar->finish(fmt::format("{} layers", n));
  rank_layers(res.layers);
  res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return res;
}

// ------------------------------------------------------------------------------------- SQNR metric

OutputSqnr::OutputSqnr(model::YoloV8Impl& model, std::vector<torch::Tensor> images)
    : images_(std::move(images)) {
  YQ_CHECK_USAGE(!images_.empty(), "sensitivity: no images for the SQNR metric");
  torch::NoGradGuard no_grad;
  model.eval();
  // Every quantizer off for the reference, then the switches as they were.
  std::vector<std::pair<FakeQuantize, bool>> saved;
  for (auto& [name, fq] : named_quantizers(model)) {
    saved.emplace_back(fq, fq->fake_quant_enabled());
    fq->enable_fake_quant(false);
  }
  for (const auto& x : images_) reference_.push_back(model.forward_raw(x));
  for (auto& [fq, on] : saved) fq->enable_fake_quant(on);
}

double OutputSqnr::operator()(model::YoloV8Impl& model) const {
  torch::NoGradGuard no_grad;
  SqnrAccumulator acc;
  for (size_t b = 0; b < images_.size(); ++b) {
    const std::vector<torch::Tensor> out = model.forward_raw(images_[b]);
    YQ_ASSERT(out.size() == reference_[b].size());
    for (size_t l = 0; l < out.size(); ++l) acc.add(reference_[b][l], out[l]);
  }
  return acc.db();
}

int64_t OutputSqnr::images() const {
  int64_t n = 0;
  for (const auto& x : images_) n += x.size(0);
  return n;
}

// --------------------------------------------------------------------------------- critical qconfig

CriticalPrecision parse_critical(const std::string& s, const std::string& key) {
  if (s == "float") return CriticalPrecision::kFloat;
  if (s == "int8") return CriticalPrecision::kInt8;
  throw UsageError(fmt::format("key '{}': expected float or int8, found '{}'", key, s));
}

QConfigMapping critical_qconfig(const QConfigMapping& base, const std::vector<std::string>& critical,
                                CriticalPrecision how) {
  QConfigMapping out = base;
  std::vector<std::string> changed;
  for (const std::string& name : critical) {
    const std::optional<QConfig> qc = base.qconfig_for(name);
    if (!qc) continue;  // already float
    if (how == CriticalPrecision::kFloat) {
      out.add_rule(name, std::nullopt);
      changed.push_back(name);
      continue;
    }
    QConfig q = *qc;
    bool raised = false;
    for (std::optional<QuantSpec>* spec : {&q.weight, &q.activation}) {
      if (*spec && (*spec)->scheme.bits < 8) {
        (*spec)->scheme.bits = 8;
        raised = true;
      }
    }
    if (raised) {
      out.add_rule(name, q);
      changed.push_back(name);
    }
  }
  // Name and description through the YAML form (the mapping has no setters for them).
  const YAML::Node emitted = YAML::Load(out.to_yaml());
  YAML::Node node(YAML::NodeType::Map);
  node["name"] = base.name().empty() ? std::string("sensitivity") : base.name() + "-sensitivity";
  std::string desc = base.description().empty() ? std::string() : base.description() + "; ";
  std::string list;
  for (const auto& c : changed) list += (list.empty() ? "" : ", ") + c;
  desc += changed.empty() ? std::string("sensitivity: no critical layer needed a change")
                          : fmt::format("sensitivity: critical layers kept {}: {}",
                                        how == CriticalPrecision::kFloat ? "float" : "at 8 bits", list);
  node["description"] = desc;
  for (const auto& kv : emitted) {
    const std::string key = kv.first.as<std::string>();
    if (key != "name" && key != "description") node[key] = kv.second;
  }
  YAML::Emitter em;
  em << node;
  return QConfigMapping::from_yaml(std::string(em.c_str()) + "\n", "sensitivity qconfig");
}

}  // namespace yq::quant
