#include "cli/command.h"

#include <torch/torch.h>
#include <opencv2/core.hpp>

#include <thread>

#include "core/error.h"
#include "core/log.h"

namespace yq::cli {

const std::vector<Command>& all_commands() {
  static const std::vector<Command> cmds = {
      synth_command(),     stats_command(),   info_command(),        train_command(),
      val_command(),       predict_command(), calibrate_command(),   qat_command(),
      convert_command(),   export_command(),  sensitivity_command(), analyze_command(),
      benchmark_command(), compare_command(), report_command(),      demo_command()};
  return cmds;
}

const Command* find_command(const std::string& name) {
  for (const auto& c : all_commands())
    if (c.name == name) return &c;
  return nullptr;
}

void add_runtime_keys(Schema& s) {
  s.integer("threads", 0, "CPU threads for LibTorch and OpenCV (0 = all cores)", 0, 1024);
  s.text("log", "info", "log level", {"trace", "debug", "info", "warn", "error", "off"});
}

void add_output_keys(Schema& s, const std::string& default_name) {
  s.text("project", ".", "root of the output tree (dataset/, models/, logs/, reports/)");
  s.text("name", default_name, "name of this run; an existing name gets a numbered suffix");
  s.flag("exist_ok", false, "reuse an existing run name instead of numbering a new one");
}

void add_target_key(Schema& s) {
  std::vector<std::string> names = {""};
  for (quant::Target t : quant::all_targets()) names.push_back(quant::target_name(t));
  s.text("target", "",
         "deployment target: x86 (every x86-64 CPU: 7-bit activations), x86-vnni (VNNI/AMX CPUs only: full "
         "8-bit), arm (QNNPACK), tensorrt (symmetric int8); \"\" = the qconfig's own, else x86",
         names);
}

void add_inexact_key(Schema& s) {
  s.flag("allow_inexact", false,
         "run an int8 model (or QDQ export) even where its target is not exact on this CPU (`yoloqat info` "
         "lists the exact targets)");
}

quant::QConfigMapping load_qconfig(const Config& cfg) {
  quant::QConfigMapping m = quant::QConfigMapping::load(cfg.get_str("qconfig"));
  const std::string asked = cfg.get_str("target");
  if (!asked.empty()) {
    const quant::Target t = quant::parse_target(asked);
    if (m.target() && *m.target() != t)
      log::info("target={} replaces the target {} of qconfig {}", asked, quant::target_name(*m.target()),
                m.origin());
    m.set_target(t);
  } else if (!m.target()) {
    m.set_target(quant::Target::kX86);
  }
  log::info("deployment target {}: {}", quant::target_name(*m.target()), quant::target_summary(*m.target()));
  return m;
}

void check_checkpoint_qconfig(const Config& cfg, const quant::QConfigMapping& m, const std::string& weights) {
  const std::string asked = cfg.get_str("target");
  const std::string has = m.target() ? quant::target_name(*m.target()) : "";
  YQ_CHECK_USAGE(asked.empty() || asked == has,
                 "{} was quantized for target {}; target={} needs a new quantization: start from the fp32 "
                 "checkpoint",
                 weights, has.empty() ? "(none recorded)" : has, asked);
  if (!cfg.is_set("qconfig")) return;
  const quant::QConfigMapping wanted = load_qconfig(cfg);
  YQ_CHECK_USAGE(wanted.to_yaml() == m.to_yaml(),
                 "{} was quantized with another qconfig than qconfig={}; leave qconfig out to use the "
                 "checkpoint's, or start from the fp32 checkpoint",
                 weights, cfg.get_str("qconfig"));
}

Config resolve_config(const Command& cmd, const std::string& config_file,
                      const std::vector<std::string>& args) {
  Schema schema;
  cmd.declare(schema);
  Config cfg(schema);
  cfg.merge_yaml(builtin_config("base.yaml"), "configs/base.yaml", /*skip_unknown=*/true);
  if (!cmd.config.empty()) cfg.merge_yaml(builtin_config(cmd.config), "configs/" + cmd.config, false);
  if (!config_file.empty()) cfg.merge_yaml(read_text(config_file), config_file, false);
  cfg.merge_args(args);
  return cfg;
}

void apply_runtime(const Config& cfg) {
  log::set_level(cfg.get_str("log"));
  // benchmark takes a list of thread counts (threads=1,2) and sets each one per measurement.
  const KeySpec* threads = cfg.schema().find("threads");
  if (threads == nullptr || threads->type != KeyType::Int) return;
  int64_t n = cfg.get_int("threads");
  if (n == 0) n = std::max(1u, std::thread::hardware_concurrency());
  at::set_num_threads(static_cast<int>(n));
  cv::setNumThreads(static_cast<int>(n));
}

fs::path make_run_dir(const Config& cfg, const std::string& sub) {
  fs::path dir =
      increment_path(fs::path(cfg.get_str("project")) / sub / cfg.get_str("name"), cfg.get_bool("exist_ok"));
  fs::create_directories(dir);
  return dir;
}

void run_subcommand(const std::string& name, const std::vector<std::string>& args) {
  const Command* cmd = find_command(name);
  YQ_ASSERT(cmd != nullptr);
  std::string line = "yoloqat " + name;
  for (const auto& a : args) line += " " + a;
  log::info("$ {}", line);
  Config cfg = resolve_config(*cmd, "", args);
  apply_runtime(cfg);
  with_context(name, [&] { cmd->run(cfg); });
}

}  // namespace yq::cli
