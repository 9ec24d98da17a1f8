// svg: escaping, tick placement, and the structure of every chart kind (balanced tags, title, axis
// labels, legend entries, no external resources).
#include <gtest/gtest.h>

#include <cmath>
#include <regex>
#include <vector>

#include "eval/svg.h"

namespace yq::eval::svg {
namespace {

// Checks that every element is closed in order (a minimal XML well-formedness check); returns the
// first problem or "".
std::string tag_problem(const std::string& s) {
  std::vector<std::string> stack;
  std::regex tag("<(/?)([a-zA-Z][a-zA-Z0-9]*)[^>]*?(/?)>");
  for (auto it = std::sregex_iterator(s.begin(), s.end(), tag); it != std::sregex_iterator(); ++it) {
    const auto& m = *it;
    if (m[3] == "/") continue;
    if (m[1] == "/") {
      if (stack.empty() || stack.back() != m[2]) return "unexpected </" + m[2].str() + ">";
      stack.pop_back();
    } else {
      stack.push_back(m[2]);
    }
  }
  return stack.empty() ? "" : "unclosed <" + stack.back() + ">";
}

int count(const std::string& s, const std::string& what) {
  int n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
  return n;
}

void check_chart(const std::string& s, const std::string& title) {
  EXPECT_EQ(s.rfind("<svg", 0), 0u);
  EXPECT_EQ(tag_problem(s), "");
  EXPECT_NE(s.find("<title>" + title + "</title>"), std::string::npos);
  EXPECT_EQ(count(s, "http"), 1) << "only the xmlns declaration";
  EXPECT_EQ(s.find("<script"), std::string::npos);
  EXPECT_EQ(s.find("href"), std::string::npos);
  EXPECT_EQ(s.find("nan"), std::string::npos);
}

TEST(Svg, EscapesMarkup) {
  EXPECT_EQ(escape("a<b & \"c\" 'd'>"), "a&lt;b &amp; &quot;c&quot; &#39;d&#39;&gt;");
  const std::string s = line_chart({{"<x>", {0, 1}, {1, 2}, "", false}}, {"T & <U>", "x (s)", "y (ms)"});
  EXPECT_EQ(tag_problem(s), "");
  EXPECT_NE(s.find("T &amp; &lt;U&gt;"), std::string::npos);
  EXPECT_NE(s.find("&lt;x&gt;"), std::string::npos);
}

TEST(Svg, NiceTicksCoverTheRange) {
  auto t = nice_ticks(0, 1, 5);
  ASSERT_EQ(t.size(), 6u);
  EXPECT_DOUBLE_EQ(t[1], 0.2);
  EXPECT_DOUBLE_EQ(t.back(), 1.0);
  t = nice_ticks(-3.7, 12.2, 5);
  EXPECT_LE(t.front(), -3.7);
  EXPECT_GE(t.back(), 12.2);
  const double step = t[1] - t[0];
  EXPECT_TRUE(std::abs(step - 2.5) < 1e-9 || std::abs(step - 5) < 1e-9) << step;
  EXPECT_EQ(format_tick(1500), "1500");
  EXPECT_EQ(format_tick(25000), "25k");
  EXPECT_EQ(format_tick(0.25), "0.25");
}

TEST(Svg, LineChartHasSeriesLegendAndAxes) {
  Series a{"fp32", {1, 2, 3}, {0.5, 0.4, 0.3}, "", false}, b{"QAT", {1, 2, 3}, {0.6, NAN, 0.2}, "", true};
  const std::string s = line_chart({a, b}, {"Losses", "epoch", "loss (per image)"});
  check_chart(s, "Losses");
  EXPECT_EQ(count(s, "class=\"legend\""), 2);
  EXPECT_EQ(count(s, "class=\"series\""), 2);
  EXPECT_NE(s.find(">epoch</text>"), std::string::npos);
  EXPECT_NE(s.find(">loss (per image)</text>"), std::string::npos);
  // Two paths start with M; the NaN breaks the second into two pieces.
  EXPECT_GE(count(s, "M"), 3);
}

TEST(Svg, BarChartIsSortedAndLabelled) {
  const std::string s = bar_chart({{"b", 2, ""}, {"a", 5, ""}, {"c", -1, ""}}, {"SQNR", "SQNR (dB)", "layer"},
                                  false, "SQNR (dB)", 3, "target");
  check_chart(s, "SQNR");
  EXPECT_EQ(count(s, "class=\"bar\""), 3);
  EXPECT_LT(s.find(">a</text>"), s.find(">b</text>"));
  EXPECT_LT(s.find(">b</text>"), s.find(">c</text>"));
  EXPECT_NE(s.find(">target</text>"), std::string::npos);
  const std::string asc = bar_chart({{"b", 2, ""}, {"a", 5, ""}}, {"S", "x", "y"}, true);
  EXPECT_LT(asc.find(">b</text>"), asc.find(">a</text>"));
}

TEST(Svg, HistogramDrawsBinsAndMarkers) {
  const std::string s = histogram({0, 1, 2, 3}, {5, 0, 2}, {{-0.5, "clip", ""}, {2.5, "", ""}},
                                  {"Weights", "weight value", "count"}, true);
  check_chart(s, "Weights");
  EXPECT_EQ(count(s, "class=\"marker\""), 2);
  EXPECT_EQ(count(s, "class=\"legend\""), 2);  // count + the labelled marker
  EXPECT_EQ(count(s, "<rect") - 1, 2);         // two non-empty bins besides the background
}

TEST(Svg, GroupedBarsAndHeatmap) {
  const std::string g = grouped_bar_chart({"x", "y"}, {{"fp32", {1, 2}, ""}, {"int8", {0.5, NAN}, ""}},
                                          {"AP", "class", "AP (0..1)"});
  check_chart(g, "AP");
  EXPECT_EQ(count(g, "<rect") - 1, 3);
  const std::string h = heatmap({"a", "b"}, {"a", "b"}, {3, 0, 1, 7}, {"CM", "true", "predicted"});
  check_chart(h, "CM");
  EXPECT_NE(h.find(">7</text>"), std::string::npos);
}

}  // namespace
}  // namespace yq::eval::svg
