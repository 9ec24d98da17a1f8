// yoloqat demo: the whole pipeline that exists, end to end, on the embedded synthetic data set:
// synth -> stats -> train (fp32) -> val -> calibrate (PTQ) -> val -> qat -> val -> export onnx -> predict;
// then a summary table of the steps and of fp32 / PTQ / QAT accuracy on the test split.
#include <chrono>
#include <iostream>

#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "core/error.h"
#include "core/log.h"

namespace yq::cli {

namespace {

struct Step {
  std::string name, result;
  double seconds = 0;
};

nlohmann::json read_json(const fs::path& p) {
  return nlohmann::json::parse(read_text(p));
}

void run_demo(const Config& cfg) {
  using Clock = std::chrono::steady_clock;
  const bool quick = cfg.get_bool("quick");
  const fs::path project = cfg.get_str("project");
  const std::string name = cfg.get_str("name");
  const std::string threads = std::to_string(cfg.get_int("threads"));
  const std::string log_level = cfg.get_str("log");
  std::vector<Step> steps;
  auto timed = [&](const std::string& step, const std::function<std::string()>& fn) {
    auto t0 = Clock::now();
    std::string result = with_context("demo step '" + step + "'", fn);
    steps.push_back({step, result, std::chrono::duration<double>(Clock::now() - t0).count()});
  };
  auto common = [&](std::vector<std::string> a, bool with_project = true) {
    a.insert(a.end(), {"threads=" + threads, "log=" + log_level});
    if (with_project) a.push_back("project=" + project.string());
    return a;
  };

  const fs::path data_dir = project / "dataset/vietnam-traffic-sign-detection";
  const fs::path data_yaml = data_dir / "dataset.yaml";
  const int64_t n_train = quick ? 128 : cfg.get_int("train_images");
  const int64_t n_val = quick ? 32 : cfg.get_int("val_images");
  const int64_t epochs = quick ? 6 : cfg.get_int("epochs");
  const std::string imgsz = std::to_string(quick ? 256 : cfg.get_int("imgsz"));

  timed("synth", [&] {
    run_subcommand("synth", common({"out=" + data_dir.string(), "train=" + std::to_string(n_train),
                                    "val=" + std::to_string(n_val), "test=" + std::to_string(n_val),
                                    "seed=" + std::to_string(cfg.get_int("seed"))},
                                   false));
    auto j = read_json(data_dir / "synth.json");
    return fmt::format("{} images, {} signs", j.value("images", 0), j.value("boxes", 0));
  });
  timed("stats", [&] {
    run_subcommand("stats",
                   common({"data=" + data_yaml.string(), "name=" + name + "-stats", "exist_ok=true"}));
    auto j = read_json(project / "reports" / (name + "-stats") / "stats.json");
    const auto& t = j["splits"]["train"];
    return fmt::format("train: {} boxes, median width {:.0f} px", t.value("boxes", 0),
                       t["box_width_px"].value("median", 0.0));
  });
  const fs::path run = project / "models/checkpoints/fp32" / name;
  timed("train fp32", [&] {
    run_subcommand("train", common({"data=" + data_yaml.string(), "model=" + cfg.get_str("model"),
                                    "epochs=" + std::to_string(epochs), "imgsz=" + imgsz,
                                    "batch=" + std::to_string(cfg.get_int("batch")),
                                    "close_mosaic=" + std::to_string(std::max<int64_t>(1, epochs / 5)),
                                    "name=" + name, "exist_ok=true", "workers=2", "fliplr=0.5",
                                    "seed=" + std::to_string(cfg.get_int("seed"))}));
    auto j = read_json(project / "logs/fp32" / name / "metrics.json");
    return fmt::format("{} epochs; val mAP50 {:.3f}, mAP50-95 {:.3f}", epochs, j.value("mAP50", 0.0),
                       j.value("mAP50-95", 0.0));
  });
  // Validation of a checkpoint on the test split; returns the metrics and a one-line result.
  std::vector<std::pair<std::string, nlohmann::json>> accuracy;
  auto test_val = [&](const std::string& label, const fs::path& weights, const std::string& run) {
    run_subcommand("val", common({"data=" + data_yaml.string(), "weights=" + weights.string(), "split=test",
                                  "imgsz=" + imgsz, "name=" + run, "exist_ok=true"}));
    auto m = read_json(project / "reports" / run / "metrics.json");
    accuracy.emplace_back(label, m);
    return fmt::format("mAP50 {:.3f}, mAP50-95 {:.3f}, P {:.3f}, R {:.3f}", m.value("mAP50", 0.0),
                       m.value("mAP50-95", 0.0), m.value("precision", 0.0), m.value("recall", 0.0));
  };
  const fs::path fp32 = run / "best.pt";
  timed("val fp32 (test)", [&] { return test_val("fp32", fp32, name + "-val-fp32"); });
  const fs::path ptq = project / "models/checkpoints/ptq" / name / "ptq.pt";
  timed("calibrate (PTQ)", [&] {
    run_subcommand("calibrate", common({"data=" + data_yaml.string(), "weights=" + fp32.string(),
                                        "batches=" + std::string(quick ? "2" : "8"), "imgsz=" + imgsz,
                                        "name=" + name, "exist_ok=true", "val=false"}));
    return "int8 fake-quant checkpoint " + ptq.string();
  });
  timed("val PTQ (test)", [&] { return test_val("PTQ int8 (fake-quant)", ptq, name + "-val-ptq"); });
  const int64_t qat_epochs = quick ? 1 : cfg.get_int("qat_epochs");
  const fs::path qat = project / "models/checkpoints/qat" / name / "best.pt";
  timed("qat", [&] {
    run_subcommand(
        "qat",
        common({"data=" + data_yaml.string(), "weights=" + fp32.string(),
                "epochs=" + std::to_string(qat_epochs), "imgsz=" + imgsz,
                "batch=" + std::to_string(cfg.get_int("batch")), "name=" + name, "exist_ok=true", "workers=2",
                "freeze_observer_epoch=" + std::to_string(std::max<int64_t>(1, qat_epochs - 1)),
                "freeze_bn_epoch=" + std::to_string(std::max<int64_t>(0, qat_epochs - 2)),
                "seed=" + std::to_string(cfg.get_int("seed"))}));
    return fmt::format("{} epochs from the fp32 model", qat_epochs);
  });
  timed("val QAT (test)", [&] { return test_val("QAT int8 (fake-quant)", qat, name + "-val-qat"); });
  timed("export onnx", [&] {
    run_subcommand("export", common({"weights=" + fp32.string(), "format=onnx", "imgsz=" + imgsz,
                                     "name=" + name, "exist_ok=true"}));
    const fs::path onnx = project / "models/exported/onnx" / (name + ".onnx");
    return fmt::format("{} ({:.1f} MB)", onnx.string(), double(fs::file_size(onnx)) / 1e6);
  });
  timed("predict", [&] {
    run_subcommand(
        "predict",
        common({"weights=" + fp32.string(), "source=" + (data_dir / "test/images/00000[0-3].jpg").string(),
                "imgsz=" + imgsz, "name=" + name + "-predict", "exist_ok=true", "log=warn"}));
    auto j = read_json(project / "reports" / (name + "-predict") / "predictions.json");
    return fmt::format("{} detections written", j.size());
  });

  std::cout << "\nyoloqat demo summary (" << (quick ? "quick" : "full") << ")\n";
  std::cout << fmt::format("{:<18}{:>9}  {}\n", "step", "seconds", "result");
  double total = 0;
  for (const auto& s : steps) {
    std::cout << fmt::format("{:<18}{:>9.1f}  {}\n", s.name, s.seconds, s.result);
    total += s.seconds;
  }
  std::cout << fmt::format("{:<18}{:>9.1f}\n", "total", total);
  std::cout << fmt::format("\n{:<24}{:>8}{:>10}{:>8}{:>8}   (test split, {} images)\n", "model", "mAP50",
                           "mAP50-95", "P", "R", n_val);
  for (const auto& [label, m] : accuracy)
    std::cout << fmt::format("{:<24}{:>8.3f}{:>10.3f}{:>8.3f}{:>8.3f}\n", label, m.value("mAP50", 0.0),
                             m.value("mAP50-95", 0.0), m.value("precision", 0.0), m.value("recall", 0.0));
  std::cout << "outputs: " << (project / "models/checkpoints/fp32" / name).string() << ", "
            << (project / "logs").string() << ", " << (project / "reports").string() << "\n";
  std::cout
      << "not yet part of the pipeline: real int8 convert, QDQ/TensorRT export, benchmark, report (later issues)\n";
}

}  // namespace

Command demo_command() {
  Command c;
  c.name = "demo";
  c.summary = "the whole pipeline on the embedded synthetic traffic-sign data set, with a summary table";
  c.declare = [](Schema& s) {
    s.flag("quick", false, "a tiny run (fewer images and epochs) that finishes in a few minutes");
    s.text("model", "yolov8n", "model to train");
    s.integer("epochs", 25, "training epochs (quick: 6)", 1, 10000);
    s.integer("qat_epochs", 3, "QAT fine-tuning epochs (quick: 1)", 1, 10000);
    s.integer("imgsz", 320, "training and validation image size (quick: 256)", 32, 2048);
    s.integer("batch", 16, "batch size", 1, 1024);
    s.integer("train_images", 400, "synthetic training images (quick: 128)", 8, 100000);
    s.integer("val_images", 100, "synthetic validation and test images each (quick: 32)", 4, 100000);
    s.integer("seed", 0, "seed of the data set and the training", 0);
    s.text("project", ".", "root of the output tree (dataset/, models/, logs/, reports/)");
    s.text("name", "demo", "name of the demo's runs");
    add_runtime_keys(s);
  };
  c.run = run_demo;
  return c;
}

}  // namespace yq::cli
