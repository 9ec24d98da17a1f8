// results.csv: one row of numbers per epoch, in YOLOv8's layout
//   epoch,train/box_loss,train/cls_loss,train/dfl_loss,metrics/precision(B),metrics/recall(B),
//   metrics/mAP50(B),metrics/mAP50-95(B),val/box_loss,val/cls_loss,val/dfl_loss,lr/pg0,lr/pg1,lr/pg2
// so the tools that plot YOLOv8 runs read ours. The header is written once; a resumed run appends to
// the file of the interrupted one after dropping the rows it will write again (truncate_from).
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

namespace yq {

namespace fs = std::filesystem;

class CsvLog {
 public:
  // A missing or empty `file` (parent folders are created) gets the header line. An existing one
  // must have the same columns (compared without surrounding spaces, so YOLOv8's space-padded files
  // also match), else yq::Error names the file and the first column that differs. A last line cut
  // short by a crash (no newline, wrong number of values) is dropped.
  CsvLog(const fs::path& file, std::vector<std::string> columns);

  // Appends one row, one value per column. The file is opened, written and closed for each row, so
  // it is complete after every call. Throws yq::Error on a wrong row size or a failed write.
  void append(const std::vector<double>& row);

  // Drops the rows whose first column is >= `first_col_value` (on resume from epoch E: the rows of
  // epochs E and later, which will be written again). Returns how many rows were dropped.
  size_t truncate_from(double first_col_value);

  const fs::path& file() const { return file_; }
  const std::vector<std::string>& columns() const { return columns_; }

 private:
  fs::path file_;
  std::vector<std::string> columns_;
};

struct CsvTable {
  std::vector<std::string> columns;
  std::vector<std::vector<double>> rows;  // [rows][columns]
};

// Reads a file written by CsvLog or by YOLOv8 (spaces around values are allowed). Throws yq::Error
// naming file:line for a row with the wrong number of values or a value that is not a number.
CsvTable read_csv_log(const fs::path& file);

// One value as CsvLog writes it: whole numbers without a decimal point ("12"), the others with 5
// significant digits as YOLOv8 does ("1.2346", "0.0033", "3.3e-05"), and "nan", "inf", "-inf".
std::string format_csv_value(double v);

}  // namespace yq
