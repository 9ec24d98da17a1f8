#include "eval/svg.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace yq::eval::svg {

namespace {

constexpr int kTitleH = 28;   // title band
constexpr int kLegendH = 18;  // one legend row
constexpr int kBottom = 44;   // x tick labels + x axis label
constexpr int kRight = 16;
constexpr double kCharW = 6.2;  // approximate width of one 11 px character

struct Frame {
  double x0, y0, x1, y1;  // plot area: left, top, right, bottom (pixels)
  double lo_x, hi_x, lo_y, hi_y;
  double px(double v) const { return hi_x > lo_x ? x0 + (v - lo_x) / (hi_x - lo_x) * (x1 - x0) : x0; }
  double py(double v) const { return hi_y > lo_y ? y1 - (v - lo_y) / (hi_y - lo_y) * (y1 - y0) : y1; }
};

std::string open_svg(const ChartText& t) {
  return fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\" "
      "font-family=\"sans-serif\" font-size=\"11\" role=\"img\">\n<title>{2}</title>\n"
      "<rect x=\"0\" y=\"0\" width=\"{0}\" height=\"{1}\" fill=\"#ffffff\"/>\n"
      "<text x=\"{3}\" y=\"18\" text-anchor=\"middle\" font-size=\"14\" font-weight=\"bold\">{2}</text>\n",
      t.width, t.height, escape(t.title), t.width / 2);
}

// Legend entries in rows under the title; returns the height used.
struct LegendItem {
  std::string label, color;
  bool dashed = false;
};
int legend(std::string& out, const std::vector<LegendItem>& items, int width) {
  if (items.empty()) return 0;
  double x = 60, y = kTitleH + 4;
  int rows = 1;
  for (const auto& it : items) {
    const double w = 22 + kCharW * double(it.label.size()) + 14;
    if (x + w > width - kRight && x > 60) x = 60, y += kLegendH, ++rows;
    out += fmt::format(
        "<g class=\"legend\"><line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"{}\" "
        "stroke-width=\"3\"{}/><text x=\"{:.1f}\" y=\"{:.1f}\">{}</text></g>\n",
        x, y + 6, x + 16, y + 6, escape(it.color), it.dashed ? " stroke-dasharray=\"5,3\"" : "", x + 20,
        y + 10, escape(it.label));
    x += w;
  }
  return rows * kLegendH + 4;
}

void axes(std::string& out, const Frame& f, const ChartText& t, const std::vector<double>& xticks,
          const std::vector<double>& yticks, const std::vector<std::string>& xtick_labels = {}) {
  for (double v : yticks) {
    const double y = f.py(v);
    out += fmt::format(
        "<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#e5e5e5\"/>"
        "<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\">{}</text>\n",
        f.x0, y, f.x1, y, f.x0 - 4, y + 4, escape(format_tick(v)));
  }
  for (size_t i = 0; i < xticks.size(); ++i) {
    const double x = f.px(xticks[i]);
    const std::string label = i < xtick_labels.size() ? xtick_labels[i] : format_tick(xticks[i]);
    out += fmt::format(
        "<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#333\"/>"
        "<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">{}</text>\n",
        x, f.y1, x, f.y1 + 4, x, f.y1 + 16, escape(label));
  }
  out += fmt::format(
      "<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{0:.1f}\" y2=\"{2:.1f}\" stroke=\"#333\"/>"
      "<line x1=\"{0:.1f}\" y1=\"{2:.1f}\" x2=\"{3:.1f}\" y2=\"{2:.1f}\" stroke=\"#333\"/>\n",
      f.x0, f.y0, f.y1, f.x1);
  out += fmt::format("<text class=\"xlabel\" x=\"{:.1f}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n",
                     (f.x0 + f.x1) / 2, t.height - 8, escape(t.xlabel));
  out += fmt::format(
      "<text class=\"ylabel\" x=\"14\" y=\"{0:.1f}\" text-anchor=\"middle\" "
      "transform=\"rotate(-90 14 {0:.1f})\">{1}</text>\n",
      (f.y0 + f.y1) / 2, escape(t.ylabel));
}

void range_of(const std::vector<double>& v, double& lo, double& hi) {
  for (double x : v)
    if (std::isfinite(x)) lo = std::min(lo, x), hi = std::max(hi, x);
}

// Widens [lo, hi] to its nice ticks; a degenerate range gets a unit around it.
std::vector<double> settle(double& lo, double& hi, int target) {
  if (!std::isfinite(lo) || !std::isfinite(hi)) lo = 0, hi = 1;
  if (hi - lo < 1e-12) {
    const double d = std::max(std::abs(lo) * 0.1, 0.5);
    lo -= d, hi += d;
  }
  std::vector<double> ticks = nice_ticks(lo, hi, target);
  lo = std::min(lo, ticks.front());
  hi = std::max(hi, ticks.back());
  return ticks;
}

