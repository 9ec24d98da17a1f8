#include "quant/qconfig.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <limits>

#include "core/config.h"
#include "core/error.h"
#include "core/fs.h"
#include "quant/observer.h"

namespace yq::quant {

// ---------------------------------------------------------------------------------------------------
// QuantSpec

void QuantSpec::validate() const {
  check_observer(observer, scheme);
  ObserverOptions o;
  o.scheme = scheme;
  o.averaging_constant = averaging_constant;
  o.bins = bins;
  o.upsample_rate = upsample_rate;
  o.percentile = percentile;
  o.search_steps = search_steps;
  make_observer(observer, o);  // checks the tuning values with the observer's own rules
}

std::string QuantSpec::to_string() const {
  return fmt::format("{} via {}{}", scheme.to_string(), observer, learnable ? " (learnable)" : "");
}

bool QuantSpec::operator==(const QuantSpec& o) const {
  return observer == o.observer && scheme == o.scheme && learnable == o.learnable &&
         grad_scaling == o.grad_scaling && averaging_constant == o.averaging_constant && bins == o.bins &&
         upsample_rate == o.upsample_rate && percentile == o.percentile && search_steps == o.search_steps;
}

// ---------------------------------------------------------------------------------------------------
// Targets

QuantSpec target_activation_spec(const QuantSpec& spec, Target target, bool feeds_conv,
                                 const std::string& where) {
  QuantSpec s = spec;
  const std::string t = target_name(target);
  if (target == Target::kTensorRT) {
    YQ_CHECK_USAGE(s.scheme.bits == 8, "{}: target tensorrt runs 8-bit activations only, found {} bits",
                   where, s.scheme.bits);
    s.scheme.is_signed = true, s.scheme.symmetric = true, s.scheme.narrow_range = true;
    return s;
  }
  YQ_CHECK_USAGE(
      !s.scheme.is_signed,
      "{}: target {} runs unsigned (uint8) activations, found {}; signed symmetric activations are "
      "target=tensorrt",
      where, t, s.scheme.to_string());
  if (target == Target::kX86 && feeds_conv) s.scheme.bits = std::min(s.scheme.bits, 7);
  return s;
}

QuantSpec target_weight_spec(const QuantSpec& spec, Target target, const std::string& where) {
  QuantSpec s = spec;
  if (target == Target::kTensorRT) {
    YQ_CHECK_USAGE(s.scheme.symmetric && s.scheme.is_signed,
                   "{}: target tensorrt needs signed symmetric weights (zero point 0), found {}", where,
                   s.scheme.to_string());
    s.scheme.narrow_range = true;
  } else if (target == Target::kArm && s.scheme.symmetric && s.scheme.is_signed) {
    s.scheme.narrow_range = true;
  }
  return s;
}

QConfigMapping& QConfigMapping::set_target(std::optional<Target> target) {
  if (target) {
    const std::string where = origin_.empty() ? "qconfig" : origin_;
    auto check = [&](const QConfig& qc, const std::string& what) {
      if (qc.weight) target_weight_spec(*qc.weight, *target, where + ": " + what + " weight");
      if (qc.activation)
        target_activation_spec(*qc.activation, *target, true, where + ": " + what + " activation");
    };
    check(default_, "default");
    for (const auto& r : rules_)
      if (r.qconfig)
        check(*r.qconfig,
              fmt::format("override '{}'{}", r.pattern, r.line ? fmt::format(" (line {})", r.line) : ""));
  }
  target_ = target;
  return *this;
}

// ---------------------------------------------------------------------------------------------------
// Globs and the mapping

bool glob_match(const std::string& pattern, const std::string& name) {
  size_t p = 0, n = 0, star = std::string::npos, star_n = 0;
  while (n < name.size()) {
    if (p < pattern.size() && (pattern[p] == '?' || pattern[p] == name[n])) {
      ++p, ++n;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      star_n = n;
    } else if (star != std::string::npos) {  // let the last '*' absorb one more character
      p = star + 1;
      n = ++star_n;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

QConfigMapping& QConfigMapping::set_default(QConfig qconfig) {
  default_ = std::move(qconfig);
  return *this;
}

QConfigMapping& QConfigMapping::add_rule(std::string pattern, std::optional<QConfig> qconfig, int line) {
  YQ_CHECK_USAGE(!pattern.empty(), "qconfig{}: an override has an empty pattern",
                 origin_.empty() ? "" : " " + origin_);
  rules_.push_back(QConfigRule{std::move(pattern), std::move(qconfig), line});
  return *this;
}

std::optional<QConfig> QConfigMapping::qconfig_for(const std::string& layer_name) const {
  for (auto it = rules_.rbegin(); it != rules_.rend(); ++it)
    if (glob_match(it->pattern, layer_name)) return it->qconfig;
  return default_;
}

void QConfigMapping::validate(const std::vector<std::string>& layer_names) const {
  for (const auto& rule : rules_) {
    bool hit = std::any_of(layer_names.begin(), layer_names.end(),
                           [&](const std::string& n) { return glob_match(rule.pattern, n); });
    if (hit) continue;
    std::vector<std::string> sample(layer_names.begin(),
                                    layer_names.begin() + std::min<size_t>(layer_names.size(), 6));
    std::string where = origin_.empty() ? "qconfig" : origin_;
    if (rule.line > 0) where += fmt::format(":{}", rule.line);
    throw UsageError(
        fmt::format("{}: pattern '{}' matches no quantizable layer of this model ({} layers, e.g. {}{})",
                    where, rule.pattern, layer_names.size(), fmt::join(sample, ", "),
                    layer_names.size() > sample.size() ? ", ..." : ""));
  }
}

// ---------------------------------------------------------------------------------------------------
// YAML

namespace {

const std::vector<std::string> kSpecKeys = {
    "observer",    "bits",      "symmetric",    "per_channel",        "axis", "signed",        "narrow_range",
    "eps",         "learnable", "grad_scaling", "averaging_constant", "bins", "upsample_rate", "percentile",
    "search_steps"};

struct Reader {
  std::string origin;

  std::string at(const YAML::Node& n) const { return fmt::format("{}:{}", origin, n.Mark().line + 1); }

  [[noreturn]] void fail(const YAML::Node& n, const std::string& msg) const {
    throw UsageError(fmt::format("{}: {}", at(n), msg));
  }

  void check_keys(const YAML::Node& map, const std::vector<std::string>& allowed,
                  const std::string& what) const {
    if (!map.IsMap()) fail(map, what + " must be a mapping");
    for (const auto& kv : map) {
      std::string key = kv.first.as<std::string>();
      if (std::find(allowed.begin(), allowed.end(), key) != allowed.end()) continue;
      std::string closest;
      size_t best = std::numeric_limits<size_t>::max();
      for (const auto& a : allowed) {
        size_t d = edit_distance(key, a);
        if (d < best) best = d, closest = a;
      }
      fail(kv.first, fmt::format("unknown key '{}' in {}{}; known keys: {}", key, what,
                                 best <= 3 ? fmt::format(" (did you mean '{}'?)", closest) : "",
                                 fmt::join(allowed, ", ")));
    }
  }

  template <class T>
  T get(const YAML::Node& n, const std::string& key, const char* type) const {
    try {
      return n.as<T>();
    } catch (const YAML::Exception&) {
      fail(n,
           fmt::format("'{}' must be {}, found '{}'", key, type, n.IsScalar() ? n.Scalar() : "a collection"));
    }
  }

  // A spec: the fields of `base` replaced by those the mapping gives.
  QuantSpec spec(const YAML::Node& map, QuantSpec base, const std::string& what) const {
    check_keys(map, kSpecKeys, what);
    for (const auto& kv : map) {
      const std::string key = kv.first.as<std::string>();
      const YAML::Node& v = kv.second;
      if (key == "observer")
        base.observer = get<std::string>(v, key, "a name");
      else if (key == "bits")
        base.scheme.bits = get<int>(v, key, "an integer");
      else if (key == "symmetric")
        base.scheme.symmetric = get<bool>(v, key, "true or false");
      else if (key == "per_channel")
        base.scheme.per_channel = get<bool>(v, key, "true or false");
      else if (key == "axis")
        base.scheme.axis = get<int64_t>(v, key, "an integer");
      else if (key == "signed")
        base.scheme.is_signed = get<bool>(v, key, "true or false");
      else if (key == "narrow_range")
        base.scheme.narrow_range = get<bool>(v, key, "true or false");
      else if (key == "eps")
        base.scheme.eps = get<double>(v, key, "a number");
      else if (key == "learnable")
        base.learnable = get<bool>(v, key, "true or false");
      else if (key == "grad_scaling")
        base.grad_scaling = get<bool>(v, key, "true or false");
      else if (key == "averaging_constant")
        base.averaging_constant = get<double>(v, key, "a number");
      else if (key == "bins")
        base.bins = get<int64_t>(v, key, "an integer");
      else if (key == "upsample_rate")
        base.upsample_rate = get<int64_t>(v, key, "an integer");
      else if (key == "percentile")
        base.percentile = get<double>(v, key, "a number");
      else if (key == "search_steps")
        base.search_steps = get<int64_t>(v, key, "an integer");
    }
    try {
      base.validate();
    } catch (const UsageError& e) {
      fail(map, fmt::format("{}: {}", what, e.what()));
    }
    return base;
  }

  // A weight/activation entry: null = float; a mapping = spec over `base` (or QuantSpec{} when absent).
  std::optional<QuantSpec> optional_spec(const YAML::Node& n, const std::optional<QuantSpec>& base,
                                         const std::string& what) const {
    if (n.IsNull()) return std::nullopt;
    return spec(n, base.value_or(QuantSpec{}), what);
  }
};

// Shortest text that reads back as the same double.
std::string num(double v) {
  return fmt::format("{}", v);
}

void emit_spec(YAML::Emitter& out, const QuantSpec& s) {
  const QuantSpec d;
  out << YAML::Flow << YAML::BeginMap;
  out << YAML::Key << "observer" << YAML::Value << s.observer;
  out << YAML::Key << "bits" << YAML::Value << s.scheme.bits;
  out << YAML::Key << "symmetric" << YAML::Value << s.scheme.symmetric;
  out << YAML::Key << "per_channel" << YAML::Value << s.scheme.per_channel;
  if (s.scheme.per_channel) out << YAML::Key << "axis" << YAML::Value << s.scheme.axis;
  out << YAML::Key << "signed" << YAML::Value << s.scheme.is_signed;
  out << YAML::Key << "narrow_range" << YAML::Value << s.scheme.narrow_range;
  if (s.scheme.eps != d.scheme.eps) out << YAML::Key << "eps" << YAML::Value << num(s.scheme.eps);
  out << YAML::Key << "learnable" << YAML::Value << s.learnable;
  if (s.grad_scaling != d.grad_scaling) out << YAML::Key << "grad_scaling" << YAML::Value << s.grad_scaling;
  if (s.averaging_constant != d.averaging_constant)
    out << YAML::Key << "averaging_constant" << YAML::Value << num(s.averaging_constant);
  if (s.bins != d.bins) out << YAML::Key << "bins" << YAML::Value << s.bins;
  if (s.upsample_rate != d.upsample_rate)
    out << YAML::Key << "upsample_rate" << YAML::Value << s.upsample_rate;
  if (s.percentile != d.percentile) out << YAML::Key << "percentile" << YAML::Value << num(s.percentile);
  if (s.search_steps != d.search_steps) out << YAML::Key << "search_steps" << YAML::Value << s.search_steps;
  out << YAML::EndMap;
}

void emit_optional_spec(YAML::Emitter& out, const char* key, const std::optional<QuantSpec>& s) {
  out << YAML::Key << key << YAML::Value;
  if (s)
    emit_spec(out, *s);
  else
    out << YAML::Null;
}

}  // namespace

QConfigMapping QConfigMapping::from_yaml(const std::string& text, const std::string& origin) {
  Reader rd{origin};
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw UsageError(fmt::format("{}:{}: invalid YAML: {}", origin, e.mark.line + 1, e.msg));
  }
  if (!root.IsMap())
    throw UsageError(
        fmt::format("{}: a qconfig must be a YAML mapping with 'weight' and 'activation' keys", origin));
  rd.check_keys(root, {"name", "description", "target", "weight", "activation", "overrides"}, "the qconfig");
  QConfigMapping m;
  m.origin_ = origin;
  if (root["name"]) m.name_ = rd.get<std::string>(root["name"], "name", "a string");
  if (root["description"])
    m.description_ = rd.get<std::string>(root["description"], "description", "a string");
  if (!root["weight"] || !root["activation"])
    throw UsageError(
        fmt::format("{}: a qconfig needs both 'weight' and 'activation' (null keeps them float)", origin));
  m.default_.weight = rd.optional_spec(root["weight"], std::nullopt, "weight");
  m.default_.activation = rd.optional_spec(root["activation"], std::nullopt, "activation");

  if (const YAML::Node overrides = root["overrides"]; overrides && !overrides.IsNull()) {
    if (!overrides.IsSequence()) rd.fail(overrides, "'overrides' must be a list");
    for (const auto& entry : overrides) {
      rd.check_keys(entry, {"pattern", "float", "weight", "activation"}, "an override");
      const YAML::Node pat = entry["pattern"];
      if (!pat) rd.fail(entry, "an override needs 'pattern' (a layer-name glob or a list of them)");
      std::vector<std::string> patterns;
      if (pat.IsSequence()) {
        for (const auto& p : pat) patterns.push_back(rd.get<std::string>(p, "pattern", "a string"));
      } else {
        patterns.push_back(rd.get<std::string>(pat, "pattern", "a string"));
      }
      if (patterns.empty()) rd.fail(pat, "'pattern' is an empty list");
      std::optional<QConfig> qc;
      const bool keep_float = entry["float"] && rd.get<bool>(entry["float"], "float", "true or false");
      if (keep_float) {
        if (entry["weight"] || entry["activation"])
          rd.fail(entry,
                  "an override with 'float: true' keeps the layer float; remove 'weight' / 'activation'");
      } else {
        if (!entry["weight"] && !entry["activation"])
          rd.fail(entry, "an override needs 'float: true', 'weight' or 'activation'");
        QConfig c = m.default_;
        if (entry["weight"]) c.weight = rd.optional_spec(entry["weight"], m.default_.weight, "weight");
        if (entry["activation"])
          c.activation = rd.optional_spec(entry["activation"], m.default_.activation, "activation");
        qc = c;
      }
      for (auto& p : patterns) m.add_rule(std::move(p), qc, pat.Mark().line + 1);
    }
  }
  if (const YAML::Node t = root["target"]; t && !t.IsNull()) {
    const std::string name = rd.get<std::string>(t, "target", "a target name");
    try {
      m.set_target(parse_target(name));
    } catch (const UsageError& e) {
      rd.fail(t, e.what());
    }
  }
  return m;
}

QConfigMapping QConfigMapping::load(const std::string& path) {
  if (fs::exists(path)) return from_yaml(read_text(path), path);
  std::string name = path;
  if (name.rfind("configs/", 0) == 0) name = name.substr(8);
  const auto names = builtin_config_names();
  if (std::find(names.begin(), names.end(), name) != names.end())
    return from_yaml(builtin_config(name), "built-in " + name);
  std::vector<std::string> qconfigs;
  for (const auto& n : names)
    if (n == "quantization.yaml" || n.rfind("experiments/", 0) == 0) qconfigs.push_back(n);
  throw UsageError(fmt::format("qconfig '{}' is neither a file nor a built-in config (built-in: {})", path,
                               fmt::join(qconfigs, ", ")));
}

std::string QConfigMapping::to_yaml() const {
  YAML::Emitter out;
  out << YAML::BeginMap;
  if (!name_.empty()) out << YAML::Key << "name" << YAML::Value << name_;
  if (!description_.empty()) out << YAML::Key << "description" << YAML::Value << description_;
  if (target_) out << YAML::Key << "target" << YAML::Value << target_name(*target_);
  emit_optional_spec(out, "weight", default_.weight);
  emit_optional_spec(out, "activation", default_.activation);
  if (!rules_.empty()) {
    out << YAML::Key << "overrides" << YAML::Value << YAML::BeginSeq;
    for (const auto& r : rules_) {
      out << YAML::BeginMap << YAML::Key << "pattern" << YAML::Value << r.pattern;
      if (!r.qconfig) {
        out << YAML::Key << "float" << YAML::Value << true;
      } else {
        emit_optional_spec(out, "weight", r.qconfig->weight);
        emit_optional_spec(out, "activation", r.qconfig->activation);
      }
      out << YAML::EndMap;
    }
    out << YAML::EndSeq;
  }
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

}  // namespace yq::quant
