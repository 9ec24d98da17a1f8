#include "core/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <sstream>

#include "core/error.h"
#include "core/fs.h"
#include "core/reference_keys.h"

namespace yq {

const char* key_type_name(KeyType t) {
  switch (t) {
    case KeyType::Bool:
      return "bool";
    case KeyType::Int:
      return "int";
    case KeyType::Float:
      return "float";
    case KeyType::String:
      return "string";
    case KeyType::IntList:
      return "int list";
    case KeyType::FloatList:
      return "float list";
    case KeyType::StringList:
      return "string list";
  }
  return "?";
}

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

// ---------------------------------------------------------------------------------------------
// Schema

Schema& Schema::add(KeySpec spec) {
  YQ_ASSERT(find(spec.name) == nullptr);
  // The default must parse: a bad default is a bug caught on first use of the schema.
  parse_value(spec, spec.default_text, "default");
  keys_.push_back(std::move(spec));
  return *this;
}

Schema& Schema::flag(const std::string& name, bool def, const std::string& help) {
  return add({name, KeyType::Bool, def ? "true" : "false", help});
}

static std::string number_text(double v) {
  std::string s = fmt::format("{}", v);
  return s;
}

Schema& Schema::integer(const std::string& name, int64_t def, const std::string& help, double min,
                        double max) {
  return add({name, KeyType::Int, std::to_string(def), help, min, max});
}
Schema& Schema::real(const std::string& name, double def, const std::string& help, double min, double max) {
  return add({name, KeyType::Float, number_text(def), help, min, max});
}
Schema& Schema::text(const std::string& name, const std::string& def, const std::string& help,
                     std::vector<std::string> choices) {
  KeySpec s{name, KeyType::String, def, help};
  s.choices = std::move(choices);
  return add(std::move(s));
}
Schema& Schema::integers(const std::string& name, const std::string& def, const std::string& help, double min,
                         double max) {
  return add({name, KeyType::IntList, def, help, min, max});
}
Schema& Schema::reals(const std::string& name, const std::string& def, const std::string& help, double min,
                      double max) {
  return add({name, KeyType::FloatList, def, help, min, max});
}
Schema& Schema::texts(const std::string& name, const std::string& def, const std::string& help) {
  return add({name, KeyType::StringList, def, help});
}

const KeySpec* Schema::find(const std::string& name) const {
  for (const auto& k : keys_)
    if (k.name == name) return &k;
  return nullptr;
}

std::string Schema::closest(const std::string& name) const {
  std::string best;
  size_t best_d = std::string::npos;
  for (const auto& k : keys_) {
    size_t d = edit_distance(name, k.name);
    if (d < best_d) best_d = d, best = k.name;
  }
  // Accept a suggestion within about a third of the length (typos, not different words).
  if (best_d == std::string::npos || best_d > std::max<size_t>(2, name.size() / 3)) return "";
  return best;
}

std::string Schema::help_text(const Config* resolved) const {
  auto shown = [&](const KeySpec& k) {
    return k.name + "=" + (resolved && resolved->has(k.name) ? resolved->value_text(k.name) : k.default_text);
  };
  size_t w = 0;
  for (const auto& k : keys_) w = std::max(w, shown(k).size());
  std::ostringstream os;
  for (const auto& k : keys_) {
    std::string kv = shown(k);
    os << "  " << kv << std::string(w + 2 - kv.size(), ' ') << k.help;
    if (!k.choices.empty()) {
      os << " (one of:";
      for (const auto& c : k.choices) os << ' ' << c;
      os << ')';
    }
    if (std::isfinite(k.min) || std::isfinite(k.max)) {
      os << " [" << (std::isfinite(k.min) ? number_text(k.min) : "") << ".."
         << (std::isfinite(k.max) ? number_text(k.max) : "") << "]";
    }
    if (resolved && !resolved->origin(k.name).empty()) os << " {from " << resolved->origin(k.name) << "}";
    os << '\n';
  }
  return os.str();
}

// ---------------------------------------------------------------------------------------------
// Value parsing

static std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r\n"), e = s.find_last_not_of(" \t\r\n");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

static std::vector<std::string> split_list(const std::string& text) {
  std::string t = trim(text);
  if (t.size() >= 2 && t.front() == '[' && t.back() == ']') t = t.substr(1, t.size() - 2);
  std::vector<std::string> out;
  if (trim(t).empty()) return out;
  std::stringstream ss(t);
  std::string item;
  while (std::getline(ss, item, ',')) out.push_back(trim(item));
  return out;
}

static bool parse_int(const std::string& s, int64_t& v) {
  if (s.empty()) return false;
  size_t pos = 0;
  try {
    v = std::stoll(s, &pos);
  } catch (...) {
    return false;
  }
  return pos == s.size();
}

static bool parse_double(const std::string& s, double& v) {
  if (s.empty()) return false;
  size_t pos = 0;
  try {
    v = std::stod(s, &pos);
  } catch (...) {
    return false;
  }
  return pos == s.size() && std::isfinite(v);
}

ConfigValue parse_value(const KeySpec& spec, const std::string& raw, const std::string& origin) {
  const std::string text = trim(raw);
  auto fail = [&](const std::string& why) {
    return UsageError(fmt::format("{}: key '{}' expects {}; got '{}'{}", origin, spec.name,
                                  key_type_name(spec.type), text, why.empty() ? "" : " (" + why + ")"));
  };
  auto check_range = [&](double v) {
    if (v < spec.min || v > spec.max)
      throw UsageError(fmt::format("{}: key '{}' = {} is out of range [{}, {}]", origin, spec.name,
                                   number_text(v), number_text(spec.min), number_text(spec.max)));
  };
  switch (spec.type) {
    case KeyType::Bool: {
      std::string t = text;
      std::transform(t.begin(), t.end(), t.begin(), ::tolower);
      if (t == "true" || t == "1" || t == "yes" || t == "on") return true;
      if (t == "false" || t == "0" || t == "no" || t == "off") return false;
      throw fail("use true or false");
    }
    case KeyType::Int: {
      int64_t v;
      if (!parse_int(text, v)) throw fail("");
      check_range(double(v));
      return v;
    }
    case KeyType::Float: {
      double v;
      if (!parse_double(text, v)) throw fail("");
      check_range(v);
      return v;
    }
    case KeyType::String: {
      if (!spec.choices.empty() &&
          std::find(spec.choices.begin(), spec.choices.end(), text) == spec.choices.end()) {
        std::string all;
        for (const auto& c : spec.choices) all += (all.empty() ? "" : ", ") + c;
        throw UsageError(fmt::format("{}: key '{}' = '{}' is not one of: {}", origin, spec.name, text, all));
      }
      return text;
    }
    case KeyType::IntList: {
      std::vector<int64_t> out;
      for (const auto& item : split_list(text)) {
        int64_t v;
        if (!parse_int(item, v)) throw fail("element '" + item + "' is not an integer");
        check_range(double(v));
        out.push_back(v);
      }
      return out;
    }
    case KeyType::FloatList: {
      std::vector<double> out;
      for (const auto& item : split_list(text)) {
        double v;
        if (!parse_double(item, v)) throw fail("element '" + item + "' is not a number");
        check_range(v);
        out.push_back(v);
      }
      return out;
    }
    case KeyType::StringList:
      return split_list(text);
  }
  throw fail("");
}

// ---------------------------------------------------------------------------------------------
// Config

Config::Config(const Schema& schema) : schema_(schema) {
  for (const auto& k : schema_.keys()) values_[k.name] = parse_value(k, k.default_text, "default");
}

void Config::set(const std::string& key, const std::string& text, const std::string& origin) {
  const KeySpec* spec = schema_.find(key);
  if (!spec) {
    // A key of the reference tool that yoloqat spells differently is named as ours; else the closest.
    std::string why = reference_key_hint(schema_, key);
    if (why.empty()) {
      const std::string near = schema_.closest(key);
      if (!near.empty()) why = "; did you mean '" + near + "'?";
    }
    throw UsageError(fmt::format("{}: unknown key '{}'{}", origin, key, why));
  }
  values_[key] = parse_value(*spec, text, origin);
  set_keys_[key] = origin;
}

void Config::unset(const std::string& key) {
  const KeySpec* spec = schema_.find(key);
  YQ_ASSERT(spec != nullptr && "key not declared in the command's schema");
  values_[key] = parse_value(*spec, spec->default_text, "default");
  set_keys_.erase(key);
}

// A YAML node as key=value text: scalars as they are, sequences joined with commas.
static std::string node_text(const YAML::Node& n, const std::string& key, const std::string& origin) {
  if (n.IsNull()) return "";
  if (n.IsScalar()) return n.Scalar();
  if (n.IsSequence()) {
    std::string out;
    for (const auto& item : n) {
      if (!item.IsScalar())
        throw UsageError(
            fmt::format("{}: key '{}' holds a nested structure; expected a flat list", origin, key));
      out += (out.empty() ? "" : ",") + item.Scalar();
    }
    return "[" + out + "]";
  }
  throw UsageError(fmt::format("{}: key '{}' holds a mapping; expected a value or a list", origin, key));
}

void Config::merge_yaml(const std::string& yaml_text, const std::string& origin, bool skip_unknown) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    throw UsageError(fmt::format("{}: line {}: YAML syntax error: {}", origin, e.mark.line + 1, e.msg));
  }
  if (root.IsNull()) return;  // an empty file or only comments
  if (!root.IsMap()) throw UsageError(fmt::format("{}: expected a mapping of key: value", origin));
  for (const auto& kv : root) {
    std::string key = kv.first.as<std::string>();
    if (skip_unknown && !schema_.find(key)) continue;
    std::string where = fmt::format("{}: line {}", origin, kv.first.Mark().line + 1);
    set(key, node_text(kv.second, key, where), where);
  }
}

