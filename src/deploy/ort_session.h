// ONNX models run in ONNX Runtime from C++: one persistent `node tools/ort/serve.mjs MODEL THREADS`
// child per model (ONNX Runtime is available here only as the npm package onnxruntime-node, a test
// tool that scripts/setup installs into tools/ort/node_modules).
//
// Protocol (tools/ort/serve.mjs has the same text): text lines on the child's stdin/stdout, tensors as
// raw float32 files (little-endian, C order) in a private temporary folder of the session's.
//   child, once loaded:  {"ready": true, "input": NAME, "output": NAME, "ort": VERSION}
//                        (or {"ready": false, "error": ...} and exit code 1)
//   request:             run IN.bin D0,D1,... OUT.bin
//   reply:               ok E0,E1,... MS   |   error MESSAGE
//   end:                 quit (or closing its stdin); the child exits with code 0.
// The child's stderr is drained by ChildProcess and quoted when the child fails.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/fs.h"
#include "core/process.h"

namespace yq::eval {
struct Detector;
}

namespace yq::deploy {

// The folder holding serve.mjs, bench.mjs and node_modules/onnxruntime-node: `given` when not empty,
// else $YOLOQAT_SOURCE_DIR/tools/ort, else tools/ort in a parent folder of the running executable (up
// to 4 up). Sets `why_not` and returns "" when ONNX Runtime cannot run (no node, no package, no folder).
fs::path find_ort_dir(const std::string& given, std::string& why_not);

// What a detection ONNX file declares about itself (graph inputs/outputs and metadata props).
struct OnnxModelInfo {
  std::string input, output;       // names of the first graph input and of output0 (else the first output)
  int64_t batch = 0;               // the input's batch dim; 0 when symbolic (dynamic batch)
  int64_t height = 0, width = 0;   // the input's sides (the imgsz metadata when symbolic); 0 when unknown
  int64_t nc = 0;                  // output rows - 4, else the number of names in the metadata
  int64_t stride = 32;             // largest stride (metadata), 32 when absent
  std::vector<std::string> names;  // class names of the metadata (may be empty)
  bool qdq = false;                // the graph holds QuantizeLinear / DequantizeLinear nodes
  std::string target;              // quantization_target metadata (quant/target.h); "" when absent
  // int8_pair_bound metadata; for a QDQ graph without it (another tool's export) the full-range bound
  // 2 x 255 x 128, so that it is exact only where ONNX Runtime has VNNI. 0 for float graphs.
  int64_t pair_bound = 0;
  bool dynamic_batch() const { return batch == 0; }
};

// Reads `model` (a YOLOv8-style detection export). Throws yq::Error naming the file when it is not an
// ONNX model or has no input / output.
OnnxModelInfo read_onnx_info(const fs::path& model);

// One model open in ONNX Runtime (CPU) in a child node process. Not copyable.
class OrtSession {
 public:
  // Starts the child and waits until the model is loaded. Throws yq::Error with ONNX Runtime's message
  // when the model cannot be loaded or node cannot start.
  OrtSession(const fs::path& ort_dir, const fs::path& model, int threads);
  ~OrtSession();
  OrtSession(const OrtSession&) = delete;
  OrtSession& operator=(const OrtSession&) = delete;

  // Runs the model's first input on `input` (product(dims) float32 values, C order); returns the first
  // output's values and sets `out_dims`. Throws yq::Error on ONNX Runtime's refusal (wrong shape) or
  // when the child dies (its exit code and last stderr lines).
  std::vector<float> run(const float* input, const std::vector<int64_t>& dims,
                         std::vector<int64_t>& out_dims);

  const fs::path& model() const { return model_; }
  const std::string& input_name() const { return input_; }
  const std::string& output_name() const { return output_; }
  const std::string& ort_version() const { return version_; }
  double last_ms() const { return last_ms_; }  // ONNX Runtime's own time of the last run (ms)
  int64_t runs() const { return runs_; }

 private:
  fs::path model_, dir_;
  std::unique_ptr<ChildProcess> child_;
  std::string input_, output_, version_;
  double last_ms_ = 0;
  int64_t runs_ = 0;
};

// A detector whose forward runs `session`: images [B, 3, H, W] float 0..1 -> [B, 4 + nc, A] as the
// model returns it. With a fixed-batch model (`model_batch` > 0) a batch of another size runs in
// chunks of model_batch (the last one padded with zeros, its extra outputs dropped). The detector keeps
// the session alive.
eval::Detector ort_detector(std::shared_ptr<OrtSession> session, int64_t model_batch);

}  // namespace yq::deploy
