// yoloqat report [project=.] [stats=... analyze=... ...]: one self-contained HTML page of a run
// (eval/report.h) at <project>/reports/<name>/report.html. Every input key defaults to the newest
// matching file in the project tree ("" = search; "none" = leave that part out).
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <functional>
#include <iostream>

#include "cli/command.h"
#include "core/error.h"
#include "core/log.h"
#include "eval/report.h"
#include "model/checkpoint.h"
#include "model/info.h"

namespace yq::cli {

namespace {

// The newest file named `filename` under `root` (dataset/ skipped) that passes `accept`.
fs::path newest(const fs::path& root, const std::string& filename,
                const std::function<bool(const fs::path&)>& accept = nullptr) {
  fs::path best;
  fs::file_time_type best_t{};
  if (!fs::is_directory(root)) return best;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root, fs::directory_options::skip_permission_denied, ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) break;
    if (it->is_directory() && it->path().filename() == "dataset") {
      it.disable_recursion_pending();
      continue;
    }
    if (!it->is_regular_file() || it->path().filename() != filename) continue;
    if (accept && !accept(it->path())) continue;
    const auto t = fs::last_write_time(it->path());
    if (best.empty() || t > best_t) best = it->path(), best_t = t;
  }
  return best;
}

// weights of a val run's metrics.json ("source": {"weights": ...}).
std::string metrics_weights(const fs::path& p) {
  try {
    auto j = nlohmann::json::parse(read_text(p));
    if (j.contains("source") && j["source"].is_object()) return j["source"].value("weights", "");
  } catch (const std::exception&) {
  }
  return "";
}

bool is_quantized_weights(const std::string& w) {
  return w.find("/qat/") != std::string::npos || w.find("/ptq/") != std::string::npos ||
         w.find("int8") != std::string::npos;
}

void run_report(const Config& cfg) {
  const fs::path project = cfg.get_str("project");
  YQ_CHECK_USAGE(fs::is_directory(project), "project folder {} does not exist (key 'project')",
                 project.string());
  auto pick = [&](const std::string& key, const std::function<fs::path()>& search) -> fs::path {
    const std::string v = cfg.get_str(key);
    if (v == "none") return {};
    if (!v.empty()) {
      YQ_CHECK_USAGE(fs::exists(v), "{} (key '{}') does not exist", v, key);
      return v;
    }
    fs::path p = search();
    log::info("{}: {}", key, p.empty() ? "not found" : p.string());
    return p;
  };
  eval::ReportInputs in;
  in.title = cfg.get_str("title");
  in.stats_json = pick("stats", [&] { return newest(project / "reports", "stats.json"); });
  in.samples_png = pick("samples", [&] {
    return in.stats_json.empty() ? fs::path() : in.stats_json.parent_path() / "samples.png";
  });
  if (!in.samples_png.empty() && !fs::exists(in.samples_png)) in.samples_png.clear();
  in.fp32_results = pick("fp32_results", [&] { return newest(project / "logs/fp32", "results.csv"); });
  in.qat_results = pick("qat_results", [&] { return newest(project / "logs/qat", "results.csv"); });
  in.analyze_json = pick("analyze", [&] { return newest(project, "analyze.json"); });
  in.sensitivity_json = pick("sensitivity", [&] { return newest(project, "sensitivity.json"); });
  in.benchmark_json = pick("benchmark", [&] { return newest(project, "benchmark.json"); });
  in.compare_json = pick("compare", [&] { return newest(project, "compare.json"); });
  in.fp32_metrics = pick("fp32_metrics", [&] {
    return newest(project / "reports", "metrics.json", [](const fs::path& p) {
      const std::string w = metrics_weights(p);
      return !w.empty() && !is_quantized_weights(w);
    });
  });
  in.int8_metrics = pick("int8_metrics", [&] {
    return newest(project / "reports", "metrics.json",
                  [](const fs::path& p) { return is_quantized_weights(metrics_weights(p)); });
  });
  auto sibling = [](const fs::path& metrics) {
    fs::path p = metrics.empty() ? fs::path() : metrics.parent_path() / "confusion_matrix.json";
    return fs::exists(p) ? p : fs::path();
  };
  in.fp32_confusion = sibling(in.fp32_metrics);
  in.int8_confusion = sibling(in.int8_metrics);
  in.misses_png = pick("misses", [] { return fs::path(); });

  const fs::path out = make_run_dir(cfg, "reports");
  cfg.save(out / "args.yaml");
  // Model summary: computed from the fp32 checkpoint.
  const fs::path model =
      pick("model", [&] { return newest(project / "models/checkpoints/fp32", "best.pt"); });
  if (!model.empty()) {
    auto ck = model::load_checkpoint(model, true);
    const int64_t imgsz = cfg.get_int("imgsz");
    atomic_write(out / "model.json", model::summary_json(model::summarize(*ck.model, imgsz, imgsz)));
    in.model_json = out / "model.json";
  }
  const std::string html = eval::build_report(in);
  atomic_write(out / "report.html", html);
  std::cout << fmt::format("report written to {} ({:.1f} kB)\n", (out / "report.html").string(),
                           double(html.size()) / 1024.0);
}

}  // namespace

Command report_command() {
  Command c;
  c.name = "report";
  c.summary = "one self-contained HTML page (inline SVG, no scripts) with the plots of a run";
  c.declare = [](Schema& s) {
    const std::string d = " (default: the newest in the project; none = leave out)";
    s.text("title", "yoloqat report", "title of the page");
    s.text("stats", "", "stats.json of yoloqat stats" + d);
    s.text("samples", "", "sample mosaic PNG (default: samples.png beside stats.json)");
    s.text("model", "", "fp32 checkpoint for the model section" + d);
    s.integer("imgsz", 640, "image size of the model summary's GFLOPs", 32, 8192);
    s.text("fp32_results", "", "results.csv of the fp32 training" + d);
    s.text("qat_results", "", "results.csv of QAT" + d);
    s.text("analyze", "", "analyze.json of yoloqat analyze" + d);
    s.text("sensitivity", "", "sensitivity.json of yoloqat sensitivity" + d);
    s.text("fp32_metrics", "", "metrics.json of val on the fp32 model" + d);
    s.text("int8_metrics", "", "metrics.json of val on the quantized model" + d);
    s.text("misses", "", "PNG of examples the quantized model misses (optional)");
    s.text("benchmark", "", "benchmark.json of yoloqat benchmark" + d);
    s.text("compare", "", "compare.json of yoloqat compare" + d);
    add_output_keys(s, "report");
    add_runtime_keys(s);
  };
  c.run = run_report;
  return c;
}

}  // namespace yq::cli
