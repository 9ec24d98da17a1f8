// Progress of a loop with a known number of steps (the batches of an epoch).
//
// On a terminal the bar redraws one line of stderr in place:
//   Epoch 3/100  45%|#########           | 45/100 [00:12<00:15, 3.61it/s] box 1.23 cls 0.45
// Elsewhere (CI logs, files) it prints the same text without the bar as plain lines, at most one per
// 10% of the total and one at the end, so logs stay readable (STYLE.md #5).
#pragma once

#include <cstdint>
#include <functional>
#include <ostream>
#include <string>

#include "core/log.h"

namespace yq {

struct ProgressOptions {
  std::ostream* out = nullptr;     // where the bar goes; nullptr: std::cerr
  std::function<double()> clock;   // seconds from any fixed origin; empty: a steady clock
  std::string unit = "it";         // rate unit, "it" -> "3.61it/s"
  int width = 0;                   // terminal: line width in columns; 0: ask the terminal (80)
  double redraw_interval_s = 0.1;  // terminal: least time between two redraws
  int plain_lines = 10;            // not a terminal: at most this many lines before the last
};

class ProgressBar {
 public:
  // `total`: number of steps (0 when unknown: no percentage, bar or ETA). `tty`: redraw in place.
  ProgressBar(std::string title, int64_t total, bool tty = log::stderr_is_tty());
  ProgressBar(std::string title, int64_t total, bool tty, ProgressOptions opts);
  ~ProgressBar();  // ends a line left half-drawn (finish not called); never throws

  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  // `done` steps are complete; `postfix` goes after the numbers ("box 1.23 cls 0.45 dfl 1.01").
  void update(int64_t done, const std::string& postfix);
  // Draws the final state (the last `done`) and ends the line. Later calls do nothing.
  void finish(const std::string& postfix);

  // The current line: title, percentage, bar (when `with_bar`), counts, times, rate, postfix.
  std::string render(bool with_bar) const;

 private:
  double now() const;
  void draw_tty();
  void print_plain();

  std::string title_;
  int64_t total_;
  bool tty_;
  ProgressOptions opts_;
  std::ostream* out_;
  int width_ = 80;
  double start_ = 0;
  int64_t done_ = 0;
  std::string postfix_;
  double last_draw_ = 0;
  bool drawn_ = false;      // terminal: a line is on screen and not ended yet
  int64_t plain_step_ = 0;  // not a terminal: the last 1/plain_lines step printed
  bool finished_ = false;
};

// "00:07", "01:02" (minutes:seconds), "1:02:03" from an hour on; "?" when negative or not finite.
// Seconds are rounded down.
std::string format_duration(double seconds);

// "3.61it/s", "12.3it/s", "123it/s"; below one per second "2.50s/it"; "?it/s" when unknown (<= 0).
std::string format_rate(double per_second, const std::string& unit);

// Seconds left at the average rate so far: (total - done) * elapsed / done; 0 when done >= total;
// NaN when unknown (nothing done yet, or total <= 0).
double progress_eta(int64_t done, int64_t total, double elapsed_s);

}  // namespace yq
