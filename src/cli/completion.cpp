#include "cli/completion.h"

#include <fmt/format.h>

#include <map>

#include "core/config.h"
#include "core/error.h"

namespace yq::cli {

namespace {

// The values a key completes to: its choices, true/false for a flag, none otherwise (file names).
std::vector<std::string> key_values(const KeySpec& k) {
  if (k.type == KeyType::Bool) return {"true", "false"};
  std::vector<std::string> out;
  for (const auto& c : k.choices)
    if (!c.empty()) out.push_back(c);
  return out;
}

std::string join(const std::vector<std::string>& v, const std::string& sep) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? sep : "") + v[i];
  return s;
}

}  // namespace

const std::vector<std::string>& completion_shells() {
  static const std::vector<std::string> shells = {"bash"};
  return shells;
}

std::string bash_completion(const std::vector<Command>& commands) {
  std::vector<std::string> names;
  std::string keys_cases;
  // "value list" -> the cmd:key patterns that complete to it (one case branch per distinct list).
  std::map<std::string, std::vector<std::string>> choice_cases;
  for (const auto& c : commands) {
    names.push_back(c.name);
    Schema s;
    c.declare(s);
    std::vector<std::string> keys;
    for (const auto& k : s.keys()) {
      keys.push_back(k.name + "=");
      const auto values = key_values(k);
      if (!values.empty()) choice_cases[join(values, " ")].push_back(c.name + ":" + k.name);
    }
    keys_cases += fmt::format("    {}) echo \"{}\" ;;\n", c.name, join(keys, " "));
  }
  names.push_back("completion");
  std::string choices;
  for (const auto& [values, patterns] : choice_cases)
    choices += fmt::format("    {}) echo \"{}\" ;;\n", join(patterns, "|"), values);

  return fmt::format(
      R"BASH(# bash completion for yoloqat {version}, generated from its key schemas by `yoloqat completion bash`.
# Use: source <(yoloqat completion bash), or save it as ~/.local/share/bash-completion/completions/yoloqat
# (`cmake --install` puts it in PREFIX/share/bash-completion/completions/).

_yoloqat_commands="{commands}"

# The keys of a command, as key=.
_yoloqat_keys() {{
  case "$1" in
{keys}  esac
}}

# The values of command:key when they are a fixed list (else nothing: file names complete).
_yoloqat_choices() {{
  case "$1" in
{choices}  esac
}}

_yoloqat() {{
  local line cur prev cmd i
  # The word under the cursor with any '=' in it (COMP_WORDS splits at '=' when COMP_WORDBREAKS has it).
  line=${{COMP_LINE:0:COMP_POINT}}
  cur=${{line##*[[:space:]]}}
  prev=${{COMP_WORDS[COMP_CWORD - 1]}}
  COMPREPLY=()
  cmd=""
  for ((i = 1; i < COMP_CWORD; i++)); do
    case "${{COMP_WORDS[i]}}" in
      -* | =) ;;
      *) cmd=${{COMP_WORDS[i]}}; break ;;
    esac
  done
  if [[ -z $cmd ]]; then
    COMPREPLY=($(compgen -W "$_yoloqat_commands --help --version" -- "$cur"))
    return 0
  fi
  if [[ $cmd == completion ]]; then
    COMPREPLY=($(compgen -W "{shells}" -- "$cur"))
    return 0
  fi
  if [[ $prev == --config ]]; then
    compopt -o filenames 2>/dev/null
    COMPREPLY=($(compgen -f -- "$cur"))
    return 0
  fi
  if [[ $cur == *=* ]]; then  # key=value, or --config=FILE
    local key=${{cur%%=*}} val=${{cur#*=}} values
    values=$(_yoloqat_choices "$cmd:$key")
    if [[ -n $values ]]; then
      COMPREPLY=($(compgen -W "$values" -- "$val"))
    else
      compopt -o filenames 2>/dev/null
      COMPREPLY=($(compgen -f -- "$val"))
    fi
    # Bash replaces only the text after '=' when '=' breaks words; otherwise the whole key=value.
    [[ $COMP_WORDBREAKS == *=* ]] || COMPREPLY=("${{COMPREPLY[@]/#/$key=}}")
    return 0
  fi
  if [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W "--help --config --version" -- "$cur"))
    return 0
  fi
  compopt -o nospace 2>/dev/null
  COMPREPLY=($(compgen -W "$(_yoloqat_keys "$cmd")" -- "$cur"))
  return 0
}}

complete -F _yoloqat yoloqat
)BASH",
      fmt::arg("version", YOLOQAT_VERSION), fmt::arg("commands", join(names, " ")),
      fmt::arg("keys", keys_cases), fmt::arg("choices", choices),
      fmt::arg("shells", join(completion_shells(), " ")));
}

std::string completion_script(const std::string& shell) {
  YQ_CHECK_USAGE(shell == "bash", "no completion for shell '{}' (known: {})", shell,
                 join(completion_shells(), ", "));
  return bash_completion(all_commands());
}

}  // namespace yq::cli
