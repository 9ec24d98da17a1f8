// `yoloqat info`: layer rows, totals and GFLOPs of SPEC-YOLOV8.md, and the command's JSON.
#include "model/info.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "core/cpu.h"
#include "core/error.h"
#include "core/fs.h"

namespace yq::model {
namespace {

TEST(ModelInfo, GflopsAt640WithinTwoPercentOfTheSpec) {
  // The reference reports 2 * MACs of the convs (thop) at 640.
  for (auto [name, gflops] : {std::pair<const char*, double>{"yolov8n", 8.7}, {"yolov8s", 28.6}}) {
    YoloV8 m(parse_model_name(name));
    auto s = summarize(*m, 640, 640);
    EXPECT_NEAR(s.gflops, gflops, 0.02 * gflops) << name;
  }
}

TEST(ModelInfo, RowsAddUpToTheTotals) {
  YoloV8 m(parse_model_name("yolov8n", 7));
  auto s = summarize(*m, 640, 640);
  ASSERT_EQ(s.rows.size(), 23u);
  int64_t params = 0;
  double gflops = 0;
  for (const auto& r : s.rows) params += r.params, gflops += r.gflops;
  EXPECT_EQ(params, s.params);
  EXPECT_EQ(s.params, 3012213);
  EXPECT_EQ(s.gradients, 3012213 - 16);
  EXPECT_EQ(s.state_entries, 355);
  EXPECT_NEAR(gflops, s.gflops, 1e-9);
  // Layer 0 by hand: 16 x 3 x 3 x 3 weights at 320 x 320 outputs, 2 FLOPs per MAC; BN adds 32 params.
  EXPECT_EQ(s.rows[0].params, 16 * 27 + 32);
  EXPECT_NEAR(s.rows[0].gflops, 2.0 * 16 * 27 * 320 * 320 / 1e9, 1e-12);
  EXPECT_EQ(s.rows[10].params, 0);  // Upsample
  EXPECT_EQ(s.rows[10].gflops, 0);
  // Convs scale with the pixel count: 320 x 320 has a quarter of the FLOPs, 640 x 320 half.
  EXPECT_NEAR(summarize(*m, 320, 320).gflops * 4, s.gflops, 1e-9);
  EXPECT_NEAR(summarize(*m, 640, 320).gflops * 2, s.gflops, 1e-9);
  EXPECT_THROW(summarize(*m, 100, 100), UsageError);
  const std::string table = format_summary(s);
  EXPECT_NE(table.find("[3, 16, 3, 2]"), std::string::npos);
  EXPECT_NE(table.find("3012213 parameters"), std::string::npos);
}

TEST(InfoCommand, PrintsAndWritesJson) {
  const fs::path json =
      fs::temp_directory_path() /
      ("yq_info_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + ".json");
  fs::remove(json);
  testing::internal::CaptureStdout();
  // threads=1: the command sets the process-wide thread count, which the other tests share.
  cli::run_subcommand("info",
                      {"model=yolov8n.yaml", "nc=58", "imgsz=320", "threads=1", "json=" + json.string()});
  const std::string out = testing::internal::GetCapturedStdout();
  EXPECT_NE(out.find("yolov8n summary (nc=58): 23 layers, 3022158 parameters"), std::string::npos) << out;
  auto j = nlohmann::json::parse(read_text(json));
  fs::remove(json);
  EXPECT_EQ(j["model"], "yolov8n");
  EXPECT_EQ(j["nc"], 58);
  EXPECT_EQ(j["imgsz"], nlohmann::json({320, 320}));
  EXPECT_EQ(j["parameters"], 3022158);
  EXPECT_EQ(j["state_entries"], 355);
  EXPECT_EQ(j["strides"], nlohmann::json({8, 16, 32}));
  ASSERT_EQ(j["layers"].size(), 23u);
  EXPECT_EQ(j["layers"][22]["module"], "Detect");
  EXPECT_EQ(j["layers"][22]["from"], nlohmann::json({15, 18, 21}));
  EXPECT_GT(j["gflops"].get<double>(), 1.5);
  EXPECT_LT(j["gflops"].get<double>(), 2.5);
  // The CPU's int8 features and, per deployment target, whether it runs exactly here: x86 always.
  EXPECT_NE(out.find("cpu: "), std::string::npos) << out;
  EXPECT_NE(out.find("x86-vnni"), std::string::npos) << out;
  ASSERT_EQ(j["cpu"]["targets"].size(), 4u);
  EXPECT_EQ(j["cpu"]["targets"][0]["target"], "x86");
  EXPECT_EQ(j["cpu"]["targets"][0]["exact_ours"], true);
  EXPECT_EQ(j["cpu"]["targets"][0]["exact_onnxruntime"], true);
  EXPECT_EQ(j["cpu"]["targets"][1]["exact_ours"], cpu_onednn().int32_dot());
  EXPECT_FALSE(j["cpu"]["model"].get<std::string>().empty());

  EXPECT_THROW(cli::run_subcommand("info", {"model=yolov9z", "threads=1"}), UsageError);
  EXPECT_THROW(cli::run_subcommand("info", {"imgsz=100", "threads=1"}), UsageError);
  EXPECT_THROW(cli::run_subcommand("info", {"modle=yolov8n", "threads=1"}), UsageError);
}

}  // namespace
}  // namespace yq::model
