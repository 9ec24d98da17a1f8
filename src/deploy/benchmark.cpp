#include "deploy/benchmark.h"

#include <sys/resource.h>
#include <torch/torch.h>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <numeric>

#include "core/error.h"
#include "core/rng.h"
#include "data/augment.h"
#include "data/loader.h"

namespace yq::deploy {

namespace {

using Clock = std::chrono::steady_clock;

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

// A 1280 x 720 street-like test card: a vertical gradient with coloured rectangles and discs, fixed seed.
cv::Mat synthetic_image() {
  cv::Mat img(720, 1280, CV_8UC3);
  for (int y = 0; y < img.rows; ++y)
    img.row(y).setTo(cv::Scalar(90 + y * 100 / img.rows, 110 + y * 60 / img.rows, 120));
  Rng rng(0x5eed);
  for (int k = 0; k < 40; ++k) {
    cv::Scalar c(double(rng.randint(256)), double(rng.randint(256)), double(rng.randint(256)));
    const int x = int(rng.randint(1200)), y = int(rng.randint(650)), s = int(rng.randint(12, 120));
    if (rng.chance(0.5))
      cv::rectangle(img, cv::Rect(x, y, s, s * 2 / 3), c, cv::FILLED);
    else
      cv::circle(img, cv::Point(x, y), s / 2, c, cv::FILLED);
  }
  return img;
}

cv::Mat load_source(const fs::path& p) {
  if (p.empty()) return synthetic_image();
  cv::Mat img = cv::imread(p.string(), cv::IMREAD_COLOR);
  YQ_CHECK_USAGE(!img.empty(), "source={}: not a readable image", p.string());
  return img;
}

}  // namespace

double percentile(std::vector<double> x, double p) {
  YQ_ASSERT(!x.empty());
  YQ_ASSERT(p >= 0 && p <= 100);
  std::sort(x.begin(), x.end());
  const double h = double(x.size() - 1) * p / 100.0;
  const size_t lo = size_t(std::floor(h));
  if (lo + 1 >= x.size()) return x.back();
  return x[lo] + (h - double(lo)) * (x[lo + 1] - x[lo]);
}

LatencyStats latency_stats(const std::vector<double>& ms) {
  LatencyStats s;
  if (ms.empty()) return s;
  s.runs = int64_t(ms.size());
  s.mean_ms = std::accumulate(ms.begin(), ms.end(), 0.0) / double(ms.size());
  double var = 0;
  for (double v : ms) var += (v - s.mean_ms) * (v - s.mean_ms);
  s.std_ms = std::sqrt(var / double(ms.size()));
  s.min_ms = *std::min_element(ms.begin(), ms.end());
  s.max_ms = *std::max_element(ms.begin(), ms.end());
  s.p50_ms = percentile(ms, 50);
  s.p90_ms = percentile(ms, 90);
  s.p99_ms = percentile(ms, 99);
  return s;
}

std::vector<StageTimes> timing_loop(const std::function<StageTimes()>& step, const TimingOptions& o) {
  YQ_CHECK_USAGE(o.warmup >= 0, "warmup={}: must be >= 0", o.warmup);
  YQ_CHECK_USAGE(o.runs >= 1, "runs={}: at least one timed run is needed", o.runs);
  for (int k = 0; k < o.warmup; ++k) step();
  std::vector<StageTimes> out;
  out.reserve(size_t(o.runs));
  const auto start = Clock::now();
  const int min_runs = std::min(std::max(o.min_runs, 1), o.runs);
  while (int(out.size()) < o.runs) {
    out.push_back(step());
    if (o.max_seconds > 0 && int(out.size()) >= min_runs &&
        ms_between(start, Clock::now()) >= o.max_seconds * 1000.0)
      break;
  }
  return out;
}

nlohmann::json BenchmarkResult::to_json() const {
  auto stats = [](const LatencyStats& s) {
    return nlohmann::json{{"runs", s.runs},     {"mean_ms", s.mean_ms}, {"std_ms", s.std_ms},
                          {"min_ms", s.min_ms}, {"p50_ms", s.p50_ms},   {"p90_ms", s.p90_ms},
                          {"p99_ms", s.p99_ms}, {"max_ms", s.max_ms}};
  };
  return {{"imgsz", imgsz},
          {"batch", batch},
          {"threads", threads},
          {"latency", stats(latency)},
          {"inference", stats(inference)},
          {"pre_ms", pre_ms},
          {"inf_ms", inf_ms},
          {"post_ms", post_ms},
          {"throughput_ips", throughput_ips},
          {"peak_rss_mb", peak_rss_mb}};
}

BenchmarkResult BenchmarkResult::from_json(const nlohmann::json& j) {
  auto get = [&](const nlohmann::json& o, const char* k) -> const nlohmann::json& {
    YQ_CHECK(o.is_object() && o.contains(k), "benchmark result: no field '{}' in {}", k, o.dump());
    return o.at(k);
  };
  auto stats = [&](const nlohmann::json& o) {
    LatencyStats s;
    s.runs = get(o, "runs").get<int64_t>();
    s.mean_ms = get(o, "mean_ms").get<double>(), s.std_ms = get(o, "std_ms").get<double>();
    s.min_ms = get(o, "min_ms").get<double>(), s.max_ms = get(o, "max_ms").get<double>();
    s.p50_ms = get(o, "p50_ms").get<double>(), s.p90_ms = get(o, "p90_ms").get<double>();
    s.p99_ms = get(o, "p99_ms").get<double>();
    return s;
  };
  BenchmarkResult r;
  r.imgsz = get(j, "imgsz").get<int>(), r.batch = get(j, "batch").get<int>();
  r.threads = get(j, "threads").get<int>();
  r.latency = stats(get(j, "latency")), r.inference = stats(get(j, "inference"));
  r.pre_ms = get(j, "pre_ms").get<double>(), r.inf_ms = get(j, "inf_ms").get<double>();
  r.post_ms = get(j, "post_ms").get<double>();
  r.throughput_ips = get(j, "throughput_ips").get<double>();
  r.peak_rss_mb = get(j, "peak_rss_mb").get<double>();
  return r;
}

BenchmarkResult benchmark_detector(const eval::Detector& det, const BenchmarkOptions& o) {
  YQ_CHECK_USAGE(o.imgsz >= 32 && o.imgsz % 32 == 0, "imgsz={}: must be a positive multiple of 32", o.imgsz);
  YQ_CHECK_USAGE(o.batch >= 1, "batch={}: must be >= 1", o.batch);
  YQ_CHECK_USAGE(o.threads >= 1, "threads={}: must be >= 1", o.threads);
  YQ_ASSERT(det.forward);
  at::set_num_threads(o.threads);
  cv::setNumThreads(o.threads);
  const cv::Mat src = load_source(o.source);

  auto step = [&]() {
    StageTimes t;
    auto t0 = Clock::now();
    // The whole batch is pre-processed each run, as a server receiving `batch` frames would.
    auto x = torch::empty({o.batch, 3, o.imgsz, o.imgsz}, torch::kUInt8);
    for (int b = 0; b < o.batch; ++b) {
      data::LetterboxInfo lb;
      cv::Mat boxed = data::letterbox(src, o.imgsz, o.imgsz, &lb, true, true);
      data::mat_to_chw(boxed, x[b]);
    }
    auto xf = x.to(torch::kFloat32).div_(255);
    auto t1 = Clock::now();
    torch::Tensor preds = det.forward(xf);
    auto t2 = Clock::now();
    auto dets = eval::non_max_suppression(preds, o.nms);
    YQ_ASSERT(int(dets.size()) == o.batch);
    auto t3 = Clock::now();
    t.pre_ms = ms_between(t0, t1), t.inf_ms = ms_between(t1, t2), t.post_ms = ms_between(t2, t3);
    return t;
  };
  const auto times = timing_loop(step, o.timing);

  std::vector<double> total, inf;
  BenchmarkResult r;
  r.imgsz = o.imgsz, r.batch = o.batch, r.threads = o.threads;
  for (const auto& t : times) {
    total.push_back(t.total_ms()), inf.push_back(t.inf_ms);
    r.pre_ms += t.pre_ms, r.inf_ms += t.inf_ms, r.post_ms += t.post_ms;
  }
  const double n = double(times.size());
  r.pre_ms /= n, r.inf_ms /= n, r.post_ms /= n;
  r.latency = latency_stats(total);
  r.inference = latency_stats(inf);
  r.throughput_ips = r.latency.mean_ms > 0 ? o.batch * 1000.0 / r.latency.mean_ms : 0;
  r.peak_rss_mb = peak_rss_mb();
  return r;
}

double peak_rss_mb() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;  // "VmHWM:  123 kB"
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  return double(ru.ru_maxrss) / 1024.0;  // kilobytes on Linux
}

BenchmarkResult result_from_times(const std::vector<double>& inf_ms, int imgsz, int batch, int threads,
                                  double rss_mb) {
  BenchmarkResult r;
  r.imgsz = imgsz, r.batch = batch, r.threads = threads;
  r.latency = latency_stats(inf_ms);
  r.inference = r.latency;
  r.inf_ms = r.latency.mean_ms;
  r.throughput_ips = r.latency.mean_ms > 0 ? batch * 1000.0 / r.latency.mean_ms : 0;
  r.peak_rss_mb = rss_mb;
  return r;
}

}  // namespace yq::deploy
