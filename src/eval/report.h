// The HTML report (`yoloqat report`, DESIGN.md "report"): one self-contained page that tells the story
// of a run - inline SVG charts (eval/svg.h), PNGs as data: URIs, inline CSS, no script and no external
// URL. Sections: summary (fp32 vs int8 mAP, speed-up, size ratio), data set, model, training curves,
// quantization effects, error analysis, performance. Every input is optional: a missing one turns its
// part into a "not run" note naming the command that produces it.
#pragma once

#include <nlohmann/json.hpp>

#include <cmath>
#include <string>
#include <vector>

#include "core/fs.h"

namespace yq::eval {

// Paths of the files the report reads ("" = not available).
struct ReportInputs {
  std::string title = "yoloqat report";
  fs::path stats_json, samples_png;         // yoloqat stats
  fs::path model_json;                      // model::summary_json of the fp32 model (yoloqat info)
  fs::path fp32_results, qat_results;       // results.csv of train and qat
  fs::path analyze_json;                    // yoloqat analyze
  fs::path sensitivity_json;                // yoloqat sensitivity
  fs::path fp32_metrics, int8_metrics;      // metrics.json of val (fp32 and the quantized model)
  fs::path fp32_confusion, int8_confusion;  // confusion_matrix.json of the same val runs
  fs::path misses_png;                      // side-by-side examples int8 misses (optional)
  fs::path benchmark_json, compare_json;    // yoloqat benchmark, yoloqat compare
};

// base64 of bytes (RFC 4648, with padding).
std::string base64(const std::string& bytes);
// "data:image/png;base64,..." of a PNG / JPEG file.
std::string data_uri(const fs::path& image);
// HTML-escaped text.
std::string html_escape(const std::string& s);

// Builds the page. Malformed input files throw yq::Error naming the file.
std::string build_report(const ReportInputs& in);

// The summary figures of the top block (NaN when unknown).
struct ReportSummary {
  double fp32_map50 = NAN, fp32_map5095 = NAN, int8_map50 = NAN, int8_map5095 = NAN;
  double speedup = NAN, size_ratio = NAN;  // fp32 / int8 latency and file size
  std::string int8_label;                  // "int8 (oneDNN)" / the compare row used
};
ReportSummary summarize_inputs(const ReportInputs& in);

}  // namespace yq::eval
