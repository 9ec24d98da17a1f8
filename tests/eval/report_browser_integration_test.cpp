// The report in a real browser: headless Chromium renders a report built from fixture files; the test
// fails on any console message (Chromium logs them to stderr as "INFO:CONSOLE" lines with
// --enable-logging=stderr), on a resource that fails to load, and on a blank screenshot. A control page
// with a script error checks that the console capture works with this Chromium. Skips when chromium is
// not installed (scripts/setup --test installs it).
#include <gtest/gtest.h>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include <cstdio>
#include <cstdlib>

#include "eval/report.h"
#include "report_fixture.h"

namespace yq::eval {
namespace {

std::string find_chromium() {
  for (const char* p : {"/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"})
    if (fs::exists(p)) return p;
  return "";
}

struct Render {
  int rc = -1;
  std::string log;  // stderr of chromium
  cv::Mat shot;
};

Render render(const std::string& chromium, const fs::path& html, const fs::path& dir) {
  const fs::path png = dir / (html.stem().string() + ".png"), log = dir / (html.stem().string() + ".log");
  const std::string cmd =
      "timeout 120 " + chromium +
      " --headless --no-sandbox --disable-gpu --no-first-run --disable-extensions"
      " --user-data-dir=" +
      (dir / "profile").string() +
      " --enable-logging=stderr --v=0 --window-size=1280,4000 --screenshot=" + png.string() + " file://" +
      fs::absolute(html).string() + " >/dev/null 2>" + log.string();
  Render r;
  r.rc = std::system(cmd.c_str());
  r.log = fs::exists(log) ? read_text(log) : "";
  if (fs::exists(png)) r.shot = cv::imread(png.string(), cv::IMREAD_COLOR);
  return r;
}

// Console messages and failed loads in chromium's log.
std::vector<std::string> problems(const std::string& log) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start < log.size()) {
    size_t end = log.find('\n', start);
    if (end == std::string::npos) end = log.size();
    const std::string line = log.substr(start, end - start);
    for (const char* k : {":CONSOLE", "Uncaught", "Failed to load", "ERR_FILE_NOT_FOUND", "Refused to"})
      if (line.find(k) != std::string::npos) {
        out.push_back(line);
        break;
      }
    start = end + 1;
  }
  return out;
}

TEST(ReportBrowser, RendersWithoutConsoleErrorsAndIsNotBlank) {
  const std::string chromium = find_chromium();
  if (chromium.empty()) GTEST_SKIP() << "chromium is not installed (scripts/setup --test installs it)";
  yq::testing::TempDir d("report_browser");
  const fs::path page = d / "report.html";
  atomic_write(page, build_report(yq::testing::write_report_fixtures(d.path())));

  // Control: the capture sees a script error on this chromium.
  const fs::path control = d / "control.html";
  atomic_write(control,
               "<!DOCTYPE html><html><body><p>x</p><script>missingFunction();</script></body></html>");
  Render c = render(chromium, control, d.path());
  ASSERT_FALSE(problems(c.log).empty()) << "chromium did not report the control page's error; log:\n"
                                        << c.log;

  Render r = render(chromium, page, d.path());
  ASSERT_EQ(r.rc, 0) << r.log;
  const auto p = problems(r.log);
  EXPECT_TRUE(p.empty()) << p.size() << " console problems, first: " << (p.empty() ? "" : p[0]);
  ASSERT_FALSE(r.shot.empty()) << "no screenshot";
  cv::Mat gray;
  cv::cvtColor(r.shot, gray, cv::COLOR_BGR2GRAY);
  cv::Scalar mean, stddev;
  cv::meanStdDev(gray, mean, stddev);
  EXPECT_GT(stddev[0], 10.0) << "blank screenshot (mean " << mean[0] << ")";
  // Charts and text reach the lower part of the page too (not just a header on white).
  cv::meanStdDev(gray.rowRange(gray.rows / 2, gray.rows), mean, stddev);
  EXPECT_GT(stddev[0], 5.0);
}

}  // namespace
}  // namespace yq::eval
