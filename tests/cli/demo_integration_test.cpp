// `yoloqat demo quick=true` end to end on a tiny model: every step of the pipeline runs and leaves its
// output (fp32 / PTQ / QAT / int8 checkpoints, the three exports, benchmark, compare, sensitivity,
// analyze, the HTML report), and the compare table has one row per model kind.
#include <gtest/gtest.h>

#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "core/fs.h"
#include "deploy/ort_session.h"
#include "fixtures.h"
#include "test_util.h"

namespace yq::cli {
namespace {

nlohmann::json read_json(const fs::path& p) {
  return nlohmann::json::parse(read_text(p));
}

TEST(Demo, QuickRunsEveryStep) {
  yq::testing::TempDir dir("demo");
  const fs::path model = yq::testing::write_tiny_model_yaml(dir.path());
  // benchmark / compare time each model in a child yoloqat process (this test binary is not one).
  ::setenv("YOLOQAT_EXE", YOLOQAT_BINARY, 1);
  run_subcommand("demo", {"quick=true", "project=" + dir.path().string(), "model=" + model.string(),
                          "threads=2", "log=warn"});
  for (const char* f :
       {"models/checkpoints/fp32/demo/best.pt", "models/checkpoints/ptq/demo/ptq.pt",
        "models/checkpoints/qat/demo/best.pt", "models/int8/demo.int8", "models/exported/onnx/demo.onnx",
        "models/exported/onnx-qdq/demo.onnx", "models/exported/tensorrt/demo.onnx",
        "reports/demo-sensitivity/sensitivity.json", "reports/demo-analyze/analyze.json",
        "reports/demo-benchmark/benchmark.json", "reports/demo-predict/predictions.json"})
    EXPECT_TRUE(fs::is_regular_file(dir / f)) << f;

  const auto cmp = read_json(dir / "reports/demo-compare/compare.json");
  std::vector<std::string> kinds;
  for (const auto& r : cmp["rows"]) {
    kinds.push_back(r.value("kind", ""));
    EXPECT_GT(r.value("p50_ms", 0.0), 0) << r.dump();
    EXPECT_GT(r.value("file_mb", 0.0), 0) << r.dump();
  }
  EXPECT_EQ(kinds, (std::vector<std::string>{"fp32", "ptq", "qat", "int8"}));

  // The exports validated in ONNX Runtime beside ours at the same square input, and ONNX Runtime's
  // predictions.json scored again (the same metrics exactly); skipped only without ONNX Runtime.
  std::string why;
  if (deploy::find_ort_dir("", why).empty()) {
    std::cout << "ONNX Runtime validation not checked: " << why << "\n";
  } else {
    for (const std::string format : {"onnx", "onnx-qdq"}) {
      const fs::path r = dir / "reports";
      const auto ours = read_json(r / ("demo-ortval-" + format + "-ours/metrics.json"));
      const auto ort = read_json(r / ("demo-ortval-" + format + "/metrics.json"));
      const auto scored = read_json(r / ("demo-ortval-" + format + "-scored/metrics.json"));
      EXPECT_TRUE(fs::is_regular_file(r / ("demo-ortval-" + format + "/predictions.json"))) << format;
      EXPECT_EQ(ort["source"]["runtime"], "onnxruntime") << format;
      EXPECT_EQ(ort["source"]["kind"], format);
      EXPECT_EQ(ours["source"]["rect"], false) << format;
      EXPECT_EQ(scored["mAP50-95"], ort["mAP50-95"]) << format;
      EXPECT_EQ(scored["mAP50"], ort["mAP50"]) << format;
      std::cout << format << ": mAP50-95 ours " << ours["mAP50-95"] << ", ONNX Runtime " << ort["mAP50-95"]
                << "\n";
    }
  }

  const std::string html = read_text(dir / "reports/demo-report/report.html");
  EXPECT_GT(html.size(), 10000u);
  EXPECT_NE(html.find("<svg"), std::string::npos);
  EXPECT_EQ(html.find("http://"), std::string::npos);
  EXPECT_EQ(html.find("https://"), std::string::npos);
}

}  // namespace
}  // namespace yq::cli