std::string color_or(const std::string& c, size_t i) {
  return c.empty() ? palette(i) : c;
}

}  // namespace

std::string escape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string palette(size_t i) {
  static const char* kColors[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                  "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
  return kColors[i % 10];
}

std::vector<double> nice_ticks(double lo, double hi, int target) {
  if (!(hi > lo)) return {lo};
  const double raw = (hi - lo) / std::max(1, target);
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 2.5, 5.0, 10.0})
    if (raw <= m * mag * (1 + 1e-9)) {
      step = m * mag;
      break;
    }
  std::vector<double> ticks;
  const double first = std::floor(lo / step + 1e-9) * step;
  for (double v = first; v < hi + step * (1 - 1e-9); v += step) {
    ticks.push_back(std::abs(v) < step * 1e-9 ? 0.0 : v);
    if (ticks.size() > 100) break;
  }
  if (ticks.back() < hi - 1e-12 * step) ticks.push_back(ticks.back() + step);
  return ticks;
}

std::string format_tick(double v) {
  if (v == 0) return "0";
  const double a = std::abs(v);
  if (a >= 1e6) return fmt::format("{:g}M", v / 1e6);
  if (a >= 1e4) return fmt::format("{:g}k", v / 1e3);
  if (a < 1e-3) return fmt::format("{:.1e}", v);
  return fmt::format("{:.4g}", v);
}

std::string line_chart(const std::vector<Series>& series, const ChartText& t, double y_min_hint) {
  std::string out = open_svg(t);
  std::vector<LegendItem> items;
  for (size_t i = 0; i < series.size(); ++i)
    items.push_back({series[i].label, color_or(series[i].color, i), series[i].dashed});
  const int top = kTitleH + legend(out, items, t.width) + 6;
  double lx = std::numeric_limits<double>::infinity(), hx = -lx, ly = lx, hy = -lx;
  for (const auto& s : series) range_of(s.x, lx, hx), range_of(s.y, ly, hy);
  if (std::isfinite(y_min_hint)) ly = std::min(ly, y_min_hint);
  std::vector<double> xt = settle(lx, hx, 6), yt = settle(ly, hy, 5);
  Frame f{60, double(top), double(t.width - kRight), double(t.height - kBottom), lx, hx, ly, hy};
  axes(out, f, t, xt, yt);
  for (size_t i = 0; i < series.size(); ++i) {
    const auto& s = series[i];
    const std::string c = escape(color_or(s.color, i));
    std::string path;
    bool pen = false;
    std::string dots;
    for (size_t k = 0; k < std::min(s.x.size(), s.y.size()); ++k) {
      if (!std::isfinite(s.x[k]) || !std::isfinite(s.y[k])) {
        pen = false;
        continue;
      }
      path += fmt::format("{}{:.1f},{:.1f} ", pen ? "L" : "M", f.px(s.x[k]), f.py(s.y[k]));
      pen = true;
      if (s.x.size() <= 60)
        dots += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"2.5\" fill=\"{}\"/>", f.px(s.x[k]),
                            f.py(s.y[k]), c);
    }
    out += fmt::format(
        "<g class=\"series\"><path d=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\"{}/>{}</g>\n", path,
        c, s.dashed ? " stroke-dasharray=\"5,3\"" : "", dots);
  }
  return out + "</svg>\n";
}

