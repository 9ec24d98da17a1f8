#include "eval/report.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "core/csv_log.h"
#include "core/error.h"
#include "eval/svg.h"

namespace yq::eval {

namespace {

using nlohmann::json;

bool have(const fs::path& p) {
  return !p.empty() && fs::exists(p);
}

json load_json(const fs::path& p) {
  return with_context("while reading " + p.string(), [&] { return json::parse(read_text(p)); });
}

double num(const json& j, const std::string& key, double fallback = NAN) {
  if (!j.is_object() || !j.contains(key) || !j[key].is_number()) return fallback;
  return j[key].get<double>();
}
std::string str(const json& j, const std::string& key) {
  if (!j.is_object() || !j.contains(key)) return "";
  return j[key].is_string() ? j[key].get<std::string>() : j[key].dump();
}

std::string fmtv(double v, int digits = 3) {
  if (!std::isfinite(v)) return "&ndash;";
  return fmt::format("{:.{}f}", v, digits);
}

// A drop of AP from fp32 to int8, marked bad above 0.02 points.
std::string drop_cell(double d) {
  if (!std::isfinite(d)) return fmtv(d);
  return std::string("<span class=\"") + (d > 0.02 ? "bad" : "good") + "\">" + fmtv(d) + "</span>";
}

std::string not_run(const std::string& what, const std::string& command) {
  return fmt::format("<p class=\"notrun\">{}: not run. Produce it with <code>{}</code>.</p>\n",
                     html_escape(what), html_escape(command));
}

struct Table {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;  // cells already HTML
  std::string caption;
  std::string html() const {
    std::string s = "<table>";
    if (!caption.empty()) s += "<caption>" + caption + "</caption>";
    s += "<tr>";
    for (const auto& h : header) s += "<th>" + html_escape(h) + "</th>";
    s += "</tr>\n";
    for (const auto& r : rows) {
      s += "<tr>";
      for (const auto& c : r) s += "<td>" + c + "</td>";
      s += "</tr>\n";
    }
    return s + "</table>\n";
  }
};

// Column of a CSV table (-1 when absent).
int column(const CsvTable& t, const std::string& name) {
  for (size_t i = 0; i < t.columns.size(); ++i)
    if (t.columns[i] == name) return int(i);
  return -1;
}

svg::Series csv_series(const CsvTable& t, const std::string& col, const std::string& label, size_t color,
                       bool dashed, double x_offset = 0) {
  svg::Series s{label, {}, {}, svg::palette(color), dashed};
  const int e = column(t, "epoch"), c = column(t, col);
  if (c < 0) return s;
  for (size_t r = 0; r < t.rows.size(); ++r) {
    s.x.push_back((e >= 0 ? t.rows[r][size_t(e)] : double(r + 1)) + x_offset);
    s.y.push_back(t.rows[r][size_t(c)]);
  }
  return s;
}

std::string css() {
  return R"(body{font-family:sans-serif;margin:0 auto;max-width:1180px;padding:0 16px 40px;color:#222;background:#fafafa}
h1{margin:18px 0 4px}h2{border-bottom:2px solid #1f77b4;padding-bottom:4px;margin-top:34px}
.summary{display:flex;flex-wrap:wrap;gap:12px;margin:14px 0}
.card{background:#fff;border:1px solid #ddd;border-radius:8px;padding:10px 16px;min-width:170px}
.card .v{font-size:26px;font-weight:bold}.card .l{color:#555;font-size:13px}
.good{color:#2ca02c}.bad{color:#d62728}
table{border-collapse:collapse;margin:8px 0 16px;background:#fff;font-size:13px}
td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}th{background:#eef3f8}
td:first-child,th:first-child{text-align:left}caption{text-align:left;font-weight:bold;padding:4px 0}
.charts{display:flex;flex-wrap:wrap;gap:10px}.charts svg{border:1px solid #ddd;background:#fff}
.notrun{color:#8a6d3b;background:#fcf8e3;border:1px solid #faebcc;padding:6px 10px;border-radius:4px}
img{max-width:100%;border:1px solid #ddd}code{background:#eee;padding:1px 4px}
.scroll{max-height:420px;overflow-y:auto;display:inline-block})";
}

// ---- sections ---------------------------------------------------------------------------------

std::string section_dataset(const ReportInputs& in) {
  std::string s = "<h2 id=\"data\">Data set</h2>\n";
  if (!have(in.stats_json)) return s + not_run("data set statistics", "yoloqat stats data=DATASET.yaml");
  const json j = load_json(in.stats_json);
  const json& splits = j.contains("splits") ? j["splits"] : json::object();
  Table t{{"split", "images", "boxes", "backgrounds", "small", "medium", "large", "median box w x h (px)"},
          {},
          ""};
  std::vector<std::string> names;
  if (j.contains("names"))
    for (const auto& n : j["names"]) names.push_back(n.get<std::string>());
  std::vector<svg::GroupSeries> counts;
  size_t k = 0;
  for (const std::string split : {"train", "val", "test"}) {
    if (!splits.contains(split)) continue;
    const json& sp = splits[split];
    const json& b = sp.value("size_buckets", json::object());
    t.rows.push_back({split, fmtv(num(sp, "images"), 0), fmtv(num(sp, "boxes"), 0),
                      fmtv(num(sp, "backgrounds"), 0), fmtv(num(b, "small"), 0), fmtv(num(b, "medium"), 0),
                      fmtv(num(b, "large"), 0),
                      fmtv(num(sp.value("box_width_px", json::object()), "median"), 0) + " x " +
                          fmtv(num(sp.value("box_height_px", json::object()), "median"), 0)});
    svg::GroupSeries g{split, {}, svg::palette(k++)};
    const json& cc = sp.value("class_counts", json::object());
    for (const auto& n : names) g.values.push_back(num(cc, n, 0));
    counts.push_back(g);
  }
  s += t.html();
  s += "<div class=\"charts\">" +
       svg::grouped_bar_chart(names, counts,
                              {"Boxes per class and split", "class", "boxes (count)", 760, 340});
  s += "</div>\n";
  if (have(in.samples_png))
    s += "<p>Sample images with their labels:</p><img alt=\"sample mosaic\" src=\"" +
         data_uri(in.samples_png) + "\">\n";
  return s;
}

std::string section_model(const ReportInputs& in) {
  std::string s = "<h2 id=\"model\">Model</h2>\n";
  if (!have(in.model_json)) return s + not_run("model summary", "yoloqat info model=WEIGHTS.pt");
  const json j = load_json(in.model_json);
  s += fmt::format(
      "<p><b>{}</b> ({} classes, input {}): <b>{:.2f} M</b> parameters, <b>{:.2f}</b> GFLOPs.</p>\n",
      html_escape(str(j, "model")), fmtv(num(j, "nc"), 0), html_escape(str(j, "imgsz")),
      num(j, "parameters", 0) / 1e6, num(j, "gflops", 0));
  Table t{{"#", "from", "n", "module", "args", "params", "GFLOPs"}, {}, "Layer table"};
  for (const auto& l : j.value("layers", json::array()))
    t.rows.push_back({fmtv(num(l, "index"), 0), html_escape(str(l, "from")), fmtv(num(l, "repeats"), 0),
                      html_escape(str(l, "module")), html_escape(str(l, "args")), fmtv(num(l, "params"), 0),
                      fmtv(num(l, "gflops"), 3)});
  return s + "<div class=\"scroll\">" + t.html() + "</div>\n";
}

std::string section_training(const ReportInputs& in) {
  std::string s = "<h2 id=\"training\">Training curves</h2>\n";
  const bool f = have(in.fp32_results), q = have(in.qat_results);
  if (!f) s += not_run("fp32 training log", "yoloqat train data=DATASET.yaml");
  if (!q) s += not_run("QAT training log", "yoloqat qat data=DATASET.yaml weights=FP32.pt");
  if (!f && !q) return s;
  CsvTable ft, qt;
  if (f) ft = read_csv_log(in.fp32_results);
  if (q) qt = read_csv_log(in.qat_results);
  // QAT epochs continue after the fp32 ones on the x axis.
  const double off =
      f && !ft.rows.empty() && column(ft, "epoch") >= 0 ? ft.rows.back()[size_t(column(ft, "epoch"))] : 0;
  std::vector<svg::Series> loss, map;
  size_t c = 0;
  for (const std::string l : {"box", "cls", "dfl"}) {
    if (f) loss.push_back(csv_series(ft, "train/" + l + "_loss", "fp32 " + l, c, false));
    if (q) loss.push_back(csv_series(qt, "train/" + l + "_loss", "QAT " + l, c, true, off));
    ++c;
  }
  for (const auto& [col, lab] : std::vector<std::pair<std::string, std::string>>{
           {"metrics/mAP50(B)", "mAP50"}, {"metrics/mAP50-95(B)", "mAP50-95"}}) {
    if (f) map.push_back(csv_series(ft, col, "fp32 " + lab, c, false));
    if (q) map.push_back(csv_series(qt, col, "QAT " + lab, c, true, off));
    ++c;
  }
  s += "<div class=\"charts\">" +
       svg::line_chart(loss, {"Training losses (QAT dashed, after the fp32 epochs)", "epoch",
                              "loss (per image)", 570, 340}) +
       svg::line_chart(map, {"Validation mAP per epoch", "epoch", "mAP (0..1)", 570, 340}) + "</div>\n";
  return s;
}

std::string section_quant(const ReportInputs& in) {
  std::string s = "<h2 id=\"quant\">Quantization effects</h2>\n";
  if (!have(in.analyze_json)) {
    s += not_run("layer-wise quantization error", "yoloqat analyze data=DATASET.yaml weights=QUANT.pt");
  } else {
    const json j = load_json(in.analyze_json);
    struct Row {
      const json* l;
      double acc, alone;
    };
    std::vector<Row> rows;
    static const json kNone = json::array();
    const json& all = j.contains("layers") ? j["layers"] : kNone;
    for (const auto& l : all) {
      const json& a = l.value("accumulated", json());
      if (!a.is_object()) continue;
      rows.push_back({&l, num(a, "sqnr_db", INFINITY), num(l.value("alone", json()), "sqnr_db", INFINITY)});
    }
    std::stable_sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) { return a.acc < b.acc; });
    s += fmt::format("<p>Activations of {} quantized layers on {} images, compared with {}.</p>\n",
                     rows.size(), fmtv(num(j, "images"), 0), html_escape(str(j, "reference")));
    std::vector<svg::Bar> bars;
    for (size_t i = 0; i < rows.size() && i < 30; ++i)
      if (std::isfinite(rows[i].acc))
        bars.push_back(
            {str(*rows[i].l, "name"), rows[i].acc, str(*rows[i].l, "kind") == "conv" ? "" : svg::palette(1)});
    s += "<div class=\"charts\">" +
         svg::bar_chart(bars,
                        {"Accumulated SQNR, worst layers first (higher is better)", "SQNR (dB)", "layer", 760,
                         int(90 + 16 * std::max<size_t>(4, bars.size()))},
                        true, "accumulated SQNR (dB); orange: not a conv", 20, "20 dB") +
         "</div>\n";
    Table t{{"layer", "kind", "alone SQNR (dB)", "accumulated SQNR (dB)", "MSE", "cosine", "act. clipped %"},
            {},
            "Worst layers (by accumulated SQNR)"};
    for (size_t i = 0; i < rows.size() && i < 15; ++i) {
      const json& l = *rows[i].l;
      const json& a = l["accumulated"];
      t.rows.push_back({html_escape(str(l, "name")), html_escape(str(l, "kind")), fmtv(rows[i].alone, 2),
                        fmtv(rows[i].acc, 2), fmt::format("{:.3g}", num(a, "mse", 0)),
                        fmtv(num(a, "cosine"), 5),
                        fmtv(100 * num(l.value("act_hist", json()), "clipped_fraction"), 3)});
    }
    s += t.html();
    std::string hists;
    for (size_t i = 0; i < rows.size() && i < 3; ++i) {
      const json& l = *rows[i].l;
      for (const std::string key : {"weight_hist", "act_hist"}) {
        const json& h = l.value(key, json());
        if (!h.is_object()) continue;
        std::vector<double> edges = h["edges"].get<std::vector<double>>(),
                            counts = h["counts"].get<std::vector<double>>();
        std::vector<svg::Marker> m{{num(h, "clip_lo"), "clipping range", svg::palette(3)},
                                   {num(h, "clip_hi"), "", svg::palette(3)}};
        hists += svg::histogram(
            edges, counts, m,
            {fmt::format("{} {}: {:.2f}% clipped", str(l, "name"),
                         key == "weight_hist" ? "weights" : "activations",
                         100 * num(h, "clipped_fraction", 0)),
             key == "weight_hist" ? "weight value" : "activation value", "log10(1 + count)", 560, 260},
            true);
      }
    }
    if (!hists.empty())
      s += "<h3>Histograms of the worst layers</h3><div class=\"charts\">" + hists + "</div>\n";
    if (j.contains("drift") && j["drift"].is_object()) {
      const json& d = j["drift"];
      std::vector<double> ep = d["epoch"].get<std::vector<double>>();
      const double e0 = ep.empty() ? 0 : ep.front(), e1 = ep.empty() ? 1 : ep.back();
      s += "<div class=\"charts\">" +
           svg::line_chart(
               {{"QAT mAP50", ep, d["map50"].get<std::vector<double>>(), svg::palette(0), false},
                {"QAT mAP50-95", ep, d["map5095"].get<std::vector<double>>(), svg::palette(1), false},
                {"fp32 mAP50", {e0, e1}, {num(d, "fp32_map50"), num(d, "fp32_map50")}, svg::palette(0), true},
                {"fp32 mAP50-95",
                 {e0, e1},
                 {num(d, "fp32_map5095"), num(d, "fp32_map5095")},
                 svg::palette(1),
                 true}},
               {"Accuracy drift during QAT vs fp32", "QAT epoch", "mAP (0..1)", 640, 320}) +
           "</div>\n";
    }
  }
  s += "<h3>Sensitivity ranking</h3>\n";
  if (!have(in.sensitivity_json))
    return s + not_run("per-layer sensitivity", "yoloqat sensitivity data=DATASET.yaml weights=FP32.pt");
  const json j = load_json(in.sensitivity_json);
  std::vector<json> layers;
  for (const auto& l : j.value("layers", json::array())) layers.push_back(l);
  std::stable_sort(layers.begin(), layers.end(),
                   [](const json& a, const json& b) { return num(a, "rank", 1e9) < num(b, "rank", 1e9); });
  const std::string metric = str(j, "metric");
  const json& base = j.value("baseline", json::object());
  s += "<p>Metric: <b>" + html_escape(metric) + "</b>; baseline " + html_escape(base.dump()) + "</p>\n";
  Table t{{"rank", "layer", "kind", "only this layer quantized", "all but this layer quantized"},
          {},
          "Most sensitive layers first"};
  std::vector<svg::Bar> bars;
  for (size_t i = 0; i < layers.size(); ++i) {
    const json& l = layers[i];
    if (i < 25)
      t.rows.push_back({fmtv(num(l, "rank"), 0), html_escape(str(l, "name")), html_escape(str(l, "kind")),
                        fmtv(num(l, "only_this"), 4), fmtv(num(l, "all_but_this"), 4)});
    if (i < 20) bars.push_back({str(l, "name"), num(l, "only_this", 0), ""});
  }
  s += "<div class=\"charts\">" +
       svg::bar_chart(bars,
                      {metric + " with only this layer quantized (most sensitive 20)", metric + " (0..1)",
                       "layer", 760, int(90 + 16 * std::max<size_t>(4, bars.size()))},
                      true, metric + " with only this layer quantized", num(base, metric, 0),
                      "fp32 baseline") +
       "</div>\n" + t.html();
  return s;
}

std::string section_errors(const ReportInputs& in) {
  std::string s = "<h2 id=\"errors\">Error analysis</h2>\n";
  if (!have(in.fp32_metrics) || !have(in.int8_metrics)) {
    s += not_run("per-class AP of fp32 and int8",
                 "yoloqat val data=DATASET.yaml weights=FP32.pt, and weights=QUANT.pt");
  } else {
    const json f = load_json(in.fp32_metrics), q = load_json(in.int8_metrics);
    std::map<int, json> qc;
    for (const auto& c : q.value("classes", json::array())) qc[c.value("id", -1)] = c;
    struct Row {
      std::string name;
      double f50, q50, f95, q95, n;
    };
    std::vector<Row> rows;
    for (const auto& c : f.value("classes", json::array())) {
      const json& o = qc[c.value("id", -1)];
      rows.push_back({str(c, "name"), num(c, "ap50"), num(o, "ap50"), num(c, "ap50-95"), num(o, "ap50-95"),
                      num(c, "instances")});
    }
    std::stable_sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) {
      const double da = std::isfinite(a.f95 - a.q95) ? a.f95 - a.q95 : -1e9,
                   db = std::isfinite(b.f95 - b.q95) ? b.f95 - b.q95 : -1e9;
      return da > db;
    });
    // mAP50-95 by label size (val's metrics.json; files from before it have none).
    Table sizes{{"object size (label area, original pixels)", "labels", "fp32 mAP50-95", "int8 mAP50-95",
                 "drop mAP50-95"},
                {},
                "mAP50-95 by object size (COCO's area ranges, approximated: eval/metrics.h)"};
    bool any_size = false;
    for (const auto& [key, what] : {std::pair<std::string, std::string>{"small", "small (&lt; 32&sup2;)"},
                                    {"medium", "medium (32&sup2; to 96&sup2;)"},
                                    {"large", "large (&gt; 96&sup2;)"}}) {
      const double fv = num(f, "mAP_" + key), qv = num(q, "mAP_" + key), d = fv - qv;
      any_size = any_size || f.contains("mAP_" + key) || q.contains("mAP_" + key);
      sizes.rows.push_back({what, fmtv(num(f.value("instances_by_area", json::object()), key), 0), fmtv(fv),
                            fmtv(qv), drop_cell(d)});
    }
    if (any_size) s += sizes.html();
    Table t{{"class", "labels", "fp32 AP50", "int8 AP50", "fp32 AP50-95", "int8 AP50-95", "drop AP50-95"},
            {},
            "Per-class AP, largest drop first"};
    std::vector<std::string> names;
    svg::GroupSeries gf{"fp32 AP50-95", {}, svg::palette(0)}, gq{"int8 AP50-95", {}, svg::palette(1)};
    for (const auto& r : rows) {
      const double d = r.f95 - r.q95;
      t.rows.push_back({html_escape(r.name), fmtv(r.n, 0), fmtv(r.f50), fmtv(r.q50), fmtv(r.f95), fmtv(r.q95),
                        drop_cell(d)});
      names.push_back(r.name), gf.values.push_back(r.f95), gq.values.push_back(r.q95);
    }
    s += "<div class=\"charts\">" +
         svg::grouped_bar_chart(
             names, {gf, gq},
             {"Per-class AP50-95: fp32 vs int8", "class (largest drop first)", "AP50-95 (0..1)", 760, 340}) +
         "</div>\n" + t.html();
  }
  std::string cms;
  for (const auto& [p, label] :
       {std::pair<fs::path, std::string>{in.fp32_confusion, "fp32"}, {in.int8_confusion, "int8"}}) {
    if (!have(p)) continue;
    const json j = load_json(p);
    std::vector<std::string> names = j.value("names", std::vector<std::string>{});
    std::vector<double> vals;
    for (const auto& row : j.value("matrix", json::array()))
      for (const auto& v : row) vals.push_back(v.get<double>());
    if (vals.size() != names.size() * names.size())
      throw Error(fmt::format("{}: the matrix is not {} x {}", p.string(), names.size(), names.size()));
    cms +=
        svg::heatmap(names, names, vals,
                     {"Confusion matrix, " + label + " (counts)", "true class", "predicted class", 560, 480});
  }
  s += cms.empty() ? not_run("confusion matrices", "yoloqat val data=DATASET.yaml weights=...")
                   : "<div class=\"charts\">" + cms + "</div>\n";
  if (have(in.misses_png))
    s += "<h3>Objects fp32 finds and int8 misses</h3><img alt=\"int8 misses\" src=\"" +
         data_uri(in.misses_png) + "\">\n";
  return s;
}

std::string section_performance(const ReportInputs& in) {
  std::string s = "<h2 id=\"performance\">Performance</h2>\n";
  if (have(in.compare_json)) {
    const json j = load_json(in.compare_json);
    std::vector<json> rows = j.value("rows", std::vector<json>{});
    std::stable_sort(rows.begin(), rows.end(), [](const json& a, const json& b) {
      return num(a, "p50_ms", 1e18) < num(b, "p50_ms", 1e18);
    });
    Table t{
        {"model", "kind", "mAP50", "mAP50-95", "p50 latency (ms)", "speed-up", "file (MB)", "peak RSS (MB)"},
        {},
        "fp32 vs quantized, fastest first"};
    std::vector<svg::Bar> lat, size;
    for (const auto& r : rows) {
      t.rows.push_back({html_escape(str(r, "name")), html_escape(str(r, "kind")), fmtv(num(r, "map50")),
                        fmtv(num(r, "map5095")), fmtv(num(r, "p50_ms"), 2), fmtv(num(r, "speedup"), 2) + "x",
                        fmtv(num(r, "file_mb"), 2), fmtv(num(r, "peak_rss_mb"), 1)});
      if (std::isfinite(num(r, "p50_ms"))) lat.push_back({str(r, "name"), num(r, "p50_ms"), ""});
      if (std::isfinite(num(r, "file_mb")))
        size.push_back({str(r, "name"), num(r, "file_mb"), svg::palette(2)});
    }
    s += t.html() + "<div class=\"charts\">" +
         svg::bar_chart(lat,
                        {"Latency p50 (lower is better)", "latency (ms)", "model", 560,
                         int(90 + 22 * std::max<size_t>(3, lat.size()))},
                        true, "p50 latency (ms)") +
         svg::bar_chart(
             size,
             {"Model file size", "size (MB)", "model", 560, int(90 + 22 * std::max<size_t>(3, size.size()))},
             true, "file size (MB)") +
         "</div>\n";
  } else {
    s += not_run("fp32 / int8 comparison", "yoloqat compare data=DATASET.yaml");
  }
  if (!have(in.benchmark_json)) return s + not_run("latency benchmark", "yoloqat benchmark weights=...");
  const json j = load_json(in.benchmark_json);
  std::vector<json> rows = j.value("rows", std::vector<json>{});
  std::stable_sort(rows.begin(), rows.end(), [](const json& a, const json& b) {
    return num(a, "p50_ms", 1e18) < num(b, "p50_ms", 1e18);
  });
  Table t{{"model", "kind", "runtime", "imgsz", "batch", "threads", "p50 (ms)", "p90 (ms)", "p99 (ms)",
           "images/s", "peak RSS (MB)", "file (MB)"},
          {},
          "Benchmark, fastest first"};
  std::map<std::string, std::map<std::string, double>> by;  // "model/kind" -> runtime -> best p50 at batch 1
  std::vector<std::string> runtimes;
  for (const auto& r : rows) {
    t.rows.push_back({html_escape(str(r, "model")), html_escape(str(r, "kind")),
                      html_escape(str(r, "runtime")), fmtv(num(r, "imgsz"), 0), fmtv(num(r, "batch"), 0),
                      fmtv(num(r, "threads"), 0), fmtv(num(r, "p50_ms"), 2), fmtv(num(r, "p90_ms"), 2),
                      fmtv(num(r, "p99_ms"), 2), fmtv(num(r, "throughput_ips"), 1),
                      fmtv(num(r, "peak_rss_mb"), 1), fmtv(num(r, "file_mb"), 2)});
    if (num(r, "batch") != 1) continue;
    const std::string key = str(r, "kind"), rt = str(r, "runtime");
    if (std::find(runtimes.begin(), runtimes.end(), rt) == runtimes.end()) runtimes.push_back(rt);
    double& v = by[key].emplace(rt, INFINITY).first->second;
    v = std::min(v, num(r, "p50_ms", INFINITY));
  }
  std::vector<std::string> groups;
  for (const auto& [k, m] : by) groups.push_back(k);
  std::vector<svg::GroupSeries> series;
  for (size_t i = 0; i < runtimes.size(); ++i) {
    svg::GroupSeries g{runtimes[i], {}, svg::palette(i)};
    for (const auto& k : groups) {
      auto it = by[k].find(runtimes[i]);
      g.values.push_back(it == by[k].end() || !std::isfinite(it->second) ? NAN : it->second);
    }
    series.push_back(g);
  }
  s += "<div class=\"charts\">" +
       svg::grouped_bar_chart(groups, series,
                              {"Latency p50 at batch 1 by runtime (best thread count)", "model kind",
                               "latency (ms)", 760, 340}) +
       "</div>\n";
  return s + t.html();
}

std::string card(const std::string& value, const std::string& label, const std::string& cls = "") {
  return fmt::format("<div class=\"card\"><div class=\"v {}\">{}</div><div class=\"l\">{}</div></div>", cls,
                     value, html_escape(label));
}

}  // namespace

std::string base64(const std::string& bytes) {
  static const char* k = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const uint32_t v =
        uint32_t(uint8_t(bytes[i])) << 16 | uint32_t(uint8_t(bytes[i + 1])) << 8 | uint8_t(bytes[i + 2]);
    out += k[v >> 18], out += k[(v >> 12) & 63], out += k[(v >> 6) & 63], out += k[v & 63];
  }
  if (i + 1 == bytes.size()) {
    const uint32_t v = uint32_t(uint8_t(bytes[i])) << 16;
    out += k[v >> 18], out += k[(v >> 12) & 63], out += "==";
  } else if (i + 2 == bytes.size()) {
    const uint32_t v = uint32_t(uint8_t(bytes[i])) << 16 | uint32_t(uint8_t(bytes[i + 1])) << 8;
    out += k[v >> 18], out += k[(v >> 12) & 63], out += k[(v >> 6) & 63], out += '=';
  }
  return out;
}

std::string data_uri(const fs::path& image) {
  const std::string ext = lower_ext(image);
  const std::string mime = ext == "png" ? "image/png" : (ext == "jpg" || ext == "jpeg") ? "image/jpeg" : "";
  YQ_CHECK_USAGE(!mime.empty(), "{}: only PNG and JPEG images can be embedded in the report", image.string());
  return "data:" + mime + ";base64," + base64(read_text(image));
}

std::string html_escape(const std::string& s) {
  return svg::escape(s);
}

ReportSummary summarize_inputs(const ReportInputs& in) {
  ReportSummary r;
  if (have(in.fp32_metrics)) {
    const json j = load_json(in.fp32_metrics);
    r.fp32_map50 = num(j, "mAP50"), r.fp32_map5095 = num(j, "mAP50-95");
  }
  if (have(in.int8_metrics)) {
    const json j = load_json(in.int8_metrics);
    r.int8_map50 = num(j, "mAP50"), r.int8_map5095 = num(j, "mAP50-95");
    r.int8_label = "int8";
  }
  if (have(in.compare_json)) {
    // fp32 row: kind "fp32"; int8 row: the fastest non-fp32 one.
    const json j = load_json(in.compare_json);
    const json* f = nullptr;
    const json* q = nullptr;
    const json rows = j.value("rows", json::array());
    for (const auto& row : rows) {
      if (str(row, "kind") == "fp32") {
        if (!f) f = &row;
      } else if (!q || num(row, "p50_ms", 1e18) < num(*q, "p50_ms", 1e18)) {
        q = &row;
      }
    }
    if (f && q) {
      r.speedup = num(*f, "p50_ms") / num(*q, "p50_ms");
      r.size_ratio = num(*f, "file_mb") / num(*q, "file_mb");
      r.int8_label = str(*q, "name");
      if (!std::isfinite(r.fp32_map5095))
        r.fp32_map50 = num(*f, "map50"), r.fp32_map5095 = num(*f, "map5095");
      if (!std::isfinite(r.int8_map5095))
        r.int8_map50 = num(*q, "map50"), r.int8_map5095 = num(*q, "map5095");
    }
  }
  if (!std::isfinite(r.speedup) && have(in.benchmark_json)) {
    // Batch 1, yoloqat runtime: best fp32 p50 / best non-fp32 p50.
    const json j = load_json(in.benchmark_json);
    double f = INFINITY, q = INFINITY, fs_mb = NAN, qs_mb = NAN;
    for (const auto& row : j.value("rows", json::array())) {
      if (num(row, "batch") != 1 || str(row, "runtime") != "yoloqat") continue;
      const double p = num(row, "p50_ms", INFINITY);
      if (str(row, "kind") == "fp32") {
        if (p < f) f = p, fs_mb = num(row, "file_mb");
      } else if (p < q) {
        q = p, qs_mb = num(row, "file_mb");
      }
    }
    if (std::isfinite(f) && std::isfinite(q)) r.speedup = f / q, r.size_ratio = fs_mb / qs_mb;
  }
  return r;
}

std::string build_report(const ReportInputs& in) {
  const ReportSummary sum = summarize_inputs(in);
  std::string body;
  body += "<h1>" + html_escape(in.title) + "</h1>\n";
  body +=
      "<p>Sections: <a href=\"#data\">data set</a> &middot; <a href=\"#model\">model</a> &middot; "
      "<a href=\"#training\">training</a> &middot; <a href=\"#quant\">quantization effects</a> &middot; "
      "<a href=\"#errors\">error analysis</a> &middot; <a href=\"#performance\">performance</a></p>\n";
  const double drop = sum.fp32_map5095 - sum.int8_map5095;
  body += "<div class=\"summary\">";
  body += card(fmtv(sum.fp32_map5095), "fp32 mAP50-95 (mAP50 " + fmtv(sum.fp32_map50) + ")");
  body += card(fmtv(sum.int8_map5095), (sum.int8_label.empty() ? std::string("int8") : sum.int8_label) +
                                           " mAP50-95 (mAP50 " + fmtv(sum.int8_map50) + ")");
  body +=
      card(std::isfinite(drop) ? fmt::format("{:+.3f}", -drop) : "&ndash;",
           "mAP50-95 change from quantization", std::isfinite(drop) ? (drop > 0.01 ? "bad" : "good") : "");
  body += card(std::isfinite(sum.speedup) ? fmt::format("{:.2f}x", sum.speedup) : "&ndash;",
               "speed-up int8 vs fp32 (p50 latency)",
               std::isfinite(sum.speedup) ? (sum.speedup >= 1 ? "good" : "bad") : "");
  body += card(std::isfinite(sum.size_ratio) ? fmt::format("{:.2f}x", sum.size_ratio) : "&ndash;",
               "smaller file (fp32 file / int8 file)");
  body += "</div>\n";
  body += section_dataset(in);
  body += section_model(in);
  body += section_training(in);
  body += section_quant(in);
  body += section_errors(in);
  body += section_performance(in);
  // Inline SVG in HTML needs no namespace declaration: drop it, so no URL appears anywhere in the page.
  const std::string ns = " xmlns=\"http://www.w3.org/2000/svg\"";
  for (size_t pos = body.find(ns); pos != std::string::npos; pos = body.find(ns, pos))
    body.erase(pos, ns.size());
  return "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>" + html_escape(in.title) +
         "</title>\n<style>" + css() + "</style></head>\n<body>\n" + body +
         "<p style=\"color:#777\">Written by yoloqat report. Self-contained: no scripts, no external "
         "resources.</p>\n</body></html>\n";
}

}  // namespace yq::eval
