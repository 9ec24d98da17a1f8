// The QAT schedule of the quantizers' switches (DESIGN.md "Quantization", QAT schedule): progressive
// stages and the observer freeze.
//
// Stages (`stages: [backbone, neck, head]`, `stage_epochs: E`): stage k's quantizers get fake
// quantization (and, when the run observes, their observers) from epoch k * E (0-based); before that
// they are off and their layers compute in float. An empty list is one stage holding every layer.
// A stage entry is a group name or a glob over quantizable layer names (quant/qconfig.h glob_match),
// several joined by '+' ("neck+head", "model.2*+model.3*"). Groups, by the layer's index in the model's
// layer table (not hard-coded numbers):
//   backbone  layers 0 .. the last SPPF (when there is none: the layers before the first Upsample)
//   neck      the layers after the backbone up to the one before Detect
//   head      the Detect layer (its ConvBnActs and final convs)
// A layer belongs to the first stage that names it; a layer that no stage names, or an entry that names
// no layer, is a UsageError. The input quantizer (fixed 1/255 grid) follows the first layer's stage.
//
// Observers (`observe` = the run starts from fp32; a PTQ start keeps its calibrated ranges and never
// observes): a quantizer observes from its stage's first epoch until freeze_observer_epoch, and at
// least during its stage's first epoch (ranges are never used unobserved).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace yq::model {
class YoloV8Impl;
}

namespace yq::quant {

// "backbone", "neck" or "head" for a quantizable layer name ("model.12.cv1" -> "neck", "input" ->
// "backbone"); throws Error for a name that does not start with "model.<index>".
std::string layer_group(model::YoloV8Impl& model, const std::string& layer);

struct QatScheduleOptions {
  std::vector<std::string> stages;     // empty = everything from epoch 0
  int64_t stage_epochs = 1;            // epochs per stage (>= 1)
  int64_t freeze_observer_epoch = -1;  // observers off from this epoch (< 0: never)
  bool observe = true;                 // false: observers stay off (a PTQ start)
};

class QatSchedule {
 public:
  // Resolves the stages against the quantizable layers of a model of this layer table (prepared or not).
  // Throws UsageError for an entry that names no layer or a layer no stage names.
  QatSchedule(model::YoloV8Impl& model, QatScheduleOptions options);

  int64_t num_stages() const { return int64_t(stage_layers_.size()); }
  int64_t stage_start(int64_t stage) const { return stage * opt_.stage_epochs; }  // first epoch
  // Stage index of a quantizable layer ("model.2.m.0.cv1", "input"); -1 when unknown.
  int64_t stage_of_layer(const std::string& layer) const;
  // Stage of a quantizer by its full name ("model.0.act_fq", "input_fq"); -1 when unknown.
  int64_t stage_of_quantizer(const std::string& quantizer) const;
  // Layers of stage k, in module order.
  const std::vector<std::string>& stage_layers(int64_t stage) const { return stage_layers_.at(stage); }

  // What the switches of a quantizer of stage `stage` are at `epoch`.
  bool fake_quant_on(int64_t stage, int64_t epoch) const;
  bool observer_on(int64_t stage, int64_t epoch) const;

  // Sets every quantizer's switches of a prepared model for `epoch` (idempotent, so a resumed run
  // gets the same state as an uninterrupted one) and logs the stages that start at this epoch.
  void apply(model::YoloV8Impl& model, int64_t epoch) const;

  // One line per stage: "stage 2/3 (neck) from epoch 2: 21 layers".
  std::string describe() const;

 private:
  QatScheduleOptions opt_;
  std::vector<std::string> names_;                      // display name per stage
  std::vector<std::vector<std::string>> stage_layers_;  // per stage
  std::map<std::string, int64_t> layer_stage_;
};

}  // namespace yq::quant