std::string bar_chart(std::vector<Bar> bars, const ChartText& t, bool ascending,
                      const std::string& value_label, double ref, const std::string& ref_label) {
  std::stable_sort(bars.begin(), bars.end(), [&](const Bar& a, const Bar& b) {
    return ascending ? a.value < b.value : a.value > b.value;
  });
  std::string out = open_svg(t);
  std::vector<LegendItem> items;
  if (!value_label.empty()) items.push_back({value_label, color_or(bars.empty() ? "" : bars[0].color, 0)});
  if (!ref_label.empty()) items.push_back({ref_label, "#d62728", true});
  const int top = kTitleH + legend(out, items, t.width) + 6;
  size_t longest = 4;
  for (const auto& b : bars) longest = std::max(longest, b.label.size());
  const double left = std::min(double(t.width) * 0.45, 12 + kCharW * double(longest));
  double lo = 0, hi = 0;
  for (const auto& b : bars)
    if (std::isfinite(b.value)) lo = std::min(lo, b.value), hi = std::max(hi, b.value);
  if (!ref_label.empty()) lo = std::min(lo, ref), hi = std::max(hi, ref);
  std::vector<double> xt = settle(lo, hi, 5);
  Frame f{left, double(top), double(t.width - kRight - 40), double(t.height - kBottom), lo, hi, 0, 1};
  axes(out, f, t, xt, {});
  const double row = bars.empty() ? 1 : (f.y1 - f.y0) / double(bars.size());
  for (size_t i = 0; i < bars.size(); ++i) {
    const auto& b = bars[i];
    const double v = std::isfinite(b.value) ? b.value : 0;
    const double y = f.y0 + row * double(i), h = std::max(1.0, row * 0.75);
    const double xa = f.px(std::min(0.0, v)), xb = f.px(std::max(0.0, v));
    out += fmt::format(
        "<g class=\"bar\"><rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"{}\"/>",
        xa, y + row * 0.125, std::max(0.5, xb - xa), h, escape(color_or(b.color, 0)));
    if (row >= 7)
      out += fmt::format(
          "<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\" font-size=\"{}\">{}</text>"
          "<text x=\"{:.1f}\" y=\"{:.1f}\" font-size=\"{}\">{}</text>",
          f.x0 - 4, y + row * 0.5 + 3.5, row >= 12 ? 11 : 8, escape(b.label), xb + 3, y + row * 0.5 + 3.5,
          row >= 12 ? 10 : 8, escape(std::isfinite(b.value) ? format_tick(b.value) : "n/a"));
    out += "</g>\n";
  }
  if (!ref_label.empty())
    out += fmt::format(
        "<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{0:.1f}\" y2=\"{2:.1f}\" stroke=\"#d62728\" "
        "stroke-dasharray=\"5,3\" stroke-width=\"1.5\"/>\n",
        f.px(ref), f.y0, f.y1);
  return out + "</svg>\n";
}

std::string histogram(const std::vector<double>& edges, const std::vector<double>& counts,
                      const std::vector<Marker>& markers, const ChartText& t, bool log_y) {
  std::string out = open_svg(t);
  std::vector<LegendItem> items{{log_y ? "count (log10(1 + n))" : "count", palette(0)}};
  for (size_t i = 0; i < markers.size(); ++i)
    if (!markers[i].label.empty()) items.push_back({markers[i].label, color_or(markers[i].color, 3), true});
  const int top = kTitleH + legend(out, items, t.width) + 6;
  double lx = std::numeric_limits<double>::infinity(), hx = -lx, hy = 0;
  range_of(edges, lx, hx);
  for (const auto& m : markers)
    if (std::isfinite(m.x)) lx = std::min(lx, m.x), hx = std::max(hx, m.x);
  std::vector<double> ys;
  for (double c : counts) ys.push_back(log_y ? std::log10(1 + std::max(0.0, c)) : c);
  for (double y : ys) hy = std::max(hy, y);
  double ly = 0;
  std::vector<double> xt = settle(lx, hx, 6), yt = settle(ly, hy, 4);
  Frame f{60, double(top), double(t.width - kRight), double(t.height - kBottom), lx, hx, ly, hy};
  axes(out, f, t, xt, yt);
  out += "<g class=\"bins\">";
  for (size_t k = 0; k + 1 < edges.size() && k < ys.size(); ++k) {
    const double xa = f.px(edges[k]), xb = f.px(edges[k + 1]), y = f.py(ys[k]);
    if (ys[k] <= 0) continue;
    out += fmt::format("<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"{}\"/>", xa,
                       y, std::max(0.5, xb - xa), f.y1 - y, palette(0));
  }
  out += "</g>\n";
  for (const auto& m : markers) {
    if (!std::isfinite(m.x)) continue;
    out += fmt::format(
        "<line class=\"marker\" x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{0:.1f}\" y2=\"{2:.1f}\" stroke=\"{3}\" "
        "stroke-width=\"1.5\" stroke-dasharray=\"5,3\"/>\n",
        f.px(m.x), f.y0, f.y1, escape(color_or(m.color, 3)));
  }
  return out + "</svg>\n";
}

