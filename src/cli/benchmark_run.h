// Shared by `yoloqat benchmark` and `yoloqat compare`: one model, batch size and thread count measured
// in a child process of its own (so its peak memory is that model's alone), or in this process; and
// ONNX models timed in ONNX Runtime through tools/ort/bench.mjs.
#pragma once

#include <string>
#include <vector>

#include "core/fs.h"
#include "deploy/benchmark.h"

namespace yq::cli {

struct ModelBench {
  std::string kind;  // "fp32", "ptq", "qat", "int8" (runtime.h) or "onnx" (ONNX Runtime)
  deploy::BenchmarkResult result;
};

// Runs `<exe> benchmark child=true weights=... imgsz batch threads ...` (exe "" = this executable), and
// reads the JSON line it prints. Throws yq::Error with the child's last messages when it fails.
ModelBench bench_in_child(const std::string& exe, const fs::path& weights, const deploy::BenchmarkOptions& o);

// The same in this process (peak memory then covers everything this process did before).
ModelBench bench_in_process(const fs::path& weights, const deploy::BenchmarkOptions& o);

// deploy::find_ort_dir (deploy/ort_session.h) finds the folder of bench.mjs.

// Times `model` in ONNX Runtime (inference only; pre_ms and post_ms stay 0) with o's batch, imgsz,
// threads and timing.
ModelBench bench_onnxruntime(const fs::path& ort_dir, const fs::path& model,
                             const deploy::BenchmarkOptions& o);

// A short display name for each path: the file name, or parent/file name where names repeat.
std::vector<std::string> display_names(const std::vector<std::string>& paths);

}  // namespace yq::cli
