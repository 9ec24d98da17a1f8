// yoloqat demo: the whole pipeline, end to end, on the embedded synthetic data set:
// synth -> stats -> train (fp32) -> calibrate (PTQ) -> qat -> convert (int8) -> val of each on the test
// split -> export onnx / onnx-qdq / tensorrt -> val of the onnx / onnx-qdq exports in ONNX Runtime
// (beside ours at the same square input, and ONNX Runtime's predictions.json scored by `val
// predictions=`) -> benchmark (ours and ONNX Runtime) -> compare ->
// sensitivity -> analyze -> predict -> report (HTML); then a summary table of the steps and the compare
// table (fp32 / PTQ / QAT / int8: mAP, latency, speed-up, size, memory).
#include <chrono>
#include <iostream>

#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "core/error.h"
#include "core/log.h"
#include "deploy/ort_session.h"

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
  // The commands that run int8 models also get allow_inexact=.
  const std::string inexact =
      std::string("allow_inexact=") + (cfg.get_bool("allow_inexact") ? "true" : "false");
  auto running = [&](std::vector<std::string> a) {
    a.push_back(inexact);
    return common(std::move(a));
  };
  const std::string target = "target=" + cfg.get_str("target");

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
  const fs::path fp32 = run / "best.pt";
  const fs::path ptq = project / "models/checkpoints/ptq" / name / "ptq.pt";
  timed("calibrate (PTQ)", [&] {
    run_subcommand("calibrate", common({"data=" + data_yaml.string(), "weights=" + fp32.string(),
                                        "batches=" + std::string(quick ? "2" : "8"), "imgsz=" + imgsz,
                                        "name=" + name, "exist_ok=true", "val=false", target}));
    return "int8 fake-quant checkpoint " + ptq.string();
  });
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
                "seed=" + std::to_string(cfg.get_int("seed")), target}));
    auto j = read_json(project / "logs/qat" / name / "metrics.json");
    return fmt::format("{} epochs from the fp32 model; val mAP50 {:.3f}, mAP50-95 {:.3f}", qat_epochs,
                       j.value("mAP50", 0.0), j.value("mAP50-95", 0.0));
  });
  std::string target_note;  // the int8 model's target and whether it is exact here
  const fs::path int8 = project / "models/int8" / (name + ".int8");
  timed("convert (int8)", [&] {
    run_subcommand("convert", running({"weights=" + qat.string(), "name=" + name, "exist_ok=true"}));
    const auto cj = read_json(project / "models/int8" / (name + ".json"));
    target_note = fmt::format("target {}: int8 pair bound {}, {} on {}", cj.value("target", ""),
                              cj.value("pair_bound", 0),
                              cj.value("exact_here", false) ? "exact" : "NOT exact", cj.value("cpu", ""));
    return fmt::format(
        "{} ({:.1f} MB; fp32 checkpoint's model {:.1f} MB)", int8.string(), double(fs::file_size(int8)) / 1e6,
        read_json(project / "models/int8" / (name + ".json")).value("fp32_model_bytes", 0.0) / 1e6);
  });

  // Validation of a model file on the test split; returns a one-line result.
  std::vector<fs::path> test_metrics;
  auto test_val = [&](const fs::path& weights, const std::string& run) {
    run_subcommand("val", running({"data=" + data_yaml.string(), "weights=" + weights.string(), "split=test",
                                   "imgsz=" + imgsz, "name=" + run, "exist_ok=true"}));
    test_metrics.push_back(project / "reports" / run / "metrics.json");
    auto m = read_json(test_metrics.back());
    return fmt::format("mAP50 {:.3f}, mAP50-95 {:.3f}, P {:.3f}, R {:.3f}", m.value("mAP50", 0.0),
                       m.value("mAP50-95", 0.0), m.value("precision", 0.0), m.value("recall", 0.0));
  };
  timed("val fp32 (test)", [&] { return test_val(fp32, name + "-val-fp32"); });
  timed("val PTQ (test)", [&] { return test_val(ptq, name + "-val-ptq"); });
  timed("val QAT (test)", [&] { return test_val(qat, name + "-val-qat"); });
  timed("val int8 (test)", [&] { return test_val(int8, name + "-val-int8"); });

  auto exported = [&](const std::string& format) {
    return project / "models/exported" / format / (name + ".onnx");
  };
  auto export_step = [&](const std::string& format, const fs::path& weights) {
    timed("export " + format, [&] {
      run_subcommand("export", common({"weights=" + weights.string(), "format=" + format, "imgsz=" + imgsz,
                                       "name=" + name, "exist_ok=true"}));
      return fmt::format("{} ({:.1f} MB)", exported(format).string(),
                         double(fs::file_size(exported(format))) / 1e6);
    });
  };
  export_step("onnx", fp32);
  export_step("onnx-qdq", qat);
  export_step("tensorrt", qat);

  // The exports in ONNX Runtime vs the checkpoints they came from in yoloqat, both letterboxed to the
  // export's square input (rect=false); ONNX Runtime's predictions.json is scored again by `val
  // predictions=`. Skipped, with the reason, when ONNX Runtime cannot run.
  struct OrtVal {
    std::string format;
    double ours = 0, ort = 0, scored = 0;  // mAP50-95
  };
  std::vector<OrtVal> ort_vals;
  std::string ort_why;
  const bool ort_ok = !deploy::find_ort_dir("", ort_why).empty();
  auto ort_val_step = [&](const std::string& format, const fs::path& source) {
    timed("ORT val " + format, [&]() -> std::string {
      if (!ort_ok) return "skipped: " + ort_why;
      const std::string base = name + "-ortval-" + format;
      auto val = [&](std::vector<std::string> a, const std::string& run) {
        a.insert(a.end(),
                 {"data=" + data_yaml.string(), "split=test", "name=" + run, "exist_ok=true", "plots=false"});
        run_subcommand("val", running(a));
        return read_json(project / "reports" / run / "metrics.json").value("mAP50-95", 0.0);
      };
      OrtVal v;
      v.format = format;
      v.ours = val({"weights=" + source.string(), "imgsz=" + imgsz, "rect=false"}, base + "-ours");
      v.ort = val({"weights=" + exported(format).string(), "runtime=onnxruntime", "save_json=true"}, base);
      v.scored = val({"predictions=" + (project / "reports" / base / "predictions.json").string()},
                     base + "-scored");
      ort_vals.push_back(v);
      return fmt::format(
          "mAP50-95 ours {:.4f}, ONNX Runtime {:.4f} ({:+.2f} points; its predictions.json "
          "scored: {:.4f})",
          v.ours, v.ort, 100 * (v.ort - v.ours), v.scored);
    });
  };
  ort_val_step("onnx", fp32);
  ort_val_step("onnx-qdq", qat);

  const std::string runs = quick ? "10" : "30";
  timed("benchmark", [&] {
    run_subcommand(
        "benchmark",
        running({"weights=" + fp32.string() + "," + int8.string(),
                 "onnx=" + exported("onnx").string() + "," + exported("onnx-qdq").string(), "imgsz=" + imgsz,
                 "batch=1", "runs=" + runs, "warmup=3", "name=" + name + "-benchmark", "exist_ok=true"}));
    auto j = read_json(project / "reports" / (name + "-benchmark") / "benchmark.json");
    std::string out;
    for (const auto& r : j["rows"])
      out += fmt::format("{}{} {} {:.1f} ms", out.empty() ? "" : ", ", r.value("runtime", ""),
                         r.value("runtime", "") == "onnxruntime" ? r.value("model", "") : r.value("kind", ""),
                         r.value("p50_ms", 0.0));
    return "p50 at batch 1: " + out;
  });
  timed("compare", [&] {
    std::vector<std::string> files, metrics;
    for (const auto& f : {fp32, ptq, qat, int8}) files.push_back(f.string());
    for (const auto& f : test_metrics) metrics.push_back(f.string());
    run_subcommand(
        "compare",
        running({"data=" + data_yaml.string(), "weights=" + fmt::format("{}", fmt::join(files, ",")),
                 "metrics=" + fmt::format("{}", fmt::join(metrics, ",")), "imgsz=" + imgsz, "runs=" + runs,
                 "warmup=3", "name=" + name + "-compare", "exist_ok=true"}));
    return (project / "reports" / (name + "-compare") / "compare.json").string();
  });
  timed("sensitivity", [&] {
    run_subcommand("sensitivity",
                   common({"data=" + data_yaml.string(), "weights=" + ptq.string(), "metric=sqnr",
                           "batches=1", "batch=" + std::string(quick ? "2" : "8"), "imgsz=" + imgsz, "topk=5",
                           "name=" + name + "-sensitivity", "exist_ok=true"}));
    auto j = read_json(project / "reports" / (name + "-sensitivity") / "sensitivity.json");
    std::string top;
    for (const auto& l : j["layers"])
      if (l.value("rank", 99) <= 3) top += (top.empty() ? "" : ", ") + l.value("name", std::string());
    return "most sensitive: " + top;
  });
  timed("analyze", [&] {
    run_subcommand("analyze", common({"data=" + data_yaml.string(), "weights=" + qat.string(),
                                      "fp32=" + fp32.string(), "images=" + std::string(quick ? "2" : "8"),
                                      "imgsz=" + imgsz, "name=" + name + "-analyze", "exist_ok=true"}));
    return (project / "reports" / (name + "-analyze") / "analyze.json").string();
  });
  timed("predict (int8)", [&] {
    run_subcommand(
        "predict",
        running({"weights=" + int8.string(), "source=" + (data_dir / "test/images/00000[0-3].jpg").string(),
                 "imgsz=" + imgsz, "name=" + name + "-predict", "exist_ok=true", "log=warn"}));
    auto j = read_json(project / "reports" / (name + "-predict") / "predictions.json");
    return fmt::format("{} detections written", j.size());
  });
  const fs::path report = project / "reports" / (name + "-report") / "report.html";
  timed("report", [&] {
    const fs::path r = project / "reports";
    run_subcommand(
        "report",
        common({"stats=" + (r / (name + "-stats") / "stats.json").string(), "model=" + fp32.string(),
                "imgsz=" + imgsz, "fp32_results=" + (project / "logs/fp32" / name / "results.csv").string(),
                "qat_results=" + (project / "logs/qat" / name / "results.csv").string(),
                "analyze=" + (r / (name + "-analyze") / "analyze.json").string(),
                "sensitivity=" + (r / (name + "-sensitivity") / "sensitivity.json").string(),
                "fp32_metrics=" + test_metrics.front().string(),
                "int8_metrics=" + test_metrics.back().string(),
                "benchmark=" + (r / (name + "-benchmark") / "benchmark.json").string(),
                "compare=" + (r / (name + "-compare") / "compare.json").string(), "name=" + name + "-report",
                "exist_ok=true"}));
    return fmt::format("{} ({:.0f} KB)", report.string(), double(fs::file_size(report)) / 1e3);
  });

  std::cout << "\nyoloqat demo summary (" << (quick ? "quick" : "full") << ")\n";
  std::cout << fmt::format("{:<18}{:>9}  {}\n", "step", "seconds", "result");
  double total = 0;
  for (const auto& s : steps) {
    std::cout << fmt::format("{:<18}{:>9.1f}  {}\n", s.name, s.seconds, s.result);
    total += s.seconds;
  }
  std::cout << fmt::format("{:<18}{:>9.1f}\n", "total", total);
  std::cout << "\n" << target_note << "\n";
  // fp32 / PTQ / QAT / int8 in one table (compare.json), then ours vs ONNX Runtime (benchmark.json).
  const auto cmp = read_json(project / "reports" / (name + "-compare") / "compare.json");
  std::cout << fmt::format(
      "\n{:<8}{:>8}{:>10}{:>11}{:>10}{:>10}{:>9}   (test split, {} images; batch 1, {} threads)\n", "model",
      "mAP50", "mAP50-95", "p50 ms", "speed-up", "file MB", "RSS MB", n_val, cmp.value("threads", 0));
  for (const auto& r : cmp["rows"])
    std::cout << fmt::format("{:<8}{:>8.3f}{:>10.3f}{:>11.1f}{:>9.2f}x{:>10.2f}{:>9.0f}\n",
                             r.value("kind", ""), r.value("map50", 0.0), r.value("map5095", 0.0),
                             r.value("p50_ms", 0.0), r.value("speedup", 0.0), r.value("file_mb", 0.0),
                             r.value("peak_rss_mb", 0.0));
  const auto bench = read_json(project / "reports" / (name + "-benchmark") / "benchmark.json");
  for (const auto& r : bench["rows"])
    if (r.contains("ort_ratio") && r["ort_ratio"].is_number())
      std::cout << fmt::format(
          "ours {} / ONNX Runtime {}: inference p50 ratio {:.2f} (below 1 = ours faster)\n",
          r.value("kind", ""), r.value("ort_model", ""), r["ort_ratio"].get<double>());
  if (!ort_vals.empty())
    std::cout << fmt::format("\n{:<10}{:>12}{:>14}{:>10}{:>16}   (test split, mAP50-95, square {} input)\n",
                             "export", "ours", "ONNX Runtime", "points", "ORT json scored", imgsz);
  for (const auto& v : ort_vals)
    std::cout << fmt::format("{:<10}{:>12.4f}{:>14.4f}{:>+10.2f}{:>16.4f}\n", v.format, v.ours, v.ort,
                             100 * (v.ort - v.ours), v.scored);
  if (!ort_ok) std::cout << "ONNX Runtime validation skipped: " << ort_why << "\n";
  std::cout << "\nreport: " << report.string() << "\n";
  std::cout << "outputs: " << (project / "models").string() << ", " << (project / "logs").string() << ", "
            << (project / "reports").string() << "\n";
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
    add_target_key(s);
    add_device_key(s);
    add_inexact_key(s);
    add_runtime_keys(s);
  };
  c.run = run_demo;
  return c;
}

}  // namespace yq::cli
