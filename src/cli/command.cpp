#include "cli/command.h"

#include <torch/torch.h>
#include <opencv2/core.hpp>

#include <thread>

#include <algorithm>
#include <regex>

#include "core/error.h"
#include "core/log.h"
#include "deploy/int8_model.h"
#include "model/checkpoint.h"
#include "model/pt_import.h"

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

void add_device_key(Schema& s) {
  s.text("device", "cpu",
         "where models run: cpu (yoloqat's engines, int8 included, are CPU ones; \"\" = cpu); cuda, 0, 0,1 "
         "are refused");
}

void add_model_weights_key(Schema& s) {
  s.text("model", "", "the reference's name for weights= (a .pt, .onnx or .int8 file)");
}

bool is_weights_path(const std::string& model) {
  const fs::path p(model);
  const std::string ext = lower_ext(p);
  if (ext == "pt" || ext == "pth" || ext == "onnx" || ext == "int8") return true;
  std::error_code ec;
  return fs::is_regular_file(p, ec) && ext != "yaml" && ext != "yml";
}

namespace {

// device=: cpu, or a clear refusal.
void check_device(const Config& cfg) {
  if (cfg.schema().find("device") == nullptr) return;
  std::string d = cfg.get_str("device");
  std::transform(d.begin(), d.end(), d.begin(), ::tolower);
  if (d.empty() || d == "cpu") return;
  const bool gpu = d == "cuda" || std::regex_match(d, std::regex("cuda:[0-9]+|[0-9]+(,[0-9]+)*"));
  YQ_CHECK_USAGE(gpu || d == "mps", "device={}: expected cpu (or cuda, cuda:N, 0, 0,1 on the reference)",
                 cfg.get_str("device"));
  if (d == "mps")
    throw UsageError("device=mps: yoloqat runs on the CPU (there is no Metal backend): use device=cpu");
  // Only a CUDA build of LibTorch could run there at all; Debian's has none.
  if (!torch::cuda::is_available())
    throw UsageError(fmt::format(
        "device={}: this yoloqat is built on a LibTorch without CUDA (no GPU is usable here); models run on "
        "the CPU: use device=cpu or leave device= out",
        cfg.get_str("device")));
  throw UsageError(fmt::format(
      "device={}: yoloqat runs models on the CPU only (its int8 engines, oneDNN and QNNPACK, are CPU ones): "
      "use device=cpu or leave device= out",
      cfg.get_str("device")));
}

// model= that names weights -> weights= (see resolve_config).
void resolve_model_key(Config& cfg) {
  const KeySpec* model = cfg.schema().find("model");
  if (model == nullptr || cfg.schema().find("weights") == nullptr || !cfg.is_set("model")) return;
  const std::string m = cfg.get_str("model");
  const bool alias_only = model->default_text.empty();
  if (m.empty()) return;
  if (!is_weights_path(m)) {
    YQ_CHECK_USAGE(!alias_only,
                   "model={}: this command runs a checkpoint, and '{}' is not one (a .pt, .onnx or .int8 "
                   "file); give weights=FILE",
                   m, m);
    return;  // a model config (yolov8s, a yaml): its own meaning
  }
  std::error_code ec;
  YQ_CHECK_USAGE(fs::is_regular_file(m, ec),
                 "model={}: no such file (yoloqat does not download weights: give the path of a .pt or .onnx "
                 "file that is here)",
                 m);
  const std::string w = cfg.get_str("weights");
  YQ_CHECK_USAGE(w.empty() || fs::path(w).lexically_normal() == fs::path(m).lexically_normal(),
                 "model={} ({}) and weights={} ({}) both name the weights to use: give one of them", m,
                 cfg.origin("model"), w, cfg.origin("weights"));
  const std::string origin = cfg.origin("model");
  cfg.unset("model");
  cfg.set("weights", m, origin + ", model= of a checkpoint");
  log::debug("model={}: a checkpoint, read as weights={}", m, m);
}

}  // namespace

std::string recorded_data(const std::string& weights) {
  YQ_CHECK_USAGE(!weights.empty(), "key 'data' is required (a dataset.yaml)");
  YQ_CHECK_USAGE(fs::is_regular_file(weights), "weights={}: no such file", weights);
  std::string data, from = weights;
  const std::string ext = lower_ext(weights);
  with_context("while reading the data set recorded in " + weights, [&] {
    if (ext == "onnx") return;  // ONNX exports record no data set
    if (deploy::Int8Model::is_int8_file(weights)) {
      // The .int8 file names the checkpoint it was converted from; that one names its data.
      const auto meta = deploy::Int8Model::load(weights).meta();
      const std::string src = meta.value("source", "");
      if (src.empty() || !fs::is_regular_file(src)) return;
      from = src;
      data = model::load_checkpoint(src, false).meta.value("data", "");
    } else if (model::is_reference_checkpoint(weights)) {
      const auto ck = model::read_pt_checkpoint(weights);
      if (ck.train_args.is_object() && ck.train_args.contains("data") && ck.train_args["data"].is_string())
        data = ck.train_args["data"].get<std::string>();
    } else {
      data = model::load_checkpoint(weights, false).meta.value("data", "");
    }
  });
  YQ_CHECK_USAGE(!data.empty(), "key 'data' is required: {} records no data set (give data=dataset.yaml)",
                 weights);
  YQ_CHECK_USAGE(fs::is_regular_file(data),
                 "key 'data' is required: {} records the data set {}, which is not here (give "
                 "data=dataset.yaml)",
                 from, data);
  log::info("data={}: the data set recorded in {} (no data= given)", data, from);
  return data;
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
  resolve_model_key(cfg);
  return cfg;
}

void apply_runtime(const Config& cfg) {
  log::set_level(cfg.get_str("log"));
  check_device(cfg);
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