void Config::merge_args(const std::vector<std::string>& args) {
  for (const auto& a : args) {
    auto eq = a.find('=');
    if (eq == std::string::npos || eq == 0)
      throw UsageError(fmt::format("argument '{}' is not of the form key=value", a));
    set(a.substr(0, eq), a.substr(eq + 1), "argument '" + a + "'");
  }
}

const ConfigValue& Config::at(const std::string& key) const {
  auto it = values_.find(key);
  YQ_ASSERT(it != values_.end() && "key not declared in the command's schema");
  return it->second;
}

template <class T>
static const T& get_as(const ConfigValue& v, const std::string& key) {
  const T* p = std::get_if<T>(&v);
  if (!p) throw Error(fmt::format("internal error: key '{}' read with the wrong type", key));
  return *p;
}

bool Config::get_bool(const std::string& k) const {
  return get_as<bool>(at(k), k);
}
int64_t Config::get_int(const std::string& k) const {
  return get_as<int64_t>(at(k), k);
}
double Config::get_float(const std::string& k) const {
  return get_as<double>(at(k), k);
}
const std::string& Config::get_str(const std::string& k) const {
  return get_as<std::string>(at(k), k);
}
std::vector<int64_t> Config::get_ints(const std::string& k) const {
  return get_as<std::vector<int64_t>>(at(k), k);
}
std::vector<double> Config::get_floats(const std::string& k) const {
  return get_as<std::vector<double>>(at(k), k);
}
std::vector<std::string> Config::get_strs(const std::string& k) const {
  return get_as<std::vector<std::string>>(at(k), k);
}

