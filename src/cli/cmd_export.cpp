// yoloqat export weights=CKPT format=onnx|onnx-qdq|tensorrt imgsz=640 dynamic=false: writes
// <project>/models/exported/<format>/<name>.onnx with <name>.args.yaml (the resolved config) and
// <name>.export.json (format, size, nodes, Q/DQ pairs, time) beside it:
//   onnx      fp32, BN folded, the reference YOLOv8 interface (deploy/onnx_export.h);
//   onnx-qdq  int8 QDQ for ONNX Runtime from a calibrated or QAT checkpoint (deploy/onnx_qdq.h);
//   tensorrt  int8 QDQ with TensorRT's explicit-quantization rules, plus README.md with the trtexec line.
#include <torch/torch.h>

#include <fmt/format.h>

#include <chrono>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "core/error.h"
#include "core/log.h"
#include "deploy/onnx_export.h"
#include "deploy/onnx_qdq.h"
#include "model/checkpoint.h"
#include "model/onnx_import.h"
#include "model/pt_load.h"
#include "quant/qcheckpoint.h"

namespace yq::cli {

namespace {

// The model to export: a yoloqat checkpoint (its EMA weights when present), a reference YOLOv8 .pt,
// an fp32 ONNX export of the reference layout, or, without weights, an untrained model= config.
model::YoloV8 load_model(const Config& cfg, std::string* source, std::string* target) {
  const std::string weights = cfg.get_str("weights");
  if (weights.empty()) {
    auto spec = model::parse_model_name(cfg.get_str("model"), cfg.get_int("nc"));
    log::warn("no weights= given: exporting an untrained {} (random weights, nc={})", spec.name, spec.nc);
    *source = spec.origin + " (untrained)";
    return model::YoloV8(spec);
  }
  YQ_CHECK_USAGE(fs::is_regular_file(weights), "weights={}: no such file", weights);
  *source = weights;
  // yoloqat checkpoints, reference .pt files and ONNX exports all load here.
  auto ck = model::load_checkpoint(weights, /*prefer_ema=*/true);
  // model= and nc= describe an untrained model; next to weights they must agree with them.
  if (cfg.is_set("model")) model::check_model_matches(cfg.get_str("model"), *ck.model, weights);
  YQ_CHECK_USAGE(!cfg.is_set("nc") || cfg.get_int("nc") == 0 || cfg.get_int("nc") == ck.model->nc(),
                 "nc={} conflicts with weights={}, which has {} classes: leave nc= out (it sets the class "
                 "count of an untrained model= only)",
                 cfg.get_int("nc"), weights, ck.model->nc());
  if (quant::is_quantized_meta(ck.meta)) {
    const quant::QConfigMapping qc = quant::checkpoint_qconfig(ck.meta, weights);
    if (qc.target()) *target = quant::target_name(*qc.target());
  }
  return ck.model;
}

// The file stem of the export: name= when given, else the weights' stem ("<run>-best" for the
// best.pt / last.pt of a training run), else the model's name.
std::string export_stem(const Config& cfg, const model::YoloV8& m) {
  if (!cfg.get_str("name").empty()) return cfg.get_str("name");
  const std::string weights = cfg.get_str("weights");
  if (weights.empty()) return m->spec().name;
  const fs::path p = fs::absolute(weights);
  const std::string stem = p.stem().string();
  if ((stem == "best" || stem == "last") && p.has_parent_path() && !p.parent_path().filename().empty())
    return p.parent_path().filename().string() + "-" + stem;
  return stem;
}

void run_export(const Config& cfg) {
  const std::string format = cfg.get_str("format");
  std::string source, target;
  model::YoloV8 m =
      with_context("while loading the model", [&] { return load_model(cfg, &source, &target); });
  m->eval();

  const auto sz = cfg.get_ints("imgsz");
  YQ_CHECK_USAGE(sz.size() == 1 || sz.size() == 2, "imgsz: one size or h,w, found {} values", sz.size());
  deploy::OnnxExportOptions o;
  o.height = sz[0];
  o.width = sz.size() == 2 ? sz[1] : sz[0];
  o.dynamic = cfg.get_bool("dynamic");
  o.opset = cfg.get_int("opset");
  o.source = source;

  const fs::path dir = fs::path(cfg.get_str("project")) / "models" / "exported" / format;
  const std::string base = export_stem(cfg, m);
  std::string stem = base;
  for (int i = 2; !cfg.get_bool("exist_ok") && fs::exists(dir / (stem + ".onnx")); ++i)
    stem = base + std::to_string(i);
  const fs::path out = dir / (stem + ".onnx");

  const bool qdq = format != "onnx";
  const auto t0 = std::chrono::steady_clock::now();
  deploy::QdqExportResult q;
  deploy::OnnxExportResult r;
  if (qdq) {
    deploy::QdqExportOptions qo;
    qo.onnx = o;
    qo.flavour = format == "tensorrt" ? deploy::QdqFlavour::kTensorRt : deploy::QdqFlavour::kOnnxRuntime;
    qo.concat_input_qdq = qo.passthrough_qdq = cfg.get_bool("qdq_extra");
    qo.int32_bias = cfg.get_bool("int32_bias");
    qo.target = target;
    q = deploy::export_qdq(*m, out, qo);
    r = q.onnx;
  } else {
    r = deploy::export_onnx(*m, out, o);
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  fs::create_directories(dir);
  cfg.save((dir / (stem + ".args.yaml")).string());
  nlohmann::json j = {
      {"file", out.string()},
      {"format", format},
      {"bytes", r.bytes},
      {"nodes", r.nodes},
      {"initializers", r.initializers},
      {"input", {{"name", "images"}, {"shape", {o.dynamic ? -1 : 1, 3, o.height, o.width}}}},
      {"output", {{"name", "output0"}, {"shape", {o.dynamic ? -1 : 1, 4 + m->nc(), r.anchors}}}},
      {"opset", o.opset},
      {"dynamic", o.dynamic},
      {"weights", source},
      {"seconds", seconds}};
  if (qdq) {
    j["qdq_pairs"] = q.qdq_pairs;
    j["target"] = target;
    j["clips"] = q.clips;
    j["quantizer_pairs"] = q.quantizer_pairs;
    j["weight_dequantize"] = q.weight_dq;
    j["int8_weight_bytes"] = q.int8_weight_bytes;
    if (format == "tensorrt") {
      j["made_symmetric"] = q.made_symmetric;
      j["dropped_pre_silu"] = q.dropped_pre;
      j["readme"] = (dir / "README.md").string();
    }
  }
  atomic_write(dir / (stem + ".export.json"), j.dump(2));
  log::info("exported {} ({:.1f} MB, {} nodes{}, output0 {} x {} x {}, opset {}) in {:.2f} s", out.string(),
            double(r.bytes) / 1e6, r.nodes, qdq ? fmt::format(", {} Q/DQ pairs", q.qdq_pairs) : std::string(),
            o.dynamic ? "batch" : "1", 4 + m->nc(), r.anchors, o.opset, seconds);
  if (format == "tensorrt") log::info("trtexec command line: {}", (dir / "README.md").string());
}

}  // namespace

Command export_command() {
  Command c;
  c.name = "export";
  c.summary =
      "export a model for deployment: onnx (fp32, BN folded, the reference YOLOv8 interface), onnx-qdq (int8 "
      "QDQ "
      "for ONNX Runtime) or tensorrt (int8 QDQ for TensorRT) from a calibrated / QAT checkpoint";
  c.config = "export.yaml";
  c.declare = [](Schema& s) {
    s.text(
        "weights", "",
        "checkpoint to export (yoloqat or reference YOLOv8 .pt, or a YOLOv8 .onnx); \"\" = untrained model=");
    s.text("model", "yolov8n",
           "model config used when no weights are given (yolov8n/s/m/l/x or a yaml); a checkpoint file here "
           "means weights=");
    s.integer("nc", 0, "classes of the untrained model= (0 = the config's)", 0, 100000);
    s.text(
        "format", "onnx",
        "export format: onnx (fp32), onnx-qdq (int8 QDQ, ONNX Runtime), tensorrt (int8 QDQ, TensorRT rules); "
        "the int8 ones need a calibrated or QAT checkpoint",
        {"onnx", "onnx-qdq", "tensorrt"});
    s.integers("imgsz", "640", "input size: one value (square) or h,w; multiples of 32", 32, 8192);
    s.flag("dynamic", false, "symbolic batch dimension instead of 1");
    s.flag(
        "qdq_extra", true,
        "onnx-qdq: also Q/DQ (same qparams, exact) on Concat inputs and after Split/MaxPool/Resize, so that "
        "ONNX Runtime runs them in int8");
    s.flag("int32_bias", false,
           "onnx-qdq: conv biases int32 with DequantizeLinear (scale s_in * s_w) instead of float");
    s.integer("opset", 17, "ONNX opset of the graph", 13, 17);
    add_device_key(s);
    add_output_keys(s, "");
    add_runtime_keys(s);
  };
  c.run = run_export;
  return c;
}

}  // namespace yq::cli
