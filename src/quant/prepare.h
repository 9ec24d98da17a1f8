// prepare(): makes a float YoloV8 quantization-aware in place (PyTorch's prepare_qat, without module
// swapping: the model's own modules get quantizers, quant/qat_modules.h).
//
// Quantizable layers, by the reference's module names (what qconfig patterns match):
//   conv      every ConvBnAct ("model.0", "model.2.m.0.cv1", "model.22.cv2.0.1"): weight quantizer on
//             the BN-folded weight ("<layer>.weight_fq.*"), a quantizer of the conv output before SiLU
//             ("<layer>.pre_fq.*", where an int8 conv writes; same spec as the activation) and the
//             output quantizer after SiLU ("<layer>.act_fq.*")
//   head      the Detect head's final 1x1 convs ("model.22.cv2.0.2", "model.22.cv3.1.2"): weight and
//             output quantizers as the qconfig says ("<layer>.weight_fq.*", "<layer>.act_fq.*")
//   add       residual adds ("model.2.m.0.add"): output quantizer ("<layer>.out_fq.*")
//   concat    concats ("model.11", "model.2.cat", "model.9.cat"): one quantizer on the output, shared by
//             the inputs ("<layer>.out_fq.*")
// Split, max-pool and upsample pass their input's qparams through. The image gets the fixed quantizer
// "input_fq" when the first layer's qconfig has an activation spec: with its scheme, [0, 1] maps onto
// the whole integer range (uint8 affine: scale 1/255, zero point 0; target x86: 7 bits, scale 1/127).
// DFL and decoding stay float.
// With a target (QConfigMapping::target), every spec is first made what the target runs
// (target_activation_spec / target_weight_spec): on x86 the tensors convs read get 7-bit grids while
// pre_fq and the head's outputs keep the spec's bits.
// A layer whose qconfig is None stays float; a weight or activation spec of null leaves that tensor float.
//
// After prepare every quantizer has its observer and fake quant on (QAT); weight quantizers have
// already observed the initial weights, so checkpoints of prepared models have fixed tensor shapes.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "quant/fake_quantize.h"
#include "quant/qconfig.h"

namespace yq::model {
class YoloV8Impl;
}

namespace yq::quant {

struct PreparedLayer {
  std::string name;                             // "model.2.m.0.cv1"
  std::string kind;                             // conv, head, add, concat, input
  std::optional<QuantSpec> weight, activation;  // installed quantizers (nullopt = float)
};

struct PrepareReport {
  std::vector<PreparedLayer> layers;  // every quantizable layer, float ones included, in module order
  int64_t weight_quantizers = 0, activation_quantizers = 0, float_layers = 0;
  std::string summary() const;  // one line
};

// Names of the quantizable layers of `model`, in module order (what QConfigMapping::validate takes).
std::vector<std::string> quantizable_layers(model::YoloV8Impl& model);

// Installs quantizers per `mapping`. Throws UsageError when a pattern of the mapping matches no layer
// (naming it) and Error when the model is already prepared.
PrepareReport prepare(model::YoloV8Impl& model, const QConfigMapping& mapping);

bool is_prepared(model::YoloV8Impl& model);

// The largest pair sum 2 x a_max x |w_max| that an int8 conv of this prepared model can form
// (quant/target.h): a_max the highest code of any quantizer whose tensor an int8 conv reads (act_fq, add /
// concat outputs, the image; signed grids counted in the uint8 domain, +128), w_max the largest |weight code|
// of its schemes.
int64_t int8_pair_bound(model::YoloV8Impl& model);

// Every quantizer with its full name ("model.0.act_fq", "input_fq"), in module order.
std::vector<std::pair<std::string, FakeQuantize>> named_quantizers(model::YoloV8Impl& model);

// Switches of all quantizers. enable_observers leaves the input quantizer (fixed qparams) off.
void enable_observers(model::YoloV8Impl& model, bool on);
void enable_fake_quant(model::YoloV8Impl& model, bool on);
// Fixes every quantizer's qparams (observers off).
void freeze_quantizers(model::YoloV8Impl& model);
// QAT: BN layers use and keep their running statistics from now on (on = true) or again follow the
// batch statistics in training (on = false).
void freeze_bn(model::YoloV8Impl& model, bool on = true);

}  // namespace yq::quant
