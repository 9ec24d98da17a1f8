// yoloqat convert weights=QUANT_CKPT [engine=onednn|qnnpack] [name=]: a PTQ or QAT checkpoint -> a true
// int8 model (deploy/int8_model.h), written to <project>/models/int8/<name>.int8 with <name>.json next to
// it: which layers run in int8 and which in float, file size against the fp32 model's parameters, the
// conversion time. `val`, `predict` and `benchmark` read the .int8 file like any other weights=.
#include <fmt/format.h>

#include <chrono>

#include "cli/command.h"
#include "core/error.h"
#include "core/log.h"
#include "deploy/int8_model.h"
#include "model/checkpoint.h"
#include "quant/prepare.h"
#include "quant/qcheckpoint.h"

namespace yq::cli {

namespace {

void run_convert(const Config& cfg) {
  const std::string weights = cfg.get_str("weights");
  YQ_CHECK_USAGE(!weights.empty(), "key 'weights' is required (a PTQ or QAT checkpoint)");
  YQ_CHECK_USAGE(fs::is_regular_file(weights), "weights={}: no such file", weights);
  YQ_CHECK_USAGE(!deploy::Int8Model::is_int8_file(weights), "weights={}: already an int8 model", weights);
  const auto t0 = std::chrono::steady_clock::now();
  auto ck = model::load_checkpoint(weights, /*prefer_ema=*/true);
  YQ_CHECK_USAGE(quant::is_quantized_meta(ck.meta) && quant::is_prepared(*ck.model),
                 "weights={} is a float checkpoint; convert takes a quantized one (calibrate or qat first)",
                 weights);
  model::YoloV8 net = ck.model;
  net->eval();

  deploy::ConvertOptions opt;
  opt.engine = cfg.get_str("engine");
  deploy::Int8Model m = deploy::convert(*net, opt);
  const std::string kind = ck.meta.value("kind", std::string("qat"));
  m.meta() = {{"source", weights}, {"kind", kind}, {"run_name", ck.meta.value("run_name", "")}};

  std::string name = cfg.get_str("name");
  if (name.empty()) name = fs::path(weights).parent_path().filename().string();
  if (name.empty()) name = fs::path(weights).stem().string();
  const fs::path dir = fs::path(cfg.get_str("project")) / "models/int8";
  fs::create_directories(dir);
  // name.int8, else name2.int8, name3.int8, ... unless exist_ok.
  fs::path out = dir / (name + deploy::kInt8Extension);
  for (int i = 2; !cfg.get_bool("exist_ok") && fs::exists(out); ++i)
    out = dir / (name + std::to_string(i) + deploy::kInt8Extension);
  m.save(out);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  int64_t convs_int8 = 0, convs_float = 0, junctions_int8 = 0, junctions_float = 0;
  nlohmann::json layers = nlohmann::json::array();
  for (const auto& r : m.report()) {
    const bool conv = r.kind == "conv" || r.kind == "head";
    (conv ? (r.int8 ? convs_int8 : convs_float) : (r.int8 ? junctions_int8 : junctions_float)) += 1;
    layers.push_back({{"name", r.name}, {"kind", r.kind}, {"int8", r.int8}, {"detail", r.detail}});
  }
  const int64_t fp32_bytes = 4 * model::count_parameters(*net);
  const int64_t file_bytes = int64_t(fs::file_size(out));
  nlohmann::json j = {{"source", weights},
                      {"kind", kind},
                      {"output", out.string()},
                      {"engine", m.engine()},
                      {"convs_int8", convs_int8},
                      {"convs_float", convs_float},
                      {"junctions_int8", junctions_int8},
                      {"junctions_float", junctions_float},
                      {"file_bytes", file_bytes},
                      {"weight_bytes", m.weight_bytes()},
                      {"fp32_model_bytes", fp32_bytes},
                      {"size_ratio", double(file_bytes) / double(fp32_bytes)},
                      {"seconds", seconds},
                      {"layers", layers}};
  fs::path summary = out;
  summary.replace_extension(".json");
  atomic_write(summary, j.dump(2));
  log::info("int8 model written to {} ({} convs int8, {} float; {} of {} junctions int8; engine {})",
            out.string(), convs_int8, convs_float, junctions_int8, junctions_int8 + junctions_float,
            m.engine());
  log::info("size {:.2f} MB = {:.3f} x the fp32 model's {:.2f} MB; converted in {:.2f} s",
            double(file_bytes) / 1e6, double(file_bytes) / double(fp32_bytes), double(fp32_bytes) / 1e6,
            seconds);
}

}  // namespace

Command convert_command() {
  Command c;
  c.name = "convert";
  c.summary = "PTQ/QAT checkpoint -> true int8 model (models/int8/NAME.int8, quantized LibTorch kernels)";
  c.declare = [](Schema& s) {
    s.text("weights", "", "quantized checkpoint (from calibrate or qat)");
    s.text("engine", "onednn", "quantized engine: onednn (x86) or qnnpack (ARM)", {"onednn", "qnnpack"});
    s.text("project", ".", "root of the output tree (dataset/, models/, logs/, reports/)");
    s.text("name", "",
           "output name (\"\" = the checkpoint's run folder); an existing one gets a numbered suffix");
    s.flag("exist_ok", false, "overwrite an existing output of that name");
    add_runtime_keys(s);
  };
  c.run = run_convert;
  return c;
}

}  // namespace yq::cli
