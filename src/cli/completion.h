// Shell completion generated from the command registry: command names, each command's keys (`key=`) from
// its Schema, and the values of keys with a fixed choice list (true/false for flags).
#pragma once

#include <string>
#include <vector>

#include "cli/command.h"

namespace yq::cli {

// Shells bash_completion... can write; `yoloqat completion SHELL` lists them on an unknown name.
const std::vector<std::string>& completion_shells();

// A bash script defining _yoloqat and `complete -F _yoloqat yoloqat` for `commands` (normally
// all_commands()). Values of keys without choices complete as file names; so does --config's argument.
std::string bash_completion(const std::vector<Command>& commands);

// The script for `shell` (one of completion_shells(); else a UsageError naming them).
std::string completion_script(const std::string& shell);

}  // namespace yq::cli
