#include "core/csv_log.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/fs.h"
#include "test_util.h"

namespace yq {
namespace {

using yq::testing::TempDir;

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

const std::vector<std::string> kColumns = {"epoch", "train/box_loss", "metrics/mAP50-95(B)", "lr/pg0"};

TEST(CsvLog, FormatValues) {
  EXPECT_EQ(format_csv_value(12), "12");
  EXPECT_EQ(format_csv_value(0.0), "0");
  EXPECT_EQ(format_csv_value(-0.0), "0");
  EXPECT_EQ(format_csv_value(-2.5), "-2.5");
  EXPECT_EQ(format_csv_value(1.23456), "1.2346");
  EXPECT_EQ(format_csv_value(0.0033), "0.0033");
  EXPECT_EQ(format_csv_value(3.3e-05), "3.3e-05");
  EXPECT_EQ(format_csv_value(123456.7), "1.2346e+05");
  EXPECT_EQ(format_csv_value(1234567), "1234567");  // whole numbers (epochs) in full
  EXPECT_EQ(format_csv_value(std::nan("")), "nan");
  EXPECT_EQ(format_csv_value(INFINITY), "inf");
  EXPECT_EQ(format_csv_value(-INFINITY), "-inf");
}

TEST(CsvLog, NewFileGetsHeaderThenRows) {
  TempDir tmp("new");
  fs::path file = tmp.path() / "logs" / "fp32" / "exp" / "results.csv";
  CsvLog log(file, kColumns);
  EXPECT_EQ(read_text(file), "epoch,train/box_loss,metrics/mAP50-95(B),lr/pg0\n");
  log.append({1, 1.23456, 0.0, 0.0033});
  log.append({2, 1.1, 0.125, 3.3e-05});
  EXPECT_EQ(read_text(file),
            "epoch,train/box_loss,metrics/mAP50-95(B),lr/pg0\n"
            "1,1.2346,0,0.0033\n"
            "2,1.1,0.125,3.3e-05\n");
  CsvTable t = read_csv_log(file);
  EXPECT_EQ(t.columns, kColumns);
  ASSERT_EQ(t.rows.size(), 2u);
  EXPECT_EQ(t.rows[1], (std::vector<double>{2, 1.1, 0.125, 3.3e-05}));
}

TEST(CsvLog, ReopeningWithSameHeaderAppends) {
  TempDir tmp("reopen");
  fs::path file = tmp.path() / "results.csv";
  CsvLog(file, kColumns).append({1, 1, 1, 1});
  CsvLog again(file, kColumns);
  again.append({2, 2, 2, 2});
  CsvTable t = read_csv_log(file);
  ASSERT_EQ(t.rows.size(), 2u);
  EXPECT_EQ(t.rows[0][0], 1);
  EXPECT_EQ(t.rows[1][0], 2);
}

TEST(CsvLog, ResumeDropsRowsFromTheResumeEpoch) {
  TempDir tmp("resume");
  fs::path file = tmp.path() / "results.csv";
  {
    CsvLog log(file, kColumns);
    for (int e = 1; e <= 5; ++e) log.append({double(e), 2.0 - 0.1 * e, 0.1 * e, 0.01});
  }
  // The last checkpoint was written after epoch 2: the run continues with epoch 3.
  CsvLog log(file, kColumns);
  EXPECT_EQ(log.truncate_from(3), 3u);
  EXPECT_EQ(log.truncate_from(3), 0u);  // nothing left to drop
  log.append({3, 1.5, 0.35, 0.01});
  log.append({4, 1.4, 0.45, 0.01});
  CsvTable t = read_csv_log(file);
  ASSERT_EQ(t.rows.size(), 4u);
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ(t.rows[i][0], double(i + 1));
  EXPECT_DOUBLE_EQ(t.rows[1][2], 0.2);   // epoch 2 kept as it was
  EXPECT_DOUBLE_EQ(t.rows[2][2], 0.35);  // epoch 3 is the resumed run's
  EXPECT_EQ(log.truncate_from(1), 4u);
  EXPECT_EQ(read_text(file), "epoch,train/box_loss,metrics/mAP50-95(B),lr/pg0\n");
}

TEST(CsvLog, HeaderMismatchIsAClearError) {
  TempDir tmp("mismatch");
  fs::path file = tmp.path() / "results.csv";
  CsvLog(file, kColumns).append({1, 1, 1, 1});
  std::string before = read_text(file);

  auto other = kColumns;
  other[2] = "metrics/mAP50(B)";
  std::string msg = error_of([&] { CsvLog log(file, other); });
  EXPECT_NE(msg.find(file.string()), std::string::npos) << msg;
  EXPECT_NE(msg.find("column 3 is 'metrics/mAP50-95(B)' in the file but 'metrics/mAP50(B)' is expected"),
            std::string::npos)
      << msg;

  auto longer = kColumns;
  longer.push_back("lr/pg1");
  msg = error_of([&] { CsvLog log(file, longer); });
  EXPECT_NE(msg.find("the file has 4 columns but 5 are expected"), std::string::npos) << msg;
  EXPECT_EQ(read_text(file), before);  // left untouched
}

TEST(CsvLog, AcceptsYoloV8SpacePaddedFiles) {
  TempDir tmp("padded");
  fs::path file = tmp.path() / "results.csv";
  atomic_write(file,
               "                  epoch,         train/box_loss,    metrics/mAP50-95(B),                 "
               "lr/pg0\n"
               "                      1,                 1.5432,                0.12345,              "
               "0.070007\n"
               "                      2,                 1.4321,                0.23456,              "
               "0.040173\n");
  CsvLog log(file, kColumns);
  EXPECT_EQ(log.truncate_from(2), 1u);
  log.append({2, 1.4, 0.25, 0.04});
  CsvTable t = read_csv_log(file);
  EXPECT_EQ(t.columns, kColumns);
  ASSERT_EQ(t.rows.size(), 2u);
  EXPECT_DOUBLE_EQ(t.rows[0][1], 1.5432);
  EXPECT_DOUBLE_EQ(t.rows[1][3], 0.04);
}

TEST(CsvLog, IncompleteLastLineIsDroppedACompleteOneKept) {
  TempDir tmp("torn");
  fs::path file = tmp.path() / "results.csv";
  atomic_write(file, "epoch,loss\n1,0.5\n2,");  // a write cut short
  CsvLog(file, {"epoch", "loss"}).append({2, 0.4});
  EXPECT_EQ(read_text(file), "epoch,loss\n1,0.5\n2,0.4\n");

  atomic_write(file, "epoch,loss\n1,0.5\n2,0.25");  // complete, only the newline is missing
  CsvLog(file, {"epoch", "loss"}).append({3, 0.125});
  EXPECT_EQ(read_text(file), "epoch,loss\n1,0.5\n2,0.25\n3,0.125\n");

  atomic_write(file, "epoch,loss");  // header only, no newline
  CsvLog(file, {"epoch", "loss"}).append({1, 1});
  EXPECT_EQ(read_text(file), "epoch,loss\n1,1\n");
}

TEST(CsvLog, MisuseIsReported) {
  TempDir tmp("misuse");
  fs::path file = tmp.path() / "results.csv";
  CsvLog log(file, kColumns);
  EXPECT_NE(error_of([&] { log.append({1, 2}); }).find("a row of 2 values for 4 columns"), std::string::npos);
  EXPECT_NE(error_of([&] {
              CsvLog l(tmp.path() / "a.csv", {"epoch", "a,b"});
            }).find("'a,b'"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              CsvLog l(tmp.path() / "b.csv", {"epoch", "epoch"});
            }).find("appears twice"),
            std::string::npos);
  EXPECT_NE(error_of([&] { CsvLog l(tmp.path() / "c.csv", {}); }).find("at least one column"),
            std::string::npos);
}

TEST(CsvLog, ReadErrorsNameTheLine) {
  TempDir tmp("read");
  fs::path file = tmp.path() / "results.csv";
  atomic_write(file, "epoch,loss\n1,0.5\n2,abc\n");
  std::string msg = error_of([&] { read_csv_log(file); });
  EXPECT_NE(msg.find(file.string()), std::string::npos) << msg;
  EXPECT_NE(msg.find("line 3: 'abc' is not a number"), std::string::npos) << msg;
  atomic_write(file, "epoch,loss\n1,0.5,7\n");
  EXPECT_NE(error_of([&] { read_csv_log(file); }).find("line 2: 3 values for 2 columns"), std::string::npos);
  atomic_write(file, "epoch,loss\n1,0.5\nx,1\n");
  EXPECT_NE(error_of([&] {
              CsvLog(file, {"epoch", "loss"}).truncate_from(1);
            }).find("line 3"),
            std::string::npos);
}

}  // namespace
}  // namespace yq
