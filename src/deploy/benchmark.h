// Latency measurement of a detector: a timing loop (warm-up, then N runs or a time budget) over the
// whole per-batch path, split into pre-process (letterbox + tensor conversion of a real or synthetic
// image), inference (the detector's forward) and post-process (NMS), with latency statistics, throughput
// and the process's peak resident memory. `yoloqat benchmark` and `yoloqat compare` run each
// configuration in a child process (cli/cmd_benchmark.cpp) so that peak memory belongs to one model.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/fs.h"
#include "eval/nms.h"
#include "eval/validator.h"

namespace yq::deploy {

// The p-th percentile (p in [0, 100]) of `samples` (any order, not empty), by linear interpolation
// between closest ranks (NumPy's default, Hyndman & Fan type 7): with the samples sorted as
// x[0] <= ... <= x[n-1] and h = (n - 1) * p / 100, the result is x[floor(h)] + (h - floor(h)) *
// (x[floor(h) + 1] - x[floor(h)]). p = 0 gives the minimum, p = 100 the maximum, p = 50 the median.
double percentile(std::vector<double> samples, double p);

struct LatencyStats {
  int64_t runs = 0;
  double mean_ms = 0, std_ms = 0;  // std: population standard deviation
  double min_ms = 0, p50_ms = 0, p90_ms = 0, p99_ms = 0, max_ms = 0;
};
// Statistics of `ms` (one entry per run; empty -> all zeros).
LatencyStats latency_stats(const std::vector<double>& ms);

// Wall-clock time of the three stages of one batch.
struct StageTimes {
  double pre_ms = 0, inf_ms = 0, post_ms = 0;
  double total_ms() const { return pre_ms + inf_ms + post_ms; }
};

struct TimingOptions {
  int warmup = 5;          // untimed runs first (allocator, caches, oneDNN primitive creation)
  int runs = 50;           // timed runs, at most
  double max_seconds = 0;  // stop the timed runs once they have taken this long (0 = no budget)
  int min_runs = 3;        // timed runs done even past the budget (capped by `runs`)
};

// Calls `step` warmup times, discarding the result, then until `runs` timed results are collected or
// (max_seconds > 0) the timed runs have taken max_seconds and at least min_runs are done.
std::vector<StageTimes> timing_loop(const std::function<StageTimes()>& step, const TimingOptions& o);

struct BenchmarkOptions {
  int imgsz = 640;  // square network input imgsz x imgsz (the shape exports are made for)
  int batch = 1;    // images per forward pass
  int threads = 1;  // LibTorch and OpenCV threads (set by benchmark_detector)
  TimingOptions timing;
  fs::path source;             // image to letterbox; empty = a synthetic 1280 x 720 image (fixed seed)
  eval::NmsOptions nms;        // post-process (conf 0.25, iou 0.7 as predict)
  bool allow_inexact = false;  // run int8 models whose target is not exact on this CPU (runtime.h)
};

struct BenchmarkResult {
  int imgsz = 0, batch = 0, threads = 0;
  LatencyStats latency;                        // per batch, pre + inference + post
  LatencyStats inference;                      // per batch, the forward pass alone
  double pre_ms = 0, inf_ms = 0, post_ms = 0;  // mean per batch
  double throughput_ips = 0;                   // images per second: batch * 1000 / latency.mean_ms
  double peak_rss_mb = 0;                      // this process's peak resident memory when done
  nlohmann::json to_json() const;
  static BenchmarkResult from_json(const nlohmann::json& j);  // throws yq::Error on a missing field
};

// Times `det` as a deployment would run it: per run, letterbox `batch` copies of the source image to
// imgsz x imgsz, convert to float [batch, 3, imgsz, imgsz], forward, NMS. Sets the thread counts.
BenchmarkResult benchmark_detector(const eval::Detector& det, const BenchmarkOptions& o);

// Peak resident set size of this process in MiB: VmHWM of /proc/self/status, else getrusage's ru_maxrss
// (which, in a process started by vfork + exec as posix_spawn does, starts from the parent's peak).
double peak_rss_mb();

// Throughput and statistics of externally measured per-run times (ONNX Runtime): inference only.
BenchmarkResult result_from_times(const std::vector<double>& inf_ms, int imgsz, int batch, int threads,
                                  double peak_rss_mb);

}  // namespace yq::deploy
