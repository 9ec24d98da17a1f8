// A small SVG chart writer for `analyze` and the HTML report: line charts with several series,
// horizontal bar charts (sorted), histograms with vertical markers (a quantizer's clipping range) and
// grouped bar charts. Every chart has a title, axis labels (with units where the caller gives them),
// ticks and a legend; text is XML-escaped; the output is one <svg> element with no external
// resources (no fonts, images, scripts or links), so it can be inlined into HTML or saved as .svg.
#pragma once

#include <string>
#include <vector>

namespace yq::eval::svg {

// Titles and sizes shared by every chart. Axis labels should carry their unit ("latency (ms)").
struct ChartText {
  std::string title;
  std::string xlabel;
  std::string ylabel;
  int width = 640;
  int height = 360;
};

// Escapes & < > " ' for XML text and attribute values.
std::string escape(const std::string& s);

// The i-th colour of the chart palette ("#1f77b4", ...), cycling.
std::string palette(size_t i);

// "Nice" tick positions covering [lo, hi] with about `target` ticks (steps of 1, 2, 2.5 or 5 x 10^k).
std::vector<double> nice_ticks(double lo, double hi, int target = 5);

// A tick label: compact, without trailing zeros ("0.25", "1.5k", "2e-05").
std::string format_tick(double v);

struct Series {
  std::string label;
  std::vector<double> x, y;  // same length; non-finite y values break the line
  std::string color;         // "" = palette
  bool dashed = false;
};
// Lines with point markers; axes span all series (y always includes `y_min_hint` when it is finite,
// e.g. 0 for losses).
std::string line_chart(const std::vector<Series>& series, const ChartText& t, double y_min_hint = 0.0);

struct Bar {
  std::string label;
  double value = 0;
  std::string color;  // "" = palette(0)
};
// Horizontal bars, one row per bar, sorted by value (descending unless ascending), the value printed at
// the end of each bar. A vertical reference line is drawn at `ref` when ref_label is not empty.
std::string bar_chart(std::vector<Bar> bars, const ChartText& t, bool ascending = false,
                      const std::string& value_label = "", double ref = 0, const std::string& ref_label = "");

struct Marker {
  double x = 0;
  std::string label;
  std::string color;  // "" = palette(3) (red)
};
// A histogram of precomputed bins: edges [K + 1] ascending, counts [K]; markers are vertical lines
// (e.g. the clipping range) with their labels in the legend. log_y draws log10(1 + count).
std::string histogram(const std::vector<double>& edges, const std::vector<double>& counts,
                      const std::vector<Marker>& markers, const ChartText& t, bool log_y = false);

// Vertical bars grouped by category: values[s][g] of series s in group g; series are the legend.
struct GroupSeries {
  std::string label;
  std::vector<double> values;  // [groups]
  std::string color;           // "" = palette
};
std::string grouped_bar_chart(const std::vector<std::string>& groups, const std::vector<GroupSeries>& series,
                              const ChartText& t);

// A heat map of a matrix (rows x cols, row-major values) with row/column labels and each value printed;
// colour by value / max. Used for confusion matrices.
std::string heatmap(const std::vector<std::string>& row_labels, const std::vector<std::string>& col_labels,
                    const std::vector<double>& values, const ChartText& t, bool integer_values = true);

}  // namespace yq::eval::svg
