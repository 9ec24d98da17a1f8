#include "core/progress.h"

#include <fmt/format.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <iostream>
#include <limits>

namespace yq {

namespace {

constexpr int kBarWidth = 20;

double steady_seconds() {
  using namespace std::chrono;
  return duration<double>(steady_clock::now().time_since_epoch()).count();
}

int terminal_width() {
  winsize ws{};
  if (::ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  if (const char* cols = std::getenv("COLUMNS")) {
    int c = std::atoi(cols);
    if (c > 0) return c;
  }
  return 80;
}

// Cuts `s` to at most `n` bytes without splitting a UTF-8 sequence (titles may hold any text).
std::string cut(const std::string& s, size_t n) {
  if (s.size() <= n) return s;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0u) == 0x80u) --n;
  return s.substr(0, n);
}

}  // namespace

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  auto s = static_cast<int64_t>(std::floor(seconds));
  int64_t h = s / 3600, m = (s / 60) % 60, sec = s % 60;
  if (h > 0) return fmt::format("{}:{:02}:{:02}", h, m, sec);
  return fmt::format("{:02}:{:02}", m, sec);
}

std::string format_rate(double per_second, const std::string& unit) {
  if (!std::isfinite(per_second) || per_second <= 0) return "?" + unit + "/s";
  if (per_second < 1) return fmt::format("{:.2f}s/{}", 1 / per_second, unit);
  // The thresholds sit where rounding would add a digit (9.996 -> "10.0", not "10.00").
  if (per_second >= 99.95) return fmt::format("{:.0f}{}/s", per_second, unit);
  if (per_second >= 9.995) return fmt::format("{:.1f}{}/s", per_second, unit);
  return fmt::format("{:.2f}{}/s", per_second, unit);
}

double progress_eta(int64_t done, int64_t total, double elapsed_s) {
  if (total <= 0 || done <= 0 || !std::isfinite(elapsed_s) || elapsed_s < 0)
    return std::numeric_limits<double>::quiet_NaN();
  if (done >= total) return 0;
  return static_cast<double>(total - done) * elapsed_s / static_cast<double>(done);
}

ProgressBar::ProgressBar(std::string title, int64_t total, bool tty)
    : ProgressBar(std::move(title), total, tty, ProgressOptions{}) {}

ProgressBar::ProgressBar(std::string title, int64_t total, bool tty, ProgressOptions opts)
    : title_(std::move(title)), total_(std::max<int64_t>(total, 0)), tty_(tty), opts_(std::move(opts)) {
  out_ = opts_.out ? opts_.out : &std::cerr;
  if (!opts_.clock) opts_.clock = steady_seconds;
  width_ = opts_.width > 0 ? opts_.width : (tty_ ? terminal_width() : 80);
  start_ = now();
}

ProgressBar::~ProgressBar() {
  if (drawn_ && !finished_) {
    *out_ << '\n';
    out_->flush();
  }
}

double ProgressBar::now() const {
  return opts_.clock();
}

void ProgressBar::update(int64_t done, const std::string& postfix) {
  if (finished_) return;
  done_ = done;
  postfix_ = postfix;
  if (tty_) {
    double t = now();
    // Always draw the first and the last step; in between at most once per redraw interval.
    if (!drawn_ || t - last_draw_ >= opts_.redraw_interval_s || (total_ > 0 && done_ >= total_)) {
      last_draw_ = t;
      draw_tty();
    }
    return;
  }
  // Plain lines: one each time `done` enters a new 1/plain_lines part of the total; the line for
  // the end comes from finish().
  if (total_ <= 0 || opts_.plain_lines <= 0 || done_ >= total_) return;
  int64_t step = std::max<int64_t>(done_, 0) * opts_.plain_lines / total_;
  if (step > plain_step_) {
    plain_step_ = step;
    print_plain();
  }
}

void ProgressBar::finish(const std::string& postfix) {
  if (finished_) return;
  postfix_ = postfix;
  if (tty_) {
    draw_tty();
    *out_ << '\n';
    out_->flush();
    drawn_ = false;
  } else {
    print_plain();
  }
  finished_ = true;
}

std::string ProgressBar::render(bool with_bar) const {
  double elapsed = now() - start_;
  std::string s = title_;
  if (total_ > 0) {
    double frac = std::clamp(static_cast<double>(done_) / static_cast<double>(total_), 0.0, 1.0);
    s += fmt::format(" {:3}%", static_cast<int>(std::floor(frac * 100)));
    if (with_bar) {
      auto filled = static_cast<int>(std::floor(frac * kBarWidth));
      s += "|" + std::string(filled, '#') + std::string(kBarWidth - filled, ' ') + "|";
    }
    s += fmt::format(" {}/{}", done_, total_);
  } else {
    s += fmt::format(" {}", done_);
  }
  double rate = elapsed > 0 ? static_cast<double>(done_) / elapsed : 0.0;
  s += " [" + format_duration(elapsed);
  if (total_ > 0) s += "<" + format_duration(progress_eta(done_, total_, elapsed));
  s += ", " + format_rate(rate, opts_.unit) + "]";
  if (!postfix_.empty()) s += " " + postfix_;
  return s;
}

void ProgressBar::draw_tty() {
  // \r back to the start of the line, the line cut to the width (a wrapped line could not be
  // redrawn in place), then ESC[K to erase what a longer previous line left.
  std::string line = cut(render(true), static_cast<size_t>(std::max(width_ - 1, 1)));
  *out_ << '\r' << line << "\x1b[K";
  out_->flush();
  drawn_ = true;
}

void ProgressBar::print_plain() {
  *out_ << render(false) << '\n';
  out_->flush();
}

}  // namespace yq