std::string grouped_bar_chart(const std::vector<std::string>& groups, const std::vector<GroupSeries>& series,
                              const ChartText& t) {
  std::string out = open_svg(t);
  std::vector<LegendItem> items;
  for (size_t i = 0; i < series.size(); ++i) items.push_back({series[i].label, color_or(series[i].color, i)});
  const int top = kTitleH + legend(out, items, t.width) + 6;
  double lo = 0, hi = 0;
  for (const auto& s : series) range_of(s.values, lo, hi);
  std::vector<double> yt = settle(lo, hi, 5);
  const double n = double(std::max<size_t>(1, groups.size()));
  Frame f{60, double(top), double(t.width - kRight), double(t.height - kBottom), 0, n, lo, hi};
  std::vector<double> xt;
  for (size_t g = 0; g < groups.size(); ++g) xt.push_back(double(g) + 0.5);
  // Long group names: shorten the tick labels so they do not collide.
  const size_t max_chars = size_t(std::max(3.0, (f.x1 - f.x0) / n / kCharW));
  std::vector<std::string> labels;
  for (const auto& g : groups) labels.push_back(g.size() > max_chars ? g.substr(0, max_chars - 1) + "~" : g);
  axes(out, f, t, xt, yt, labels);
  const double slot = (f.x1 - f.x0) / n, bw = slot * 0.8 / double(std::max<size_t>(1, series.size()));
  for (size_t s = 0; s < series.size(); ++s) {
    out += "<g class=\"series\">";
    for (size_t g = 0; g < groups.size() && g < series[s].values.size(); ++g) {
      const double v = series[s].values[g];
      if (!std::isfinite(v)) continue;
      const double x = f.x0 + slot * double(g) + slot * 0.1 + bw * double(s);
      const double ya = f.py(std::max(0.0, v)), yb = f.py(std::min(0.0, v));
      out += fmt::format(
          "<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"{}\"><title>{}: "
          "{}</title></rect>",
          x, ya, std::max(0.5, bw - 1), std::max(0.5, yb - ya), escape(color_or(series[s].color, s)),
          escape(series[s].label + " / " + groups[g]), escape(format_tick(v)));
    }
    out += "</g>\n";
  }
  return out + "</svg>\n";
}

std::string heatmap(const std::vector<std::string>& row_labels, const std::vector<std::string>& col_labels,
                    const std::vector<double>& values, const ChartText& t, bool integer_values) {
  std::string out = open_svg(t);
  size_t longest = 4;
  for (const auto& r : row_labels) longest = std::max(longest, r.size());
  const double left = std::min(double(t.width) * 0.35, 30 + kCharW * double(longest));
  const double top = kTitleH + 8, bottom = double(t.height) - 70;
  const size_t R = row_labels.size(), C = col_labels.size();
  const double cw = (double(t.width) - left - kRight) / double(std::max<size_t>(1, C));
  const double ch = (bottom - top) / double(std::max<size_t>(1, R));
  double vmax = 0;
  for (double v : values)
    if (std::isfinite(v)) vmax = std::max(vmax, v);
  for (size_t r = 0; r < R; ++r) {
    out += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\">{}</text>\n", left - 4,
                       top + ch * (double(r) + 0.5) + 4, escape(row_labels[r]));
    for (size_t c = 0; c < C && r * C + c < values.size(); ++c) {
      const double v = values[r * C + c];
      const double a = vmax > 0 && std::isfinite(v) ? v / vmax : 0;
      const int shade = int(std::lround(255 - 200 * a));
      out += fmt::format(
          "<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"rgb({},{},255)\" "
          "stroke=\"#fff\"/>",
          left + cw * double(c), top + ch * double(r), cw, ch, shade, shade);
      if (v != 0 && cw >= 14 && ch >= 10)
        out += fmt::format(
            "<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\" fill=\"{}\" font-size=\"{}\">{}</text>",
            left + cw * (double(c) + 0.5), top + ch * (double(r) + 0.5) + 4, a > 0.6 ? "#fff" : "#000",
            cw < 28 ? 8 : 10, integer_values ? fmt::format("{:.0f}", v) : fmt::format("{:.2f}", v));
    }
    out += "\n";
  }
  for (size_t c = 0; c < C; ++c) {
    const double x = left + cw * (double(c) + 0.5), y = bottom + 6;
    out += fmt::format(
        "<text x=\"{0:.1f}\" y=\"{1:.1f}\" text-anchor=\"end\" transform=\"rotate(-40 {0:.1f} "
        "{1:.1f})\">{2}</text>\n",
        x, y, escape(col_labels[c]));
  }
  out += fmt::format("<text class=\"xlabel\" x=\"{:.1f}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n",
                     left + (double(t.width) - left) / 2, t.height - 4, escape(t.xlabel));
  out += fmt::format(
      "<text class=\"ylabel\" x=\"12\" y=\"{0:.1f}\" text-anchor=\"middle\" transform=\"rotate(-90 12 "
      "{0:.1f})\">{1}</text>\n",
      (top + bottom) / 2, escape(t.ylabel));
  return out + "</svg>\n";
}

}  // namespace yq::eval::svg
