#include "core/csv_log.h"

#include <fmt/format.h>

#include <charconv>
#include <cmath>
#include <fstream>
#include <set>
#include <string_view>

#include "core/error.h"
#include "core/fs.h"
#include "core/log.h"

namespace yq {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

std::vector<std::string> split_fields(std::string_view line) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    size_t comma = line.find(',', start);
    out.emplace_back(trim(line.substr(start, comma == std::string_view::npos ? line.npos : comma - start)));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return out;
}

bool parse_number(const std::string& s, double& v) {
  if (s.empty()) return false;
  const char* end = s.data() + s.size();
  auto [p, ec] = std::from_chars(s.data(), end, v);
  return ec == std::errc() && p == end;
}

// A file split into lines, remembering whether the last one ended with a newline.
struct Lines {
  std::vector<std::string> lines;
  bool last_complete = true;
};

Lines read_lines(const fs::path& file) {
  std::string text = read_text(file);
  Lines r;
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    if (nl == std::string::npos) {
      r.lines.push_back(text.substr(start));
      r.last_complete = false;
      break;
    }
    r.lines.push_back(text.substr(start, nl - start));
    start = nl + 1;
  }
  return r;
}

std::string join_lines(const std::vector<std::string>& lines) {
  std::string s;
  for (const auto& l : lines) s += l + "\n";
  return s;
}

std::string header_line(const std::vector<std::string>& columns) {
  return fmt::format("{}", fmt::join(columns, ","));
}

// The values of a data line, or an error message when it is not `n` numbers.
std::string parse_row(const std::string& line, size_t n, std::vector<double>& row) {
  auto fields = split_fields(line);
  if (fields.size() != n) return fmt::format("{} values for {} columns", fields.size(), n);
  row.resize(n);
  for (size_t i = 0; i < n; ++i)
    if (!parse_number(fields[i], row[i])) return fmt::format("'{}' is not a number", fields[i]);
  return "";
}

bool blank(const std::string& line) {
  return trim(line).empty();
}

}  // namespace

std::string format_csv_value(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  if (v == 0) return "0";  // also -0
  if (v == std::floor(v) && std::fabs(v) < 1e15) return fmt::format("{:.0f}", v);
  return fmt::format("{:.5g}", v);
}

CsvTable read_csv_log(const fs::path& file) {
  return with_context("while reading " + file.string(), [&] {
    Lines ls = read_lines(file);
    CsvTable t;
    size_t i = 0;
    while (i < ls.lines.size() && blank(ls.lines[i])) ++i;
    YQ_CHECK(i < ls.lines.size(), "the file has no header line");
    t.columns = split_fields(ls.lines[i]);
    for (++i; i < ls.lines.size(); ++i) {
      if (blank(ls.lines[i])) continue;
      std::vector<double> row;
      std::string err = parse_row(ls.lines[i], t.columns.size(), row);
      YQ_CHECK(err.empty(), "line {}: {}", i + 1, err);
      t.rows.push_back(std::move(row));
    }
    return t;
  });
}

CsvLog::CsvLog(const fs::path& file, std::vector<std::string> columns)
    : file_(file), columns_(std::move(columns)) {
  YQ_CHECK(!columns_.empty(), "{}: a CSV log needs at least one column", file_.string());
  std::set<std::string> seen;
  for (const auto& c : columns_) {
    YQ_CHECK(!c.empty() && c.find_first_of(",\"\r\n") == std::string::npos && trim(c) == c,
             "{}: column name '{}' is empty or holds a comma, quote, newline or surrounding space",
             file_.string(), c);
    YQ_CHECK(seen.insert(c).second, "{}: column '{}' appears twice", file_.string(), c);
  }

  std::error_code ec;
  if (!fs::exists(file_) || fs::file_size(file_, ec) == 0) {
    atomic_write(file_, header_line(columns_) + "\n");
    return;
  }
  Lines ls = read_lines(file_);
  size_t h = 0;
  while (h < ls.lines.size() && blank(ls.lines[h])) ++h;
  if (h == ls.lines.size()) {  // only blank lines: start over
    atomic_write(file_, header_line(columns_) + "\n");
    return;
  }
  std::vector<std::string> found = split_fields(ls.lines[h]);
  if (found != columns_) {
    size_t k = 0;
    while (k < found.size() && k < columns_.size() && found[k] == columns_[k]) ++k;
    std::string diff =
        k < found.size() && k < columns_.size()
            ? fmt::format("column {} is '{}' in the file but '{}' is expected", k + 1, found[k], columns_[k])
            : fmt::format("the file has {} columns but {} are expected", found.size(), columns_.size());
    throw Error(
        fmt::format("{} was written with other columns than this run writes: {} (file: {}; expected: {}). "
                    "Use another run name or move the file away.",
                    file_.string(), diff, fmt::join(found, ","), header_line(columns_)));
  }
  if (!ls.last_complete && ls.lines.size() > h + 1) {
    // Each row is written with one write call ending in '\n'; a last line without one is either a
    // row another tool wrote without the final newline (kept) or a write cut short (dropped).
    std::vector<double> row;
    if (!parse_row(ls.lines.back(), columns_.size(), row).empty()) {
      log::warn("{}: dropping an incomplete last line '{}'", file_.string(), ls.lines.back());
      ls.lines.pop_back();
    }
  }
  if (!ls.last_complete) atomic_write(file_, join_lines(ls.lines));
}

void CsvLog::append(const std::vector<double>& row) {
  YQ_CHECK(row.size() == columns_.size(), "{}: a row of {} values for {} columns", file_.string(), row.size(),
           columns_.size());
  std::string line;
  if (!fs::exists(file_)) line = header_line(columns_) + "\n";  // removed while we ran
  for (size_t i = 0; i < row.size(); ++i) {
    if (i) line += ',';
    line += format_csv_value(row[i]);
  }
  line += '\n';
  std::ofstream f(file_, std::ios::binary | std::ios::app);
  YQ_CHECK(f.is_open(), "cannot open {} for appending", file_.string());
  f.write(line.data(), static_cast<std::streamsize>(line.size()));
  f.flush();
  YQ_CHECK(f.good(), "appending to {} failed (disk full?)", file_.string());
}

size_t CsvLog::truncate_from(double first_col_value) {
  return with_context("while dropping rows from " + file_.string(), [&]() -> size_t {
    Lines ls = read_lines(file_);
    std::vector<std::string> keep;
    size_t dropped = 0;
    bool header_seen = false;
    for (size_t i = 0; i < ls.lines.size(); ++i) {
      const std::string& line = ls.lines[i];
      if (blank(line)) continue;
      if (!header_seen) {
        header_seen = true;
        keep.push_back(line);
        continue;
      }
      double first = 0;
      std::string field = split_fields(line).front();
      YQ_CHECK(parse_number(field, first), "line {}: '{}' is not a number", i + 1, field);
      if (first >= first_col_value) {
        ++dropped;
      } else {
        keep.push_back(line);
      }
    }
    if (dropped > 0) atomic_write(file_, join_lines(keep));
    return dropped;
  });
}

}  // namespace yq
