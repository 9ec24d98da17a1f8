// report: base64, the summary figures, every section from fixture files, "not run" notes for missing
// inputs, and a page with no script and no URL.
#include <gtest/gtest.h>

#include "eval/report.h"
#include "report_fixture.h"

namespace yq::eval {
namespace {

int count(const std::string& s, const std::string& what) {
  int n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
  return n;
}

TEST(Report, Base64) {
  EXPECT_EQ(base64(""), "");
  EXPECT_EQ(base64("f"), "Zg==");
  EXPECT_EQ(base64("fo"), "Zm8=");
  EXPECT_EQ(base64("foo"), "Zm9v");
  EXPECT_EQ(base64(std::string("\xff\x00\x10", 3)), "/wAQ");
}

TEST(Report, SummaryFigures) {
  yq::testing::TempDir d("report_sum");
  auto in = yq::testing::write_report_fixtures(d.path());
  ReportSummary s = summarize_inputs(in);
  EXPECT_DOUBLE_EQ(s.fp32_map5095, 0.41);
  EXPECT_DOUBLE_EQ(s.int8_map5095, 0.38);
  EXPECT_DOUBLE_EQ(s.speedup, 40.0 / 16.0);
  EXPECT_DOUBLE_EQ(s.size_ratio, 12 / 3.2);
  in.compare_json.clear();  // falls back to benchmark.json (yoloqat runtime, batch 1)
  s = summarize_inputs(in);
  EXPECT_DOUBLE_EQ(s.speedup, 40.0 / 16.0);
}

TEST(Report, AllSectionsFromFixtures) {
  yq::testing::TempDir d("report_all");
  const std::string html = build_report(yq::testing::write_report_fixtures(d.path()));
  for (const char* id : {"id=\"data\"", "id=\"model\"", "id=\"training\"", "id=\"quant\"", "id=\"errors\"",
                         "id=\"performance\""})
    EXPECT_EQ(count(html, id), 1) << id;
  EXPECT_EQ(count(html, "not run"), 0);
  EXPECT_NE(html.find("fixture &lt;run&gt; &amp; report"), std::string::npos);
  EXPECT_NE(html.find("2.50x"), std::string::npos);  // speed-up card
  EXPECT_NE(html.find("data:image/png;base64,"), std::string::npos);
  EXPECT_GE(count(html, "<svg"), 10);
  EXPECT_EQ(count(html, "<svg"), count(html, "</svg>"));
  EXPECT_EQ(html.find("http"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("nan"), std::string::npos);
  // Worst layer first in the quantization table, largest per-class drop first.
  EXPECT_LT(html.find("<td>model.22.cv3.0.2</td>"), html.find("<td>model.0</td>"));
  const size_t errors = html.find("id=\"errors\"");
  EXPECT_LT(html.find("<td>speed_limit</td>", errors), html.find("<td>stop</td>", errors));
  // mAP50-95 by object size: small 0.200 -> 0.150 (a drop of 0.050, marked bad), large without labels.
  const size_t sizes = html.find("mAP50-95 by object size", errors);
  ASSERT_NE(sizes, std::string::npos);
  EXPECT_NE(html.find("<td>small (&lt; 32&sup2;)</td><td>3</td><td>0.200</td><td>0.150</td><td><span "
                      "class=\"bad\">0.050</span></td>",
                      sizes),
            std::string::npos);
  EXPECT_NE(
      html.find("<td>large (&gt; 96&sup2;)</td><td>0</td><td>&ndash;</td><td>&ndash;</td><td>&ndash;</td>",
                sizes),
      std::string::npos);
  // Sensitivity sorted by rank.
  const size_t sens = html.find("Most sensitive layers first");
  EXPECT_LT(html.find("model.22.cv3.0.2", sens), html.find("model.0<", sens));
}

TEST(Report, MissingInputsSayHowToProduceThem) {
  ReportInputs in;
  const std::string html = build_report(in);
  EXPECT_GE(count(html, "not run"), 8);
  EXPECT_NE(html.find("yoloqat analyze"), std::string::npos);
  EXPECT_NE(html.find("yoloqat benchmark"), std::string::npos);
  EXPECT_EQ(html.find("http"), std::string::npos);
}

TEST(Report, MalformedInputNamesTheFile) {
  yq::testing::TempDir d("report_bad");
  auto in = yq::testing::write_report_fixtures(d.path());
  yq::testing::write_file(d / "analyze.json", "{not json");
  try {
    build_report(in);
    FAIL() << "no error";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("analyze.json"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace yq::eval
