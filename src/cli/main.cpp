// yoloqat <command> [key=value ...] [--config FILE]
//
// Exit codes: 0 success, 2 usage or configuration error, 1 runtime failure.
#include <torch/version.h>
#include <CLI/CLI.hpp>
#include <opencv2/core/version.hpp>

#include <cstdio>
#include <iostream>

#include "cli/command.h"
#include "cli/completion.h"
#include "core/error.h"
#include "core/log.h"

namespace {

std::string overview() {
  std::string s = "yoloqat " YOLOQAT_VERSION
                  ": quantization-aware training of YOLOv8 detectors\n\n"
                  "usage: yoloqat <command> [key=value ...] [--config FILE]\n"
                  "       yoloqat <command> --help   (lists the command's keys and defaults)\n"
                  "       yoloqat --version | yoloqat completion bash\n\ncommands:\n";
  for (const auto& c : yq::cli::all_commands()) s += fmt::format("  {:<12}{}\n", c.name, c.summary);
  s += fmt::format("  {:<12}{}\n", "completion",
                   "print a shell completion script: source <(yoloqat completion bash)");
  return s;
}

// `yoloqat --version`, `yoloqat <command> --version`.
std::string version_text() {
  return "yoloqat " YOLOQAT_VERSION "\nLibTorch " TORCH_VERSION "\nOpenCV " CV_VERSION
         "\nbuild type: " YOLOQAT_BUILD_TYPE "\n";
}

// `yoloqat completion [SHELL]` and `yoloqat --completion [SHELL]` (default bash).
int print_completion(const std::vector<std::string>& args) {
  if (args.size() > 1) {
    std::cerr << "error: usage: yoloqat completion [bash]\n";
    return 2;
  }
  try {
    std::cout << yq::cli::completion_script(args.empty() ? "bash" : args.front());
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 2;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace yq;
  CLI::App app{"yoloqat"};
  app.set_help_flag();  // help is handled below, per command
  app.allow_extras();
  app.prefix_command();
  bool help = false, version = false;
  app.add_flag("-h,--help", help);
  app.add_flag("--version", version);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 2;
  }
  std::vector<std::string> rest = app.remaining();
  if (version) {
    std::cout << version_text();
    return 0;
  }
  if (!rest.empty() && (rest.front() == "completion" || rest.front() == "--completion"))
    return print_completion({rest.begin() + 1, rest.end()});
  if (rest.empty()) {
    std::cout << overview();
    return help ? 0 : 2;
  }
  const std::string name = rest.front();
  rest.erase(rest.begin());
  const cli::Command* cmd = cli::find_command(name);
  if (!cmd) {
    std::string best;
    size_t bd = 99;
    for (const auto& c : cli::all_commands())
      if (edit_distance(name, c.name) < bd) bd = edit_distance(name, c.name), best = c.name;
    std::cerr << "error: unknown command '" << name << "'"
              << (bd <= 2 ? "; did you mean '" + best + "'?" : "") << "\n\n"
              << overview();
    return 2;
  }

  // The command's own flags: --help, --config FILE; everything else is key=value.
  std::string config_file;
  std::vector<std::string> kv;
  for (size_t i = 0; i < rest.size(); ++i) {
    const std::string& a = rest[i];
    if (a == "-h" || a == "--help") {
      help = true;
    } else if (a == "--version") {
      std::cout << version_text();
      return 0;
    } else if (a == "--config" || a.rfind("--config=", 0) == 0) {
      if (a == "--config") {
        if (i + 1 >= rest.size()) {
          std::cerr << "error: --config needs a file\n";
          return 2;
        }
        config_file = rest[++i];
      } else {
        config_file = a.substr(9);
      }
    } else if (a.rfind("--", 0) == 0) {
      std::cerr << "error: unknown flag '" << a << "' (keys are given as key=value)\n";
      return 2;
    } else {
      kv.push_back(a);
    }
  }
  if (help) {
    // Values as this command would run with them: its own config, --config and key=value applied.
    Schema s;
    cmd->declare(s);
    Config resolved;
    bool ok = true;
    try {
      resolved = cli::resolve_config(*cmd, config_file, kv);
    } catch (const std::exception& e) {
      std::cerr << "warning: " << e.what() << " (showing the built-in defaults)\n";
      ok = false;
    }
    std::cout << "yoloqat " << cmd->name << ": " << cmd->summary << "\n\nkeys (key=value as it would run):\n"
              << s.help_text(ok ? &resolved : nullptr);
    return 0;
  }

  Config cfg;
  try {
    cfg = cli::resolve_config(*cmd, config_file, kv);
    cli::apply_runtime(cfg);
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 2;
  }
  try {
    cmd->run(cfg);
  } catch (const UsageError& e) {
    log::error("{} failed: {}", name, e.what());
    return 2;
  } catch (const std::exception& e) {
    log::error("{} failed: {}", name, e.what());
    return 1;
  }
  return 0;
}
