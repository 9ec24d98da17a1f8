// QConfig: which quantizer goes where (DESIGN.md "Quantization").
//
// A QuantSpec describes one quantizer (observer + scheme, optionally learnable); a QConfig pairs the
// spec for a layer's weights with the spec for its output activations (either may be absent = float);
// a QConfigMapping gives every layer its QConfig: a default, then an ordered list of rules
// (layer-name glob -> QConfig, or "keep the layer float"). For a layer the LAST rule whose pattern
// matches its whole name wins; no matching rule means the default.
//
// Layer names are the reference's module names: "model.0", "model.2.m.0.cv1", "model.22.cv2.0.2".
// Globs: `*` matches any run of characters (dots included, as Python's fnmatch), `?` exactly one.
// So "model.22.*" matches every layer of the head and "model.22.cv3.*.2" the last conv of each
// class branch.
//
// The YAML format (configs/quantization.yaml documents it in its comments):
//   weight: {observer: moving_average_per_channel_minmax, bits: 8, symmetric: true, per_channel: true,
//   signed: true} activation: {observer: moving_average_minmax, bits: 8, symmetric: false, signed: false}
//   target: x86                      # deployment target (quant/target.h); absent = none recorded
//   overrides:
//     - pattern: [model.22.cv2.*.2, model.22.cv3.*.2]
//       float: true                  # keep these layers float
//     - pattern: model.6.*
//       weight: {bits: 4}            # fields not given are taken from the default weight spec
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "quant/scheme.h"
#include "quant/target.h"

namespace yq::quant {

struct QuantSpec {
  std::string observer = "minmax";  // registry name (observer.h)
  QScheme scheme;
  bool learnable = false;    // LSQ: scale (and, for affine schemes, the zero point) trained by backprop
  bool grad_scaling = true;  // LSQ gradient scale 1 / sqrt(elements per scale * quant_max)
  // Observer tuning (see ObserverOptions in observer.h for each one's meaning).
  double averaging_constant = 0.01;
  int64_t bins = 2048;
  int64_t upsample_rate = 128;
  double percentile = 99.99;
  int64_t search_steps = 100;

  // Throws UsageError for an unknown observer, an observer that does not fit the scheme, or a value
  // out of range.
  void validate() const;
  // e.g. "int8 symmetric per-channel(axis 0) via moving_average_per_channel_minmax".
  std::string to_string() const;
  bool operator==(const QuantSpec& o) const;
  bool operator!=(const QuantSpec& o) const { return !(*this == o); }
};

struct QConfig {
  std::optional<QuantSpec> weight;      // nullopt: the weights stay float
  std::optional<QuantSpec> activation;  // nullopt: the output stays float
  bool operator==(const QConfig& o) const { return weight == o.weight && activation == o.activation; }
  bool operator!=(const QConfig& o) const { return !(*this == o); }
};

// The spec a quantizer gets on `target` (quant/target.h). `feeds_conv`: the quantized tensor is read by
// an int8 conv (a conv's output after SiLU, a residual add or concat output, the image), so on x86 its
// codes must stay in [0, 127]; a conv's pre-SiLU output (read only by the SiLU table) and the head's final
// outputs (dequantized for the float DFL) keep their bits. Throws UsageError naming `where` for a spec
// the target cannot run (signed activations on a CPU target, other than 8-bit activations on TensorRT).
QuantSpec target_activation_spec(const QuantSpec& spec, Target target, bool feeds_conv,
                                 const std::string& where);
// Weights on `target`: symmetric int8 with zero point 0 on every target; narrow range [-127, 127] on arm
// and tensorrt. Throws UsageError for an asymmetric or unsigned weight spec.
QuantSpec target_weight_spec(const QuantSpec& spec, Target target, const std::string& where);

struct QConfigRule {
  std::string pattern;             // glob over layer names
  std::optional<QConfig> qconfig;  // nullopt: keep the layer float
  int line = 0;                    // line in the YAML file it came from (0: made in code)
};

// True when the glob `pattern` matches all of `name` (`*` any run, `?` one character).
bool glob_match(const std::string& pattern, const std::string& name);

class QConfigMapping {
 public:
  QConfigMapping() = default;
  explicit QConfigMapping(QConfig default_qconfig) : default_(std::move(default_qconfig)) {}

  QConfigMapping& set_default(QConfig qconfig);
  // Appends a rule; later rules take precedence over earlier ones.
  QConfigMapping& add_rule(std::string pattern, std::optional<QConfig> qconfig, int line = 0);

  // The QConfig of `layer_name`: the last matching rule's, else the default. nullopt = keep float.
  std::optional<QConfig> qconfig_for(const std::string& layer_name) const;
  // Throws UsageError when a rule's pattern matches none of `layer_names` (the quantizable layers of
  // the model), naming the pattern, the file and line it came from, and a few real layer names.
  void validate(const std::vector<std::string>& layer_names) const;

  const QConfig& default_qconfig() const { return default_; }
  const std::vector<QConfigRule>& rules() const { return rules_; }
  // Where the mapping came from ("configs/quantization.yaml", "built-in quantization.yaml"; "" in code).
  const std::string& origin() const { return origin_; }
  const std::string& name() const { return name_; }
  const std::string& description() const { return description_; }
  // The deployment target the quantizers are made for (nullopt: none recorded, as in checkpoints written
  // before targets existed; prepare() then uses the specs as they are).
  const std::optional<Target>& target() const { return target_; }
  // Sets the target after checking that every spec of the mapping can run on it (UsageError naming the
  // spec otherwise). The specs themselves stay as written; prepare() applies the target per quantizer.
  QConfigMapping& set_target(std::optional<Target> target);

  // YAML in the format above; from_yaml(to_yaml()) gives an equal mapping (for checkpoints).
  std::string to_yaml() const;
  // Parses the YAML format; errors name `origin`, the line and the key.
  static QConfigMapping from_yaml(const std::string& text, const std::string& origin);
  // Loads a file; when `path` does not exist, falls back to a built-in config of that name (with or
  // without a leading "configs/": "quantization.yaml", "experiments/exp1_symmetric_quant.yaml").
  static QConfigMapping load(const std::string& path);

 private:
  QConfig default_;
  std::vector<QConfigRule> rules_;
  std::string origin_;
  std::string name_;
  std::string description_;
  std::optional<Target> target_;
};

}  // namespace yq::quant