std::string Config::to_yaml() const {
  YAML::Emitter out;
  out << YAML::BeginMap;
  for (const auto& spec : schema_.keys()) {
    out << YAML::Key << spec.name << YAML::Value;
    std::visit(
        [&](const auto& v) {
          using T = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<T, std::vector<int64_t>> || std::is_same_v<T, std::vector<double>> ||
                        std::is_same_v<T, std::vector<std::string>>) {
            out << YAML::Flow << YAML::BeginSeq;
            for (const auto& x : v) out << x;
            out << YAML::EndSeq;
          } else {
            out << v;
          }
        },
        values_.at(spec.name));
  }
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

std::string Config::origin(const std::string& key) const {
  auto it = set_keys_.find(key);
  return it == set_keys_.end() ? std::string() : it->second;
}

std::string Config::value_text(const std::string& key) const {
  return std::visit(
      [](const auto& v) -> std::string {
        using T = std::decay_t<decltype(v)>;
        auto one = [](const auto& x) -> std::string {
          using X = std::decay_t<decltype(x)>;
          if constexpr (std::is_same_v<X, std::string>)
            return x;
          else if constexpr (std::is_same_v<X, double>)
            return number_text(x);
          else if constexpr (std::is_same_v<X, bool>)
            return x ? "true" : "false";
          else
            return std::to_string(x);
        };
        if constexpr (std::is_same_v<T, std::vector<int64_t>> || std::is_same_v<T, std::vector<double>> ||
                      std::is_same_v<T, std::vector<std::string>>) {
          std::string out;
          for (const auto& x : v) out += (out.empty() ? "" : ",") + one(x);
          return out;
        } else {
          return one(v);
        }
      },
      at(key));
}

void Config::save(const std::string& path) const {
  atomic_write(path, to_yaml());
}

}  // namespace yq

namespace yq {

const std::map<std::string, std::string>& builtin_config_map();  // generated

const std::string& builtin_config(const std::string& name) {
  const auto& m = builtin_config_map();
  auto it = m.find(name);
  if (it == m.end()) {
    std::string all;
    for (const auto& kv : m) all += (all.empty() ? "" : ", ") + kv.first;
    throw UsageError(fmt::format("no built-in config '{}' (known: {})", name, all));
  }
  return it->second;
}

std::vector<std::string> builtin_config_names() {
  std::vector<std::string> out;
  for (const auto& kv : builtin_config_map()) out.push_back(kv.first);
  return out;
}

}  // namespace yq
