// yoloqat info model=yolov8n nc=80 imgsz=640 [json=FILE]: the layer table, parameter counts and
// GFLOPs of a model config.
#include <torch/torch.h>

#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/log.h"
#include "model/info.h"
#include "model/yolov8.h"
#include "quant/target.h"

namespace yq::cli {

namespace {

// The CPU's int8 features and, per deployment target, whether int8 runs exactly here.
nlohmann::json cpu_section(std::string& text) {
  const CpuFeatures &hw = cpu_hardware(), &dnn = cpu_onednn();
  text = fmt::format("cpu: {}\n", hw.describe());
  if (!dnn.cap.empty()) text += fmt::format("oneDNN capped at {}: {}\n", dnn.cap, dnn.feature_list());
  text += fmt::format("{:<10} {:>11} {:>13} {:>11}  {}\n", "target", "pair bound", "ours (oneDNN)",
                      "ONNX Runtime", "grids");
  nlohmann::json targets = nlohmann::json::array();
  for (quant::Target t : quant::all_targets()) {
    const int64_t bound = quant::target_pair_bound(t);
    const auto ours = quant::int8_exactness(bound, dnn, quant::default_engine(t));
    const auto ort = quant::int8_exactness(bound, hw, "onnxruntime");
    text += fmt::format("{:<10} {:>11} {:>13} {:>11}  {}\n", quant::target_name(t), bound,
                        ours.exact ? "exact" : "INEXACT", ort.exact ? "exact" : "INEXACT",
                        quant::target_summary(t));
    targets.push_back({{"target", quant::target_name(t)},
                       {"pair_bound", bound},
                       {"exact_ours", ours.exact},
                       {"exact_onnxruntime", ort.exact},
                       {"why_ours", ours.why},
                       {"why_onnxruntime", ort.why}});
  }
  return {{"model", hw.model},
          {"features", hw.feature_list()},
          {"onednn_isa_cap", dnn.cap},
          {"onednn_features", dnn.feature_list()},
          {"targets", targets}};
}

}  // namespace

Command info_command() {
  Command c;
  c.name = "info";
  c.summary =
      "layer table, parameters and GFLOPs of a model config; the CPU's int8 features and exact targets";
  c.declare = [](Schema& s) {
    s.text("model", "yolov8n", "yolov8n/s/m/l/x (optionally .yaml) or the path of a model yaml");
    s.integer("nc", 0, "number of classes (0 = the model yaml's nc, 80 for the built-in models)", 0, 100000);
    s.integer("imgsz", 640, "square image size for GFLOPs (a multiple of the largest stride)", 32, 8192);
    s.text("json", "", "also write the summary as JSON to this file (\"\" = no JSON)");
    add_runtime_keys(s);
  };
  c.run = [](const Config& cfg) {
    const auto spec = model::parse_model_name(cfg.get_str("model"), cfg.get_int("nc"));
    model::YoloV8 net(spec);
    const int64_t imgsz = cfg.get_int("imgsz");
    const auto summary = model::summarize(*net, imgsz, imgsz);
    std::string cpu_text;
    const nlohmann::json cpu = cpu_section(cpu_text);
    std::cout << model::format_summary(summary) << "\n" << cpu_text << std::flush;
    const std::string json = cfg.get_str("json");
    if (!json.empty()) {
      nlohmann::json j = nlohmann::json::parse(model::summary_json(summary));
      j["cpu"] = cpu;
      with_context("while writing " + json, [&] { atomic_write(json, j.dump(2) + "\n"); });
      log::info("wrote {}", json);
    }
  };
  return c;
}

}  // namespace yq::cli
