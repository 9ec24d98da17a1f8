// Runs ONNX models in ONNX Runtime for tests, through node and tools/ort/run.mjs (the npm package
// onnxruntime-node that scripts/setup installs into tools/ort/node_modules). Tests call
// ort_unavailable() first and GTEST_SKIP with its reason when node or the package is missing.
#pragma once

#include <torch/torch.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

#include "core/error.h"
#include "core/fs.h"

namespace yq::testing {

inline fs::path ort_tool_dir() {
  return fs::path(YOLOQAT_SOURCE_DIR) / "tools" / "ort";
}

// "" when ONNX Runtime can run, else why not.
inline std::string ort_unavailable() {
  if (std::system("node --version >/dev/null 2>&1") != 0) return "node is not installed (PATH has no `node`)";
  if (!fs::exists(ort_tool_dir() / "node_modules" / "onnxruntime-node" / "package.json"))
    return "onnxruntime-node is not installed in " + ort_tool_dir().string() + " (run scripts/setup)";
  return "";
}

// Runs `model` on `input` (float32, any shape) in ONNX Runtime on one thread; returns the first
// output with the dims ONNX Runtime reports. `work` is a folder for the raw files.
inline torch::Tensor run_ort(const fs::path& model, const torch::Tensor& input, const fs::path& work) {
  const auto x = input.detach().to(torch::kFloat32).contiguous();
  const fs::path in = work / "ort_in.bin", out = work / "ort_out.bin";
  atomic_write(in, std::string(static_cast<const char*>(x.data_ptr()), x.numel() * 4));
  std::string dims;
  for (int64_t d : x.sizes()) dims += (dims.empty() ? "" : ",") + std::to_string(d);
  const std::string cmd = "node '" + (ort_tool_dir() / "run.mjs").string() + "' '" + model.string() + "' '" +
                          in.string() + "' " + dims + " '" + out.string() + "' 1 2>&1";
  std::string text;
  FILE* p = ::popen(cmd.c_str(), "r");
  YQ_CHECK(p != nullptr, "cannot start {}", cmd);
  char buf[4096];
  while (size_t n = std::fread(buf, 1, sizeof buf, p)) text.append(buf, n);
  const int rc = ::pclose(p);
  YQ_CHECK(rc == 0, "ONNX Runtime failed ({}): {}", cmd, text);
  // The last line is {"input": ..., "output": ..., "dims": [d0, d1, ...], "ms": ...}.
  const auto open = text.rfind("\"dims\":[");
  YQ_CHECK(open != std::string::npos, "unexpected output of run.mjs: {}", text);
  std::vector<int64_t> shape;
  for (size_t i = open + 8; i < text.size() && text[i] != ']';) {
    size_t used = 0;
    shape.push_back(std::stoll(text.substr(i), &used));
    i += used;
    if (i < text.size() && text[i] == ',') ++i;
  }
  const std::string bytes = read_text(out);
  auto y = torch::empty(shape, torch::kFloat32);
  YQ_CHECK(int64_t(bytes.size()) == y.numel() * 4, "{}: {} bytes for dims of {} values", out.string(),
           bytes.size(), y.numel());
  std::memcpy(y.data_ptr(), bytes.data(), bytes.size());
  return y;
}

}  // namespace yq::testing
