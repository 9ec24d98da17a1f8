// Full-size check: yolov8n at 640 (random weights, nc 7) exported and run in ONNX Runtime (~3 s).
#include <gtest/gtest.h>

#include <chrono>

#include "test_util.h"
#include "deploy/export_fixtures.h"
#include "deploy/onnx_export.h"
#include "deploy/ort_util.h"

namespace yq::deploy {
namespace {

TEST(OnnxExportFull, Yolov8nAt640MatchesInOnnxRuntime) {
  const std::string why = yq::testing::ort_unavailable();
  if (!why.empty()) GTEST_SKIP() << "ONNX Runtime check skipped: " << why;
  yq::testing::TempDir t("onnx_n640");
  model::YoloV8 m(model::parse_model_name("yolov8n", 7));
  yq::testing::randomize_for_export(m, 11);
  const auto t0 = std::chrono::steady_clock::now();
  const auto r = export_onnx(*m, t / "yolov8n.onnx");
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(r.anchors, 8400);
  torch::manual_seed(12);
  auto x = torch::rand({1, 3, 640, 640});
  torch::Tensor ref;
  {
    torch::NoGradGuard ng;
    ref = m->forward(x);
  }
  auto y = yq::testing::run_ort(t / "yolov8n.onnx", x, t.path());
  ASSERT_EQ(y.sizes(), ref.sizes());
  const auto d = yq::testing::compare(y, ref);
  const auto box = yq::testing::compare(y.slice(1, 0, 4), ref.slice(1, 0, 4));
  const auto cls = yq::testing::compare(y.slice(1, 4), ref.slice(1, 4));
  std::printf(
      "[yolov8n 640, nc 7] export %.2f s, %lld bytes, %lld nodes; max abs %.3g, max rel %.3g; "
      "boxes %.3g abs %.3g rel; scores %.3g abs\n",
      seconds, static_cast<long long>(r.bytes), static_cast<long long>(r.nodes), d.max_abs, d.max_rel,
      box.max_abs, box.max_rel, cls.max_abs);
  EXPECT_LE(d.max_rel, yq::testing::kFp32RelTol) << "max abs " << d.max_abs;
}

}  // namespace
}  // namespace yq::deploy
