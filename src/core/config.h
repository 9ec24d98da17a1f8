// Configuration: typed keys declared by each command (name, type, default, range, help), layered
// from YAML files and key=value overrides (DESIGN.md "Command line").
//
// Layering order: configs/base.yaml (embedded), the command's own embedded config, --config FILE,
// then key=value. base.yaml is shared by every command, so a key there that this command does not
// declare is skipped; in every other layer an undeclared key is a UsageError naming the closest
// declared key.
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <variant>
#include <vector>

namespace yq {

enum class KeyType { Bool, Int, Float, String, IntList, FloatList, StringList };

const char* key_type_name(KeyType t);

struct KeySpec {
  std::string name;
  KeyType type = KeyType::String;
  std::string default_text;  // default in key=value form ("640", "0.5", "true", "640,384")
  std::string help;
  double min = -std::numeric_limits<double>::infinity();  // for numbers and each list element
  double max = std::numeric_limits<double>::infinity();
  std::vector<std::string> choices;  // for strings: allowed values (empty = any)
};

class Schema {
 public:
  Schema& flag(const std::string& name, bool def, const std::string& help);
  Schema& integer(const std::string& name, int64_t def, const std::string& help,
                  double min = -std::numeric_limits<double>::infinity(),
                  double max = std::numeric_limits<double>::infinity());
  Schema& real(const std::string& name, double def, const std::string& help,
               double min = -std::numeric_limits<double>::infinity(),
               double max = std::numeric_limits<double>::infinity());
  Schema& text(const std::string& name, const std::string& def, const std::string& help,
               std::vector<std::string> choices = {});
  Schema& integers(const std::string& name, const std::string& def, const std::string& help,
                   double min = -std::numeric_limits<double>::infinity(),
                   double max = std::numeric_limits<double>::infinity());
  Schema& reals(const std::string& name, const std::string& def, const std::string& help,
                double min = -std::numeric_limits<double>::infinity(),
                double max = std::numeric_limits<double>::infinity());
  Schema& texts(const std::string& name, const std::string& def, const std::string& help);
  Schema& add(KeySpec spec);

  const KeySpec* find(const std::string& name) const;
  // The declared key closest to `name` by edit distance ("" when nothing is reasonably close).
  std::string closest(const std::string& name) const;
  const std::vector<KeySpec>& keys() const { return keys_; }
  // One line per key: name=default, help, choices, range (for `yoloqat <command> --help`). With
  // `resolved`, the values shown are the resolved ones (a command's own config, --config and key=value
  // applied), each set one followed by where it came from.
  std::string help_text(const class Config* resolved = nullptr) const;

 private:
  std::vector<KeySpec> keys_;
};

using ConfigValue = std::variant<bool, int64_t, double, std::string, std::vector<int64_t>,
                                 std::vector<double>, std::vector<std::string>>;

class Config {
 public:
  Config() = default;
  // A config holding every key of `schema` at its default.
  explicit Config(const Schema& schema);

  // Sets `key` from text in key=value form; `origin` names where it came from for error messages
  // ("key=value", "configs/qat.yaml"). Throws UsageError for an unknown key (naming yoloqat's key for a
  // key of the reference tool, core/reference_keys.h, else the closest declared key),
  // a value of the wrong type, out of range or not among the choices.
  void set(const std::string& key, const std::string& text, const std::string& origin);
  // Back to the default, as if no layer had set it (is_set() false again).
  void unset(const std::string& key);
  // Applies every key of a YAML mapping. When `skip_unknown`, keys the schema lacks are ignored.
  void merge_yaml(const std::string& yaml_text, const std::string& origin, bool skip_unknown);
  // Applies key=value arguments.
  void merge_args(const std::vector<std::string>& args);

  bool has(const std::string& key) const { return values_.count(key) != 0; }
  // The declared keys (types, defaults, help).
  const Schema& schema() const { return schema_; }
  bool get_bool(const std::string& key) const;
  int64_t get_int(const std::string& key) const;
  double get_float(const std::string& key) const;
  const std::string& get_str(const std::string& key) const;
  std::vector<int64_t> get_ints(const std::string& key) const;
  std::vector<double> get_floats(const std::string& key) const;
  std::vector<std::string> get_strs(const std::string& key) const;
  // True when the key was set by a layer (file or argument) rather than left at its default.
  bool is_set(const std::string& key) const { return set_keys_.count(key) != 0; }
  // Where a set key came from ("configs/qat.yaml", "key=value"); "" for a default.
  std::string origin(const std::string& key) const;
  // The value in key=value form ("640", "0.5", "true", "640,384").
  std::string value_text(const std::string& key) const;

  // The resolved configuration as YAML (keys in schema order), and written atomically to a file.
  std::string to_yaml() const;
  void save(const std::string& path) const;

 private:
  const ConfigValue& at(const std::string& key) const;
  Schema schema_;
  std::map<std::string, ConfigValue> values_;
  std::map<std::string, std::string> set_keys_;  // key -> origin
};

// Parses `text` as a value of `spec` (throws UsageError naming the key and origin).
ConfigValue parse_value(const KeySpec& spec, const std::string& text, const std::string& origin);

// Embedded copies of configs/*.yaml, by path relative to configs/ ("base.yaml",
// "experiments/exp1_symmetric_quant.yaml"). Throws UsageError for an unknown name.
const std::string& builtin_config(const std::string& name);
std::vector<std::string> builtin_config_names();

// Levenshtein distance (used for "did you mean" suggestions).
size_t edit_distance(const std::string& a, const std::string& b);

}  // namespace yq
