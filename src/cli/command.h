// The command registry of the `yoloqat` executable: each command declares its keys (a Schema)
// and a run function that receives the resolved Config.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/fs.h"
#include "quant/qconfig.h"

namespace yq::cli {

struct Command {
  std::string name;
  std::string summary;
  std::string config;  // embedded config layered after base.yaml ("" = none)
  std::function<void(Schema&)> declare;
  std::function<void(const Config&)> run;
};

const std::vector<Command>& all_commands();
const Command* find_command(const std::string& name);

// Keys every command has: threads, log.
void add_runtime_keys(Schema& s);
// Keys every command that writes has: project, name, exist_ok.
void add_output_keys(Schema& s, const std::string& default_name);

// device= of the commands that run a model. yoloqat runs on the CPU: cpu (the default) and "" (the
// reference's "choose for me") are accepted; cuda, cuda:N, 0, 0,1 and mps are UsageErrors that say why
// (apply_runtime checks it).
void add_device_key(Schema& s);
// model= of the commands that run a checkpoint and have no model config key (val, predict, calibrate):
// the reference's name for weights= (`yolo val model=best.pt`). Declared with the default "".
void add_model_weights_key(Schema& s);
// True when a model= value names weights rather than a model config: a .pt / .pth / .onnx / .int8
// path, or any existing file that is not a .yaml / .yml.
bool is_weights_path(const std::string& model);
// The data set a model file records (the dataset.yaml its training or calibration read: meta "data" of
// a yoloqat checkpoint, of the checkpoint an .int8 model was converted from, or train_args "data" of a
// reference .pt), for `val` without data=. UsageError when it records none or the file is not here.
std::string recorded_data(const std::string& weights);

// target= of the commands that quantize (calibrate, qat, sensitivity): the deployment target.
void add_target_key(Schema& s);
// allow_inexact= of the commands that run int8 models (convert, val, predict, benchmark, compare, demo).
void add_inexact_key(Schema& s);
// The qconfig that qconfig= names, made for target= (when given), else for its own `target:`, else for
// x86 (the CPU default: exact on every x86-64). Logs the target.
quant::QConfigMapping load_qconfig(const Config& cfg);
// A quantized checkpoint's qconfig `m` against qconfig= and target= (when given): another qconfig or
// another target is a UsageError naming `weights`.
void check_checkpoint_qconfig(const Config& cfg, const quant::QConfigMapping& m, const std::string& weights);

// Builds the command's config: base.yaml, its own config, `config_file` (may be empty), `args`.
// Where the command declares both model and weights, a model= that names weights (is_weights_path)
// becomes weights= (model back to its default), as the reference reads `model=yolov8n.pt`; a weights=
// that says otherwise, or a model= of weights that are not there, is a UsageError. A model= of a model
// config where the command's model key is only the weights alias (add_model_weights_key) is one too.
Config resolve_config(const Command& cmd, const std::string& config_file,
                      const std::vector<std::string>& args);

// Applies threads= and log= and checks device= (called before run).
void apply_runtime(const Config& cfg);

// project/<sub>/<name>, numbered when it exists unless exist_ok (created).
fs::path make_run_dir(const Config& cfg, const std::string& sub);

// Runs another command in this process (used by `demo`); throws on failure.
void run_subcommand(const std::string& name, const std::vector<std::string>& args);

// The per-command entry points (one file each in src/cli/).
Command synth_command();
Command stats_command();
Command demo_command();
Command train_command();
Command val_command();
Command predict_command();
Command info_command();
Command export_command();
Command calibrate_command();
Command qat_command();
Command analyze_command();
Command report_command();
Command benchmark_command();
Command compare_command();
Command convert_command();
Command sensitivity_command();

}  // namespace yq::cli
