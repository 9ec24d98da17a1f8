// yoloqat info model=yolov8n nc=80 imgsz=640 [json=FILE]: the layer table, parameter counts and
// GFLOPs of a model config.
#include <torch/torch.h>

#include <iostream>

#include "cli/command.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/log.h"
#include "model/info.h"
#include "model/yolov8.h"

namespace yq::cli {

Command info_command() {
  Command c;
  c.name = "info";
  c.summary = "layer table, parameters and GFLOPs of a model config";
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
    std::cout << model::format_summary(summary) << std::flush;
    const std::string json = cfg.get_str("json");
    if (!json.empty()) {
      with_context("while writing " + json, [&] { atomic_write(json, model::summary_json(summary)); });
      log::info("wrote {}", json);
    }
  };
  return c;
}

}  // namespace yq::cli
