#include "core/progress.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <sstream>
#include <string>
#include <vector>

namespace yq {
namespace {

// A bar writing to a string stream, with a clock the test moves by hand.
struct Harness {
  std::ostringstream out;
  double t = 1000.0;  // any origin: only differences count
  ProgressOptions options(int width = 80) {
    ProgressOptions o;
    o.out = &out;
    o.clock = [this] { return t; };
    o.width = width;
    return o;
  }
};

// The non-empty parts of `s` between `sep`s.
std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> parts;
  std::string cur;
  for (char c : s) {
    if (c == sep) {
      if (!cur.empty()) parts.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) parts.push_back(cur);
  return parts;
}

// The percentage of a line "title  NN% ...".
int percent_of(const std::string& line, const std::string& title) {
  return std::stoi(line.substr(title.size(), line.find('%') - title.size()));
}

size_t count(const std::string& s, char c) {
  return static_cast<size_t>(std::count(s.begin(), s.end(), c));
}

TEST(ProgressFormat, Duration) {
  EXPECT_EQ(format_duration(0), "00:00");
  EXPECT_EQ(format_duration(7.9), "00:07");  // rounded down
  EXPECT_EQ(format_duration(62), "01:02");
  EXPECT_EQ(format_duration(3599.99), "59:59");
  EXPECT_EQ(format_duration(3723), "1:02:03");
  EXPECT_EQ(format_duration(100 * 3600 + 5), "100:00:05");
  EXPECT_EQ(format_duration(-1), "?");
  EXPECT_EQ(format_duration(std::nan("")), "?");
  EXPECT_EQ(format_duration(INFINITY), "?");
}

TEST(ProgressFormat, Rate) {
  EXPECT_EQ(format_rate(3.614, "it"), "3.61it/s");
  EXPECT_EQ(format_rate(1.0, "it"), "1.00it/s");
  EXPECT_EQ(format_rate(9.996, "it"), "10.0it/s");
  EXPECT_EQ(format_rate(12.34, "img"), "12.3img/s");
  EXPECT_EQ(format_rate(99.96, "it"), "100it/s");
  EXPECT_EQ(format_rate(12345.6, "it"), "12346it/s");
  EXPECT_EQ(format_rate(0.4, "it"), "2.50s/it");
  EXPECT_EQ(format_rate(0, "it"), "?it/s");
  EXPECT_EQ(format_rate(-3, "it"), "?it/s");
  EXPECT_EQ(format_rate(std::nan(""), "it"), "?it/s");
}

TEST(ProgressFormat, Eta) {
  EXPECT_DOUBLE_EQ(progress_eta(25, 100, 10.0), 30.0);  // 2.5 it/s, 75 left
  EXPECT_DOUBLE_EQ(progress_eta(1, 3, 2.0), 4.0);
  EXPECT_DOUBLE_EQ(progress_eta(100, 100, 50.0), 0.0);
  EXPECT_DOUBLE_EQ(progress_eta(120, 100, 50.0), 0.0);
  EXPECT_TRUE(std::isnan(progress_eta(0, 100, 5.0)));  // no rate yet
  EXPECT_TRUE(std::isnan(progress_eta(5, 0, 5.0)));    // unknown total
}

TEST(ProgressBar, PlainLineFormat) {
  Harness h;
  ProgressBar bar("Epoch 1/3", 10, false, h.options());
  h.t += 1;
  bar.update(2, "box 1.23 cls 0.45");
  EXPECT_EQ(h.out.str(), "Epoch 1/3  20% 2/10 [00:01<00:04, 2.00it/s] box 1.23 cls 0.45\n");
  h.t += 9;
  bar.update(3, "box 1.20");  // 3 in 10 s: slower than one a second
  EXPECT_EQ(split(h.out.str(), '\n').at(1), "Epoch 1/3  30% 3/10 [00:10<00:23, 3.33s/it] box 1.20");
}

TEST(ProgressBar, NotATerminalPrintsTenLinesPerRun) {
  for (int64_t total : {10, 100, 1000, 37}) {
    Harness h;
    ProgressBar bar("train", total, false, h.options());
    for (int64_t i = 1; i <= total; ++i) {
      h.t += 0.5;
      bar.update(i, "loss 1.0");
    }
    bar.finish("loss 0.9");
    std::string s = h.out.str();
    EXPECT_EQ(count(s, '\r'), 0u) << total;
    auto lines = split(s, '\n');
    ASSERT_EQ(lines.size(), 10u) << total << "\n" << s;  // 9 at 10%..90%, 1 from finish
    for (int k = 0; k < 9; ++k) {  // the line of the k-th tenth comes as soon as it is reached
      int pct = percent_of(lines[k], "train");
      EXPECT_GE(pct, 10 * (k + 1)) << lines[k];
      EXPECT_LT(pct, 10 * (k + 1) + std::max<int>(1, static_cast<int>(100 / total) + 1)) << lines[k];
    }
    EXPECT_NE(lines[9].find("100% " + std::to_string(total) + "/" + std::to_string(total)), std::string::npos)
        << lines[9];
    EXPECT_NE(lines[9].find("loss 0.9"), std::string::npos) << lines[9];
  }
}

TEST(ProgressBar, NotATerminalFewStepsAndFinishOnce) {
  Harness h;
  ProgressBar bar("val", 3, false, h.options());
  bar.update(1, "");
  bar.update(1, "");  // same step again: no new line
  bar.update(2, "");
  bar.update(3, "");  // the end is finish()'s line
  bar.finish("");
  bar.finish("");  // a second finish does nothing
  bar.update(3, "");
  EXPECT_EQ(split(h.out.str(), '\n').size(), 3u) << h.out.str();
}

TEST(ProgressBar, TerminalRedrawsOneLineInPlace) {
  Harness h;
  {
    ProgressBar bar("Epoch 1/3", 5, true, h.options());
    for (int i = 1; i <= 5; ++i) {
      h.t += 1;
      bar.update(i, "box 1.23");
    }
    h.t += 1;
    bar.finish("box 1.20");
  }
  std::string s = h.out.str();
  EXPECT_EQ(count(s, '\n'), 1u);
  EXPECT_EQ(s.back(), '\n');
  EXPECT_EQ(s[0], '\r');
  auto frames = split(s.substr(0, s.size() - 1), '\r');
  ASSERT_EQ(frames.size(), 6u) << s;  // 5 updates (1 s apart) and the final draw
  EXPECT_EQ(frames[1], "Epoch 1/3  40%|########            | 2/5 [00:02<00:03, 1.00it/s] box 1.23\x1b[K");
  EXPECT_EQ(frames[5], "Epoch 1/3 100%|####################| 5/5 [00:06<00:00, 1.20s/it] box 1.20\x1b[K");
}

TEST(ProgressBar, TerminalRedrawsAtMostTenTimesASecond) {
  Harness h;
  ProgressBar bar("fast", 1000, true, h.options());
  for (int i = 1; i <= 999; ++i) {
    h.t += 0.001;  // 999 updates in just under a second
    bar.update(i, "");
  }
  size_t draws = count(h.out.str(), '\r');
  EXPECT_GE(draws, 9u);
  EXPECT_LE(draws, 11u);
  h.t += 0.001;
  bar.update(1000, "");  // the last step is drawn at once
  EXPECT_EQ(count(h.out.str(), '\r'), draws + 1);
  EXPECT_NE(h.out.str().rfind("1000/1000"), std::string::npos);
}

TEST(ProgressBar, TerminalLineIsCutToTheWidth) {
  Harness h;
  ProgressBar bar("Epoch 12/300", 100, true, h.options(50));
  h.t += 3;
  bar.update(40, "box 1.2345 cls 0.4567 dfl 1.0123 instances 123 size 640");
  bar.finish("box 1.2345 cls 0.4567 dfl 1.0123 instances 123 size 640");
  for (const auto& frame : split(h.out.str(), '\r')) {
    std::string text = frame.substr(0, frame.find("\x1b[K"));
    EXPECT_LE(text.size(), 49u) << text;
    EXPECT_EQ(text.rfind("Epoch 12/300", 0), 0u) << text;
  }
}

TEST(ProgressBar, UnknownTotalShowsCountAndRateOnly) {
  Harness h;
  ProgressBar bar("scan", 0, false, h.options());
  h.t += 2;
  bar.update(10, "");  // nothing before the end without a total
  EXPECT_EQ(h.out.str(), "");
  bar.finish("done");
  EXPECT_EQ(h.out.str(), "scan 10 [00:02, 5.00it/s] done\n");
}

TEST(ProgressBar, UnfinishedTerminalLineIsEndedOnDestruction) {
  Harness h;
  {
    ProgressBar bar("Epoch 1/3", 10, true, h.options());
    bar.update(3, "");
  }  // e.g. an exception left the epoch early
  EXPECT_EQ(h.out.str().back(), '\n');
  EXPECT_EQ(count(h.out.str(), '\n'), 1u);
}

}  // namespace
}  // namespace yq
