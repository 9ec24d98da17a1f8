// yoloqat demo: the whole pipeline that exists, end to end, on the embedded synthetic data set:
// synth -> stats -> train (fp32) -> val (test split) -> predict; then a summary table.
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
  const int64_t n_train = quick ? 96 : cfg.get_int("train_images");
  const int64_t n_val = quick ? 32 : cfg.get_int("val_images");
  const int64_t epochs = quick ? 3 : cfg.get_int("epochs");
  const std::string imgsz = std::to_string(quick ? 192 : cfg.get_int("imgsz"));

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
  nlohmann::json test_metrics;
  timed("val (test split)", [&] {
    run_subcommand("val", common({"data=" + data_yaml.string(), "weights=" + (run / "best.pt").string(),
                                  "split=test", "imgsz=" + imgsz, "name=" + name + "-val", "exist_ok=true"}));
    test_metrics = read_json(project / "reports" / (name + "-val") / "metrics.json");
    return fmt::format("mAP50 {:.3f}, mAP50-95 {:.3f}, P {:.3f}, R {:.3f}", test_metrics.value("mAP50", 0.0),
                       test_metrics.value("mAP50-95", 0.0), test_metrics.value("precision", 0.0),
                       test_metrics.value("recall", 0.0));
  });
  timed("predict", [&] {
    run_subcommand("predict",
                   common({"weights=" + (run / "best.pt").string(),
                           "source=" + (data_dir / "test/images/00000[0-3].jpg").string(), "imgsz=" + imgsz,
                           "name=" + name + "-predict", "exist_ok=true", "log=warn"}));
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
  std::cout << "outputs: " << (project / "models/checkpoints/fp32" / name).string() << ", "
            << (project / "logs").string() << ", " << (project / "reports").string() << "\n";
  std::cout
      << "not yet part of the pipeline: calibrate, qat, convert, export, benchmark, report (later issues)\n";
}

}  // namespace

Command demo_command() {
  Command c;
  c.name = "demo";
  c.summary = "the whole pipeline on the embedded synthetic traffic-sign data set, with a summary table";
  c.declare = [](Schema& s) {
    s.flag("quick", false, "a tiny run (fewer images and epochs) that finishes in a few minutes");
    s.text("model", "yolov8n", "model to train");
    s.integer("epochs", 25, "training epochs (quick: 3)", 1, 10000);
    s.integer("imgsz", 320, "training and validation image size (quick: 192)", 32, 2048);
    s.integer("batch", 16, "batch size", 1, 1024);
    s.integer("train_images", 400, "synthetic training images (quick: 96)", 8, 100000);
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
