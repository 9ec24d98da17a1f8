#include "quant/qat_stages.h"

#include <fmt/format.h>

#include <algorithm>
#include <sstream>

#include "core/error.h"
#include "core/log.h"
#include "model/yolov8.h"
#include "quant/prepare.h"
#include "quant/qconfig.h"

namespace yq::quant {

namespace {

// The last backbone layer and the Detect layer, from the layer table.
struct Split {
  int64_t backbone_last = -1;
  int64_t detect = -1;
};

Split split_of(model::YoloV8Impl& model) {
  const auto& layers = model.layers();
  YQ_ASSERT(!layers.empty());
  Split s;
  s.detect = layers.back().index;
  for (const auto& l : layers)
    if (l.module == "SPPF") s.backbone_last = l.index;
  if (s.backbone_last < 0) {
    for (const auto& l : layers) {
      if (l.module == "Upsample") {
        s.backbone_last = l.index - 1;
        break;
      }
    }
  }
  YQ_CHECK(s.backbone_last >= 0 && s.backbone_last < s.detect,
           "stages: cannot tell the backbone from the neck in this layer table (no SPPF, no Upsample)");
  return s;
}

int64_t layer_index(const std::string& layer) {
  YQ_CHECK(layer.rfind("model.", 0) == 0, "stages: '{}' is not a layer name (model.<index>...)", layer);
  const std::string rest = layer.substr(6);
  const size_t dot = rest.find('.');
  const std::string num = rest.substr(0, dot);
  YQ_CHECK(!num.empty() && std::all_of(num.begin(), num.end(), ::isdigit),
           "stages: '{}' is not a layer name (model.<index>...)", layer);
  return std::stoll(num);
}

std::string group_of(const Split& s, const std::string& layer) {
  if (layer == "input") return "backbone";
  const int64_t i = layer_index(layer);
  if (i <= s.backbone_last) return "backbone";
  if (i < s.detect) return "neck";
  return "head";
}

std::vector<std::string> split_plus(const std::string& entry) {
  std::vector<std::string> out;
  std::stringstream ss(entry);
  std::string item;
  while (std::getline(ss, item, '+')) {
    item.erase(0, item.find_first_not_of(' '));
    item.erase(item.find_last_not_of(' ') + 1);
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

// The layer a quantizer belongs to: its name without the last component ("model.0.act_fq" -> "model.0").
std::string layer_of_quantizer(const std::string& q) {
  if (q == "input_fq") return "input";
  const size_t dot = q.rfind('.');
  return dot == std::string::npos ? q : q.substr(0, dot);
}

}  // namespace

std::string layer_group(model::YoloV8Impl& model, const std::string& layer) {
  return group_of(split_of(model), layer);
}

QatSchedule::QatSchedule(model::YoloV8Impl& model, QatScheduleOptions options) : opt_(std::move(options)) {
  YQ_CHECK_USAGE(opt_.stage_epochs >= 1, "key 'stage_epochs' must be >= 1, found {}", opt_.stage_epochs);
  const Split split = split_of(model);
  const std::vector<std::string> layers = quantizable_layers(model);
  std::vector<std::string> entries = opt_.stages;
  if (entries.empty()) entries = {"*"};
  stage_layers_.resize(entries.size());
  for (size_t k = 0; k < entries.size(); ++k) {
    const auto items = split_plus(entries[k]);
    YQ_CHECK_USAGE(!items.empty(), "key 'stages': entry {} is empty", k + 1);
    names_.push_back(entries[k]);
    for (const auto& item : items) {
      const bool is_group = item == "backbone" || item == "neck" || item == "head";
      int64_t matched = 0;
      for (const auto& l : layers) {
        const bool hit = is_group ? group_of(split, l) == item : glob_match(item, l);
        if (!hit) continue;
        ++matched;
        if (layer_stage_.count(l)) continue;  // the first stage that names a layer keeps it
        layer_stage_[l] = int64_t(k);
        stage_layers_[k].push_back(l);
      }
      YQ_CHECK_USAGE(matched > 0,
                     "key 'stages': '{}' names no quantizable layer (groups: backbone, neck, head; or a "
                     "glob such as model.2* over names like {})",
                     item, layers.empty() ? std::string("model.0") : layers.front());
    }
  }
  std::vector<std::string> missing;
  for (const auto& l : layers)
    if (!layer_stage_.count(l)) missing.push_back(l);
  YQ_CHECK_USAGE(missing.empty(),
                 "key 'stages' = [{}] leaves {} quantizable layers in no stage (e.g. {}); add them to a "
                 "stage, or end the list with '*' for the rest",
                 fmt::join(opt_.stages, ", "), missing.size(),
                 fmt::join(missing.begin(), missing.begin() + std::min<size_t>(3, missing.size()), ", "));
  // The input quantizer goes with the first layer.
  if (!layers.empty()) layer_stage_["input"] = layer_stage_.at(layers.front());
}

int64_t QatSchedule::stage_of_layer(const std::string& layer) const {
  auto it = layer_stage_.find(layer);
  return it == layer_stage_.end() ? -1 : it->second;
}

int64_t QatSchedule::stage_of_quantizer(const std::string& quantizer) const {
  return stage_of_layer(layer_of_quantizer(quantizer));
}

bool QatSchedule::fake_quant_on(int64_t stage, int64_t epoch) const {
  return epoch >= stage_start(stage);
}

bool QatSchedule::observer_on(int64_t stage, int64_t epoch) const {
  if (!opt_.observe || epoch < stage_start(stage)) return false;
  if (opt_.freeze_observer_epoch < 0) return true;
  return epoch < std::max(opt_.freeze_observer_epoch, stage_start(stage) + 1);
}

void QatSchedule::apply(model::YoloV8Impl& model, int64_t epoch) const {
  std::vector<int64_t> count(stage_layers_.size(), 0);
  for (auto& [name, fq] : named_quantizers(model)) {
    const int64_t k = stage_of_quantizer(name);
    YQ_CHECK(k >= 0, "stages: quantizer {} belongs to no stage (the schedule was built for another model)",
             name);
    // Observer first: turning it off brings the qparams up to date with what it has seen.
    const bool obs = name != "input_fq" && observer_on(k, epoch);
    if (fq->observer_enabled() != obs) fq->enable_observer(obs);
    const bool fq_on = fake_quant_on(k, epoch);
    if (fq->fake_quant_enabled() != fq_on) fq->enable_fake_quant(fq_on);
    ++count[size_t(k)];
  }
  if (stage_layers_.size() < 2) return;
  for (size_t k = 0; k < stage_layers_.size(); ++k) {
    if (stage_start(int64_t(k)) != epoch) continue;
    log::info("epoch {}: QAT stage {}/{} ({}) starts: fake quantization on for {} quantizers of {} layers",
              epoch + 1, k + 1, stage_layers_.size(), names_[k], count[k], stage_layers_[k].size());
    if (opt_.observe && opt_.freeze_observer_epoch >= 0 && epoch >= opt_.freeze_observer_epoch)
      log::info("stage {} starts at or after freeze_observer_epoch {}: its observers run for this epoch only",
                k + 1, opt_.freeze_observer_epoch);
  }
}

std::string QatSchedule::describe() const {
  std::string out;
  for (size_t k = 0; k < stage_layers_.size(); ++k)
    out += fmt::format("{}stage {}/{} ({}) from epoch {}: {} layers", k ? "; " : "", k + 1,
                       stage_layers_.size(), names_[k], stage_start(int64_t(k)) + 1, stage_layers_[k].size());
  return out;
}

}  // namespace yq::quant
