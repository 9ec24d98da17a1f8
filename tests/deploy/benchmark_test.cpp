// Benchmark statistics and timing loop (hand-worked samples, counting fake detectors), the `benchmark`
// command on a tiny model (each configuration in a child `yoloqat` process), `compare` on a tiny synthetic
// data set with an fp32 and a PTQ checkpoint, and ONNX Runtime rows when node and onnxruntime-node exist.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "cli/benchmark_run.h"
#include "cli/command.h"
#include "core/error.h"
#include "core/process.h"
#include "data/dataset.h"
#include "deploy/benchmark.h"
#include "deploy/ort_session.h"
#include "fixtures.h"
#include "model/checkpoint.h"
#include "test_util.h"

namespace yq::deploy {
namespace {

using yq::testing::TempDir;

constexpr double kExact = 1e-12;

TEST(Percentile, HandWorkedOddCount) {
  // Sorted: 15 20 35 40 50; h = 4 p / 100.
  const std::vector<double> x = {40, 15, 50, 35, 20};
  EXPECT_NEAR(percentile(x, 0), 15, kExact);
  EXPECT_NEAR(percentile(x, 25), 20, kExact);    // h = 1
  EXPECT_NEAR(percentile(x, 50), 35, kExact);    // h = 2
  EXPECT_NEAR(percentile(x, 90), 46, kExact);    // h = 3.6: 40 + 0.6 * 10
  EXPECT_NEAR(percentile(x, 99), 49.6, kExact);  // h = 3.96: 40 + 0.96 * 10
  EXPECT_NEAR(percentile(x, 100), 50, kExact);
}

TEST(Percentile, HandWorkedEvenCountAndSingleSample) {
  const std::vector<double> x = {4, 1, 3, 2};
  EXPECT_NEAR(percentile(x, 50), 2.5, kExact);  // h = 1.5
  EXPECT_NEAR(percentile(x, 90), 3.7, kExact);  // h = 2.7: 3 + 0.7
  EXPECT_NEAR(percentile({7}, 0), 7, kExact);
  EXPECT_NEAR(percentile({7}, 99), 7, kExact);
  EXPECT_THROW(percentile({}, 50), Error);
  EXPECT_THROW(percentile({1, 2}, 101), Error);
}

TEST(LatencyStats, MeanStdAndOrder) {
  const auto s = latency_stats({2, 4, 4, 4, 5, 5, 7, 9});
  EXPECT_EQ(s.runs, 8);
  EXPECT_NEAR(s.mean_ms, 5, kExact);
  EXPECT_NEAR(s.std_ms, 2, kExact);  // population standard deviation
  EXPECT_NEAR(s.min_ms, 2, kExact);
  EXPECT_NEAR(s.max_ms, 9, kExact);
  EXPECT_NEAR(s.p50_ms, 4.5, kExact);           // h = 3.5
  EXPECT_NEAR(s.p90_ms, 7 + 0.3 * 2, kExact);   // h = 6.3
  EXPECT_NEAR(s.p99_ms, 7 + 0.93 * 2, kExact);  // h = 6.93
  EXPECT_EQ(latency_stats({}).runs, 0);
}

TEST(TimingLoop, CountsWarmupAndRuns) {
  int calls = 0;
  auto step = [&] {
    ++calls;
    return StageTimes{1, double(calls), 0.5};
  };
  TimingOptions o;
  o.warmup = 3, o.runs = 7;
  auto t = timing_loop(step, o);
  EXPECT_EQ(calls, 10);
  ASSERT_EQ(t.size(), 7u);
  EXPECT_EQ(t.front().inf_ms, 4);  // the first timed call is the fourth
  EXPECT_EQ(t.back().total_ms(), 1 + 10 + 0.5);

  calls = 0;
  o.warmup = 0, o.runs = 1;
  EXPECT_EQ(timing_loop(step, o).size(), 1u);
  EXPECT_EQ(calls, 1);

  o.runs = 0;
  EXPECT_THROW(timing_loop(step, o), UsageError);
  o.runs = 1, o.warmup = -1;
  EXPECT_THROW(timing_loop(step, o), UsageError);
}

TEST(TimingLoop, TimeBudgetStopsEarlyButKeepsMinRuns) {
  int calls = 0;
  auto sleepy = [&] {
    ++calls;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return StageTimes{};
  };
  TimingOptions o;
  o.warmup = 2, o.runs = 100000, o.max_seconds = 0.05, o.min_runs = 3;
  auto t = timing_loop(sleepy, o);
  EXPECT_GE(t.size(), 3u);
  EXPECT_LE(t.size(), 6u);  // 50 ms of 10 ms runs: 5 (6 if a sleep is short of 10 ms)
  EXPECT_EQ(calls, int(t.size()) + 2);

  // A budget already spent after the first run: min_runs still run, and runs caps min_runs.
  calls = 0;
  o.warmup = 0, o.max_seconds = 1e-6;
  EXPECT_EQ(timing_loop(sleepy, o).size(), 3u);
  o.runs = 2, o.min_runs = 5;
  EXPECT_EQ(timing_loop(sleepy, o).size(), 2u);
}

TEST(BenchmarkDetector, FakeDetectorSeesBatchesAndIsTimed) {
  std::atomic<int> calls{0};
  eval::Detector det;
  const int nc = 3, imgsz = 64;
  det.forward = [&](const torch::Tensor& x) {
    ++calls;
    EXPECT_EQ(x.sizes(), (std::vector<int64_t>{2, 3, imgsz, imgsz}));
    EXPECT_EQ(x.scalar_type(), torch::kFloat32);
    EXPECT_GE(x.min().item<float>(), 0.f);
    EXPECT_LE(x.max().item<float>(), 1.f);
    std::this_thread::sleep_for(std::chrono::milliseconds(4));
    // One box per image, certain of class 1: the NMS has work to do.
    const int64_t a = (imgsz / 8) * (imgsz / 8) + (imgsz / 16) * (imgsz / 16) + (imgsz / 32) * (imgsz / 32);
    auto p = torch::zeros({x.size(0), 4 + nc, a});
    p.select(2, 0).narrow(0, 0, 2).copy_(
        torch::tensor({{10.f, 10.f, 8.f, 8.f, 0.f, 0.9f, 0.f}}).expand({2, 7}));
    return p;
  };
  BenchmarkOptions o;
  o.imgsz = imgsz, o.batch = 2, o.threads = 1;
  o.timing.warmup = 2, o.timing.runs = 4;
  auto r = benchmark_detector(det, o);
  EXPECT_EQ(calls.load(), 6);
  EXPECT_EQ(r.batch, 2);
  EXPECT_EQ(r.latency.runs, 4);
  EXPECT_EQ(r.inference.runs, 4);
  EXPECT_GE(r.inf_ms, 4.0);
  EXPECT_GE(r.inference.p50_ms, 4.0);
  EXPECT_GT(r.pre_ms, 0);
  EXPECT_GT(r.post_ms, 0);
  EXPECT_NEAR(r.latency.mean_ms, r.pre_ms + r.inf_ms + r.post_ms, 1e-9);
  EXPECT_LE(r.latency.min_ms, r.latency.p50_ms);
  EXPECT_LE(r.latency.p50_ms, r.latency.p90_ms);
  EXPECT_LE(r.latency.p90_ms, r.latency.p99_ms);
  EXPECT_LE(r.latency.p99_ms, r.latency.max_ms);
  EXPECT_NEAR(r.throughput_ips, 2 * 1000.0 / r.latency.mean_ms, 1e-9);
  EXPECT_GT(r.peak_rss_mb, 1);

  // JSON round trip; a missing field is an error.
  auto back = BenchmarkResult::from_json(r.to_json());
  EXPECT_EQ(back.to_json(), r.to_json());
  auto j = r.to_json();
  j["latency"].erase("p90_ms");
  EXPECT_THROW(BenchmarkResult::from_json(j), Error);

  o.imgsz = 100;
  EXPECT_THROW(benchmark_detector(det, o), UsageError);
}

TEST(PeakRss, GrowsWithTouchedMemory) {
  const double before = peak_rss_mb();
  std::vector<char> block(64 << 20, 1);  // 64 MiB, every page touched
  volatile char sink = block[block.size() / 2];
  (void)sink;
  EXPECT_GE(peak_rss_mb(), before + 60);
}

TEST(RunProcess, CapturesOutputAndExitCode) {
  auto r = run_process({"sh", "-c", "echo out; echo err 1>&2; exit 3"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.out, "out\n");
  EXPECT_EQ(r.err, "err\n");
  EXPECT_THROW(run_process({"/nonexistent/yoloqat-no-such-program"}), Error);
}

// The command-level tests share a tiny model (nc of the synthetic data set) saved as a checkpoint.
class BenchmarkCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir("benchcli");
    data_yaml_ = yq::testing::write_tiny_dataset(dir_->path(), 8, 4, 4, 128, 96);
    const int64_t nc = data::load_dataset_yaml(data_yaml_).nc;
    torch::manual_seed(0);
    model::YoloV8 m(model::tiny_model_spec(nc));
    m->eval();
    fp32_ = dir_->path() / "tiny.pt";
    model::save_checkpoint(fp32_, m, nullptr, nullptr, {{"kind", "fp32"}});
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static nlohmann::json read_json(const fs::path& p) { return nlohmann::json::parse(read_text(p)); }
  std::vector<std::string> common(const std::string& name) {
    return {"project=" + dir_->path().string(),   "name=" + name, "imgsz=64", "warmup=1", "runs=3",
            std::string("exe=") + YOLOQAT_BINARY, "log=warn"};
  }
  static TempDir* dir_;
  static fs::path data_yaml_, fp32_;
};
TempDir* BenchmarkCli::dir_ = nullptr;
fs::path BenchmarkCli::data_yaml_, BenchmarkCli::fp32_;

TEST_F(BenchmarkCli, EveryModelBatchAndThreads) {
  const fs::path copy = dir_->path() / "copy" / "tiny.pt";
  fs::create_directories(copy.parent_path());
  fs::copy_file(fp32_, copy, fs::copy_options::overwrite_existing);
  auto args = common("bench");
  args.insert(args.end(), {"weights=" + fp32_.string() + "," + copy.string(), "batch=1,2", "threads=1,2",
                           "isolate=false"});
  cli::run_subcommand("benchmark", args);
  const auto j = read_json(dir_->path() / "reports/bench/benchmark.json");
  ASSERT_EQ(j["rows"].size(), 8u);  // 2 models x 2 batches x 2 thread counts
  EXPECT_FALSE(j["isolated"].get<bool>());
  for (const auto& r : j["rows"]) {
    for (const char* k :
         {"model", "kind", "runtime", "imgsz", "batch", "threads", "p50_ms", "p90_ms", "p99_ms", "mean_ms",
          "throughput_ips", "pre_ms", "inf_ms", "post_ms", "peak_rss_mb", "file_mb", "speedup"})
      ASSERT_TRUE(r.contains(k)) << k << " missing in " << r.dump();
    EXPECT_EQ(r["kind"], "fp32");
    EXPECT_EQ(r["runtime"], "yoloqat");
    EXPECT_EQ(r["imgsz"], 64);
    EXPECT_EQ(r["runs"], 3);
    for (const char* k : {"p50_ms", "p90_ms", "p99_ms", "mean_ms", "throughput_ips", "pre_ms", "inf_ms",
                          "post_ms", "peak_rss_mb", "file_mb", "speedup"})
      EXPECT_GT(r[k].get<double>(), 0) << k << " in " << r.dump();
    EXPECT_LE(r["p50_ms"].get<double>(), r["p99_ms"].get<double>());
    EXPECT_NEAR(r["throughput_ips"].get<double>(),
                r["batch"].get<double>() * 1000 / r["mean_ms"].get<double>(), 1e-6);
    EXPECT_NEAR(r["file_mb"].get<double>(), double(fs::file_size(fp32_)) / (1 << 20), 1e-9);
  }
  // Names tell the two files apart; order is model, batch, threads; the first model is its own baseline.
  EXPECT_EQ(j["rows"][0]["model"], fp32_.parent_path().filename().string() + "/tiny.pt");
  EXPECT_EQ(j["rows"][4]["model"], "copy/tiny.pt");
  EXPECT_EQ(j["rows"][1]["threads"], 2);
  EXPECT_EQ(j["rows"][2]["batch"], 2);
  for (int k = 0; k < 4; ++k) EXPECT_DOUBLE_EQ(j["rows"][k]["speedup"].get<double>(), 1.0);
  for (int k = 4; k < 8; ++k)
    EXPECT_NEAR(j["rows"][k]["speedup"].get<double>(),
                j["rows"][k - 4]["inf_p50_ms"].get<double>() / j["rows"][k]["inf_p50_ms"].get<double>(),
                1e-9);
  EXPECT_TRUE(j["onnx"].is_null());
}

TEST_F(BenchmarkCli, ChildProcessMeasuresItsOwnPeakMemory) {
  // This process holds 768 MiB more than any tiny-model benchmark needs; the child's peak must not see it.
  std::vector<char> ballast(768u << 20, 1);
  volatile char sink = ballast[ballast.size() / 3];
  (void)sink;
  const double parent_peak = peak_rss_mb();
  auto args = common("child");
  args.insert(args.end(), {"weights=" + fp32_.string(), "batch=1", "threads=1"});
  cli::run_subcommand("benchmark", args);
  const auto j = read_json(dir_->path() / "reports/child/benchmark.json");
  EXPECT_TRUE(j["isolated"].get<bool>());
  ASSERT_EQ(j["rows"].size(), 1u);
  const auto& r = j["rows"][0];
  EXPECT_EQ(r["kind"], "fp32");
  EXPECT_EQ(r["runs"], 3);
  EXPECT_GT(r["p50_ms"].get<double>(), 0);
  EXPECT_GT(r["peak_rss_mb"].get<double>(), 10);
  EXPECT_LT(r["peak_rss_mb"].get<double>(), parent_peak - 500) << "parent peak " << parent_peak;
}

TEST_F(BenchmarkCli, ChildFailureNamesTheModel) {
  const fs::path bad = dir_->path() / "bad.pt";
  yq::testing::write_file(bad, "not a checkpoint");
  auto args = common("bad");
  args.push_back("weights=" + bad.string());
  try {
    cli::run_subcommand("benchmark", args);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("bad.pt"), std::string::npos) << what;
    EXPECT_NE(what.find("exit code"), std::string::npos) << what;
  }
  auto missing = common("missing");
  missing.push_back("weights=" + (dir_->path() / "nope.pt").string());
  EXPECT_THROW(cli::run_subcommand("benchmark", missing), UsageError);
}

TEST_F(BenchmarkCli, InProcessAndOnnxRuntime) {
  // Export the tiny model at 64 x 64, then time it in yoloqat (in this process) and in ONNX Runtime.
  cli::run_subcommand("export", {"weights=" + fp32_.string(), "imgsz=64", "project=" + dir_->path().string(),
                                 "name=tiny", "threads=1"});
  fs::path onnx;
  for (const auto& e : fs::directory_iterator(dir_->path() / "models/exported/onnx"))
    if (e.path().extension() == ".onnx") onnx = e.path();
  ASSERT_FALSE(onnx.empty());

  std::string why;
  const fs::path ort_dir = deploy::find_ort_dir("", why);
  auto args = common("ort");
  args.insert(args.end(), {"weights=" + fp32_.string(), "onnx=" + onnx.string(), "batch=1", "threads=1",
                           "isolate=false"});
  cli::run_subcommand("benchmark", args);
  const auto j = read_json(dir_->path() / "reports/ort/benchmark.json");
  EXPECT_FALSE(j["isolated"].get<bool>());
  if (ort_dir.empty()) {
    ASSERT_EQ(j["rows"].size(), 1u);
    EXPECT_NE(j["onnx"].get<std::string>().find("skipped"), std::string::npos);
    GTEST_SKIP() << "ONNX Runtime rows not tested: " << why;
  }
  ASSERT_EQ(j["rows"].size(), 2u) << j.dump(2);
  const auto& ours = j["rows"][0];
  const auto& ort = j["rows"][1];
  EXPECT_EQ(ort["runtime"], "onnxruntime");
  EXPECT_EQ(ort["kind"], "onnx");
  EXPECT_TRUE(ort["pre_ms"].is_null());
  EXPECT_GT(ort["p50_ms"].get<double>(), 0);
  EXPECT_GT(ort["peak_rss_mb"].get<double>(), 0);
  EXPECT_GT(ort["file_mb"].get<double>(), 0);
  EXPECT_EQ(ort["runs"], 3);
  ASSERT_TRUE(ours.contains("ort_ratio"));
  EXPECT_NEAR(ours["ort_ratio"].get<double>(),
              ours["inf_p50_ms"].get<double>() / ort["inf_p50_ms"].get<double>(), 1e-9);

  // An ort_dir without ONNX Runtime: ours still measured, the ONNX rows skipped with the reason.
  auto skip = common("ortskip");
  skip.insert(skip.end(), {"weights=" + fp32_.string(), "onnx=" + onnx.string(), "isolate=false", "threads=1",
                           "ort_dir=" + (dir_->path() / "no_ort").string()});
  cli::run_subcommand("benchmark", skip);
  const auto s = read_json(dir_->path() / "reports/ortskip/benchmark.json");
  EXPECT_EQ(s["rows"].size(), 1u);
  EXPECT_NE(s["onnx"].get<std::string>().find("no bench.mjs"), std::string::npos) << s["onnx"];
}

TEST_F(BenchmarkCli, CompareFp32AndPtq) {
  cli::run_subcommand("calibrate", {"data=" + data_yaml_.string(), "weights=" + fp32_.string(), "batches=1",
                                    "batch=4", "imgsz=64", "workers=1", "val=false",
                                    "project=" + dir_->path().string(), "name=ptq", "threads=1", "log=warn"});
  const fs::path ptq = dir_->path() / "models/checkpoints/ptq/ptq/ptq.pt";
  ASSERT_TRUE(fs::exists(ptq));
  auto args = common("cmp");
  args.insert(args.end(), {"data=" + data_yaml_.string(), "weights=" + fp32_.string() + "," + ptq.string(),
                           "batch=4", "workers=1", "threads=1"});
  cli::run_subcommand("compare", args);
  const auto j = read_json(dir_->path() / "reports/cmp/compare.json");
  EXPECT_EQ(j["split"], "test");
  EXPECT_EQ(j["images"], 4);
  ASSERT_EQ(j["rows"].size(), 2u);
  EXPECT_EQ(j["rows"][0]["kind"], "fp32");
  EXPECT_EQ(j["rows"][1]["kind"], "ptq");
  EXPECT_EQ(j["rows"][0]["name"], "tiny.pt");
  EXPECT_EQ(j["rows"][1]["name"], "ptq.pt");
  EXPECT_DOUBLE_EQ(j["rows"][0]["speedup"].get<double>(), 1.0);
  for (const auto& r : j["rows"]) {
    for (const char* k :
         {"name", "kind", "file", "map50", "map5095", "p50_ms", "speedup", "file_mb", "peak_rss_mb"})
      ASSERT_TRUE(r.contains(k)) << k;
    EXPECT_GE(r["map50"].get<double>(), 0);
    EXPECT_LE(r["map50"].get<double>(), 1);
    EXPECT_GE(r["map50"].get<double>(), r["map5095"].get<double>());
    for (const char* k : {"p50_ms", "speedup", "file_mb", "peak_rss_mb"})
      EXPECT_GT(r[k].get<double>(), 0) << k;
  }
  // A model with another class count is refused, naming both files.
  torch::manual_seed(1);
  model::YoloV8 other(model::tiny_model_spec(2));
  const fs::path o2 = dir_->path() / "nc2.pt";
  model::save_checkpoint(o2, other, nullptr, nullptr, {{"kind", "fp32"}});
  auto bad = common("cmpbad");
  bad.insert(bad.end(), {"data=" + data_yaml_.string(), "weights=" + o2.string(), "threads=1"});
  EXPECT_THROW(cli::run_subcommand("compare", bad), UsageError);
}

}  // namespace
}  // namespace yq::deploy
