// yoloqat benchmark weights=a.pt,b.int8 imgsz=640 batch=1,8 threads=1,2 [onnx=x.onnx]: latency p50 / p90 /
// p99, throughput, pre-process / inference / NMS split, peak memory and file size of every model x batch x
// threads, each configuration in a child process of its own; ONNX models in ONNX Runtime in the same run.
// Writes a table and <project>/reports/<name>/benchmark.json.
#include <torch/torch.h>
#include <torch/version.h>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <thread>

#include "cli/benchmark_run.h"
#include "cli/command.h"
#include "core/error.h"
#include "core/log.h"
#include "core/process.h"
#include "deploy/ort_session.h"
#include "deploy/runtime.h"

namespace yq::cli {

namespace {

constexpr const char* kChildTag = "yoloqat_benchmark_child";

// The last line of `out` that parses as a JSON object holding `tag` (a child may print other lines).
nlohmann::json find_json_line(const std::string& out, const char* tag) {
  size_t end = out.size();
  while (end > 0) {
    size_t start = out.rfind('\n', end - 1);
    start = start == std::string::npos ? 0 : start + 1;
    const std::string line = out.substr(start, end - start);
    if (!line.empty() && line[0] == '{') {
      auto j = nlohmann::json::parse(line, nullptr, false);
      if (!j.is_discarded() && (tag == nullptr || j.contains(tag))) return j;
    }
    if (start == 0) break;
    end = start - 1;
  }
  return nlohmann::json();
}

std::string fmt_num(double v) {
  return fmt::format("{}", v);
}

int64_t resolve_threads(int64_t t) {
  return t > 0 ? t : int64_t(std::max(1u, std::thread::hardware_concurrency()));
}

double file_mb(const fs::path& p) {
  std::error_code ec;
  auto n = fs::file_size(p, ec);
  return ec ? 0.0 : double(n) / (1024.0 * 1024.0);
}

deploy::BenchmarkOptions options_from(const Config& cfg) {
  deploy::BenchmarkOptions o;
  o.imgsz = int(cfg.get_int("imgsz"));
  o.timing.warmup = int(cfg.get_int("warmup"));
  o.timing.runs = int(cfg.get_int("runs"));
  o.timing.max_seconds = cfg.get_float("max_seconds");
  o.source = cfg.get_str("source");
  o.nms.conf = cfg.get_float("conf");
  o.nms.iou = cfg.get_float("iou");
  o.allow_inexact = cfg.get_bool("allow_inexact");
  return o;
}

// child=true: one configuration in this process, one JSON line on stdout.
void run_child(const Config& cfg) {
  const auto weights = cfg.get_strs("weights");
  const auto batch = cfg.get_ints("batch"), threads = cfg.get_ints("threads");
  YQ_CHECK_USAGE(weights.size() == 1 && batch.size() == 1 && threads.size() == 1,
                 "child=true runs one configuration: give one weights=, batch= and threads=");
  auto o = options_from(cfg);
  o.batch = int(batch[0]);
  o.threads = int(resolve_threads(threads[0]));
  auto mb = bench_in_process(weights[0], o);
  nlohmann::json j = {{kChildTag, 1}, {"kind", mb.kind}, {"result", mb.result.to_json()}};
  std::cout << j.dump() << std::endl;
}

struct Row {
  std::string model, kind, runtime;
  fs::path file;
  deploy::BenchmarkResult r;
  int index = 0;  // position in weights= or onnx=
  int pair = -1;  // ours: index of the ONNX Runtime row compared with it
};

nlohmann::json row_json(const Row& w) {
  const bool ort = w.runtime == "onnxruntime";
  nlohmann::json j = {{"model", w.model},
                      {"file", w.file.string()},
                      {"kind", w.kind},
                      {"runtime", w.runtime},
                      {"imgsz", w.r.imgsz},
                      {"batch", w.r.batch},
                      {"threads", w.r.threads},
                      {"runs", w.r.latency.runs},
                      {"p50_ms", w.r.latency.p50_ms},
                      {"p90_ms", w.r.latency.p90_ms},
                      {"p99_ms", w.r.latency.p99_ms},
                      {"mean_ms", w.r.latency.mean_ms},
                      {"std_ms", w.r.latency.std_ms},
                      {"throughput_ips", w.r.throughput_ips},
                      {"pre_ms", ort ? nlohmann::json(nullptr) : nlohmann::json(w.r.pre_ms)},
                      {"inf_ms", w.r.inf_ms},
                      {"post_ms", ort ? nlohmann::json(nullptr) : nlohmann::json(w.r.post_ms)},
                      {"inf_p50_ms", w.r.inference.p50_ms},
                      {"peak_rss_mb", w.r.peak_rss_mb},
                      {"file_mb", file_mb(w.file)}};
  return j;
}

void run_benchmark(const Config& cfg) {
  if (cfg.get_bool("child")) return run_child(cfg);
  const auto weights = cfg.get_strs("weights");
  const auto onnx = cfg.get_strs("onnx");
  YQ_CHECK_USAGE(!weights.empty() || !onnx.empty(),
                 "give weights=A.pt,B.int8 (models run by yoloqat) and/or onnx=X.onnx (run by ONNX Runtime)");
  for (const auto& w : weights) YQ_CHECK_USAGE(fs::is_regular_file(w), "weights={}: no such file", w);
  for (const auto& w : onnx) YQ_CHECK_USAGE(fs::is_regular_file(w), "onnx={}: no such file", w);
  // A QDQ export ONNX Runtime would run inexactly here is refused before anything is timed.
  for (const auto& w : onnx) {
    const auto oi = deploy::read_onnx_info(w);
    if (oi.qdq)
      deploy::check_exact(w, oi.target, oi.pair_bound, "onnxruntime", cpu_hardware(),
                          cfg.get_bool("allow_inexact"));
  }
  std::vector<int64_t> batches = cfg.get_ints("batch"), threads = cfg.get_ints("threads");
  YQ_CHECK_USAGE(!batches.empty(), "batch=: give at least one batch size");
  if (threads.empty()) threads.push_back(0);
  for (auto& t : threads) t = resolve_threads(t);
  const bool isolate = cfg.get_bool("isolate");
  const std::string exe = cfg.get_str("exe");

  fs::path out = make_run_dir(cfg, "reports");
  cfg.save(out / "args.yaml");
  const auto base = options_from(cfg);

  std::vector<Row> rows;
  const auto names = display_names(weights);
  for (size_t m = 0; m < weights.size(); ++m)
    for (int64_t b : batches)
      for (int64_t t : threads) {
        auto o = base;
        o.batch = int(b), o.threads = int(t);
        log::info("{}: batch {} threads {}{}", weights[m], b, t, isolate ? " (own process)" : "");
        ModelBench mb = with_context(
            fmt::format("benchmark of {} at batch {} threads {}", weights[m], b, t),
            [&] { return isolate ? bench_in_child(exe, weights[m], o) : bench_in_process(weights[m], o); });
        rows.push_back({names[m], mb.kind, "yoloqat", weights[m], mb.result, int(m)});
      }

  // ONNX Runtime rows.
  nlohmann::json ort_note = nullptr;
  nlohmann::json ort_failed = nlohmann::json::array();
  const size_t first_ort = rows.size();
  if (!onnx.empty()) {
    std::string why;
    fs::path ort_dir = deploy::find_ort_dir(cfg.get_str("ort_dir"), why);
    if (ort_dir.empty()) {
      log::warn("onnx=: ONNX Runtime rows skipped: {}", why);
      ort_note = "skipped: " + why;
    } else {
      const auto onames = display_names(onnx);
      for (size_t m = 0; m < onnx.size(); ++m)
        for (int64_t b : batches)
          for (int64_t t : threads) {
            auto o = base;
            o.batch = int(b), o.threads = int(t);
            log::info("{} in ONNX Runtime: batch {} threads {}", onnx[m], b, t);
            // A configuration ONNX Runtime refuses (a fixed-batch export at batch 8) is reported, not fatal.
            try {
              ModelBench mb = bench_onnxruntime(ort_dir, onnx[m], o);
              rows.push_back({onames[m], mb.kind, "onnxruntime", onnx[m], mb.result, int(m)});
            } catch (const Error& e) {
              log::warn("ONNX Runtime on {} at batch {} threads {} failed: {}", onnx[m], b, t, e.what());
              ort_failed.push_back({{"model", onames[m]}, {"batch", b}, {"threads", t}, {"error", e.what()}});
            }
          }
      ort_note = "ran in ONNX Runtime from " + ort_dir.string();
    }
  }
  // Pairing: ours i with ONNX i when the lists have the same length (the export of the same model),
  // else every model with the first ONNX model.
  const bool by_position = onnx.size() == weights.size();
  for (size_t i = 0; i < first_ort; ++i) {
    for (size_t k = first_ort; k < rows.size(); ++k) {
      if (rows[k].index == (by_position ? rows[i].index : 0) && rows[k].r.batch == rows[i].r.batch &&
          rows[k].r.threads == rows[i].r.threads)
        rows[i].pair = int(k);
    }
  }

  // Speed-up: the inference p50 of the first model (first row of its batch and threads) over this row's.
  nlohmann::json jrows = nlohmann::json::array();
  std::string table = fmt::format(
      "{:<22} {:<5} {:<11} {:>5} {:>3} {:>8} {:>8} {:>8} {:>8} {:>8} {:>7} {:>8} {:>6} "
      "{:>7} {:>7} {:>7} {:>8}\n",
      "model", "kind", "runtime", "batch", "thr", "p50 ms", "p90 ms", "p99 ms", "mean ms", "img/s", "pre ms",
      "inf ms", "post", "RSS MB", "file MB", "speedup", "ours/ORT");
  for (size_t i = 0; i < rows.size(); ++i) {
    const Row& w = rows[i];
    nlohmann::json j = row_json(w);
    const Row* ref = nullptr;
    for (const auto& c : rows)
      if (c.r.batch == w.r.batch && c.r.threads == w.r.threads) {
        ref = &c;
        break;
      }
    const double speedup =
        ref && w.r.inference.p50_ms > 0 ? ref->r.inference.p50_ms / w.r.inference.p50_ms : 0;
    j["speedup"] = speedup;
    std::string ratio = "";
    if (w.pair >= 0) {
      const Row& o = rows[size_t(w.pair)];
      const double q = o.r.inference.p50_ms > 0 ? w.r.inference.p50_ms / o.r.inference.p50_ms : 0;
      j["ort_model"] = o.model;
      j["ort_ratio"] = q;
      ratio = fmt::format("{:.2f}", q);
    }
    jrows.push_back(j);
    const bool ort = w.runtime == "onnxruntime";
    table += fmt::format(
        "{:<22} {:<5} {:<11} {:>5} {:>3} {:>8.2f} {:>8.2f} {:>8.2f} {:>8.2f} {:>8.1f} {:>7} {:>8.2f} "
        "{:>6} {:>7.0f} {:>7.2f} {:>7.2f} {:>8}\n",
        w.model.size() > 22 ? w.model.substr(w.model.size() - 22) : w.model, w.kind, w.runtime, w.r.batch,
        w.r.threads, w.r.latency.p50_ms, w.r.latency.p90_ms, w.r.latency.p99_ms, w.r.latency.mean_ms,
        w.r.throughput_ips, ort ? "-" : fmt::format("{:.2f}", w.r.pre_ms), w.r.inf_ms,
        ort ? "-" : fmt::format("{:.2f}", w.r.post_ms), w.r.peak_rss_mb, file_mb(w.file), speedup, ratio);
  }
  std::cout << table;
  std::cout << "cpu: " << cpu_onednn().describe() << "\n";
  if (!ort_note.is_null()) std::cout << "onnx: " << ort_note.get<std::string>() << "\n";
  for (const auto& f : ort_failed) {
    const std::string e = f["error"].get<std::string>();
    std::cout << fmt::format("onnx: {} at batch {} threads {} failed: {}\n", f["model"].get<std::string>(),
                             f["batch"].get<int64_t>(), f["threads"].get<int64_t>(),
                             e.substr(0, e.find('\n')));
  }

  nlohmann::json j = {
      {"machine",
       {{"cpu", cpu_hardware().model},
        {"cpu_features", cpu_hardware().feature_list()},
        {"onednn_isa_cap", cpu_onednn().cap},
        {"onednn_features", cpu_onednn().feature_list()},
        {"int32_dot", cpu_onednn().int32_dot()},
        {"cores", std::thread::hardware_concurrency()},
        {"libtorch",
         fmt::format("{}.{}.{}", TORCH_VERSION_MAJOR, TORCH_VERSION_MINOR, TORCH_VERSION_PATCH)}}},
      {"imgsz", base.imgsz},
      {"warmup", base.timing.warmup},
      {"runs", base.timing.runs},
      {"max_seconds", base.timing.max_seconds},
      {"source", base.source.empty() ? "synthetic 1280x720" : base.source.string()},
      {"isolated", isolate},
      {"definitions",
       {{"percentile", "linear interpolation between closest ranks (NumPy default, type 7)"},
        {"p50_ms",
         "per batch; yoloqat rows: pre-process + inference + NMS; onnxruntime rows: inference only"},
        {"throughput_ips", "batch * 1000 / mean_ms"},
        {"speedup", "inference p50 of the first row with the same batch and threads / this row's"},
        {"ort_ratio", "this row's inference p50 / the paired ONNX Runtime row's (< 1: yoloqat faster)"},
        {"peak_rss_mb", isolate
                            ? "VmHWM of the process that measured this row alone (onnxruntime: node included)"
                            : "VmHWM of the whole benchmark process so far"}}},
      {"onnx", ort_note},
      {"onnx_failed", ort_failed},
      {"rows", jrows}};
  atomic_write(out / "benchmark.json", j.dump(2));
  log::info("results in {}", (out / "benchmark.json").string());
}

}  // namespace

ModelBench bench_in_process(const fs::path& weights, const deploy::BenchmarkOptions& o) {
  auto im = deploy::load_inference_model(weights, {o.allow_inexact});
  ModelBench mb;
  mb.kind = im.kind;
  YQ_CHECK_USAGE(o.imgsz % im.max_stride == 0, "imgsz={} is not a multiple of the stride {} of {}", o.imgsz,
                 im.max_stride, weights.string());
  mb.result = deploy::benchmark_detector(im.detector, o);
  return mb;
}

// The yoloqat executable that times one configuration: exe= when given, else $YOLOQAT_EXE, else this
// process's own executable when it is yoloqat. Anything else (a test binary, a program linking the
// library) would not understand `benchmark child=true`, and re-running it could recurse: refused.
std::string child_executable(const std::string& exe) {
  if (!exe.empty()) return exe;
  if (const char* env = std::getenv("YOLOQAT_EXE"); env && *env) return env;
  const std::string self = self_executable();
  YQ_CHECK_USAGE(fs::path(self).filename().string().rfind("yoloqat", 0) == 0,
                 "{} is not the yoloqat executable, so it cannot time models in child processes: give "
                 "exe=PATH/TO/yoloqat (or set YOLOQAT_EXE), or isolate=false",
                 self);
  return self;
}

ModelBench bench_in_child(const std::string& exe, const fs::path& weights,
                          const deploy::BenchmarkOptions& o) {
  std::vector<std::string> argv = {child_executable(exe),
                                   "benchmark",
                                   "child=true",
                                   "weights=" + weights.string(),
                                   "imgsz=" + std::to_string(o.imgsz),
                                   "batch=" + std::to_string(o.batch),
                                   "threads=" + std::to_string(o.threads),
                                   "warmup=" + std::to_string(o.timing.warmup),
                                   "runs=" + std::to_string(o.timing.runs),
                                   "max_seconds=" + fmt_num(o.timing.max_seconds),
                                   "source=" + o.source.string(),
                                   "conf=" + fmt_num(o.nms.conf),
                                   "iou=" + fmt_num(o.nms.iou),
                                   std::string("allow_inexact=") + (o.allow_inexact ? "true" : "false"),
                                   "log=warn"};
  auto res = run_process(argv);
  YQ_CHECK(res.exit_code == 0, "the child process ({} benchmark child=true ...) failed with exit code {}: {}",
           argv[0], res.exit_code, last_lines(res.err, 5));
  auto j = find_json_line(res.out, kChildTag);
  YQ_CHECK(!j.is_null(), "the child process printed no result; its output ends with: {}",
           last_lines(res.out + res.err, 5));
  ModelBench mb;
  mb.kind = j.at("kind").get<std::string>();
  mb.result = deploy::BenchmarkResult::from_json(j.at("result"));
  return mb;
}

ModelBench bench_onnxruntime(const fs::path& ort_dir, const fs::path& model,
                             const deploy::BenchmarkOptions& o) {
  std::vector<std::string> argv = {"node",
                                   (ort_dir / "bench.mjs").string(),
                                   model.string(),
                                   std::to_string(o.batch),
                                   std::to_string(o.imgsz),
                                   std::to_string(o.threads),
                                   std::to_string(o.timing.warmup),
                                   std::to_string(o.timing.runs),
                                   fmt_num(o.timing.max_seconds)};
  auto res = run_process(argv);
  YQ_CHECK(res.exit_code == 0, "node bench.mjs failed with exit code {}: {}", res.exit_code,
           last_lines(res.err + res.out, 5));
  auto j = find_json_line(res.out, "times_ms");
  YQ_CHECK(!j.is_null(), "bench.mjs printed no result: {}", last_lines(res.out + res.err, 5));
  auto times = j.at("times_ms").get<std::vector<double>>();
  YQ_CHECK(!times.empty(), "bench.mjs timed no run");
  ModelBench mb;
  mb.kind = "onnx";
  mb.result =
      deploy::result_from_times(times, o.imgsz, o.batch, o.threads, j.at("peak_rss_mb").get<double>());
  return mb;
}

std::vector<std::string> display_names(const std::vector<std::string>& paths) {
  std::vector<std::string> out;
  std::map<std::string, int> count;
  for (const auto& p : paths) ++count[fs::path(p).filename().string()];
  for (const auto& p : paths) {
    fs::path f(p);
    const std::string name = f.filename().string();
    out.push_back(count[name] > 1 && f.has_parent_path() ? (f.parent_path().filename() / name).string()
                                                         : name);
  }
  return out;
}

Command benchmark_command() {
  Command c;
  c.name = "benchmark";
  c.summary = "latency p50/p90/p99, throughput, stage split, peak memory by model, batch and threads";
  c.declare = [](Schema& s) {
    s.texts("weights", "",
            "model files run by yoloqat (checkpoints fp32/PTQ/QAT, reference .pt, .onnx, int8)");
    s.texts("onnx", "",
            "ONNX files timed in ONNX Runtime in the same run (needs node + tools/ort/node_modules)");
    s.integer("imgsz", 640, "side of the square network input (multiple of 32)", 32, 8192);
    s.integers("batch", "1", "batch sizes", 1, 1024);
    s.integers("threads", "0", "thread counts (0 = all cores)", 0, 1024);
    s.integer("warmup", 5, "untimed runs before the timed ones", 0, 100000);
    s.integer("runs", 50, "timed runs (at most)", 1, 1000000);
    s.real("max_seconds", 0, "time budget of the timed runs per configuration (0 = none; at least 3 runs)", 0,
           1e6);
    s.text("source", "", "image to letterbox each run (\"\" = a synthetic 1280x720 image)");
    s.real("conf", 0.25, "NMS confidence threshold of the post-process", 0, 1);
    s.real("iou", 0.7, "NMS IoU threshold of the post-process", 0, 1);
    s.flag("isolate", true, "measure each configuration in a process of its own (peak memory per model)");
    s.text("exe", "", "yoloqat executable that runs each configuration (\"\" = this one)");
    s.text("ort_dir", "",
           "folder with bench.mjs and node_modules/onnxruntime-node (\"\" = tools/ort, found)");
    add_device_key(s);
    add_inexact_key(s);
    s.flag("child", false, "internal: run one configuration here and print it as JSON (used by isolate)");
    s.text("log", "info", "log level", {"trace", "debug", "info", "warn", "error", "off"});
    add_output_keys(s, "benchmark");
  };
  c.run = run_benchmark;
  return c;
}

}  // namespace yq::cli
