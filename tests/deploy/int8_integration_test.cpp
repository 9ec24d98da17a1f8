// `yoloqat convert` and `val` of the int8 file, in process: a PTQ checkpoint of the tiny model
// (calibrated on random images) -> models/int8/NAME.int8 + NAME.json -> val on the tiny synthetic set,
// beside val of the PTQ checkpoint itself. A float checkpoint is refused.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <iostream>

#include "cli/command.h"
#include "core/error.h"
#include "deploy/int8_model.h"
#include "fixtures.h"
#include "model/checkpoint.h"
#include "quant/prepare.h"
#include "quant/qcheckpoint.h"
#include "quant/quant_test_util.h"
#include "test_util.h"

namespace yq::deploy {
namespace {

using yq::testing::TempDir;

TEST(Int8Cli, ConvertThenVal) {
  TempDir dir("int8cli");
  const fs::path data = yq::testing::write_tiny_dataset(dir.path(), 4, 6, 2, 96, 64);
  const auto mapping = quant::QConfigMapping::load("quantization.yaml");
  auto m = quant::testing::tiny_model(5, 7);  // zalo7: 7 classes
  model::YoloV8 fp32 = model::copy_model(*m);
  quant::prepare(*m, mapping);
  quant::enable_fake_quant(*m, false);
  {
    torch::NoGradGuard ng;
    for (uint64_t b = 0; b < 2; ++b) m->forward_raw(quant::testing::images(2, 64, 40 + b));
  }
  quant::freeze_quantizers(*m);
  quant::enable_fake_quant(*m, true);
  const fs::path ptq = dir / "models/checkpoints/ptq/tiny/ptq.pt";
  fs::create_directories(ptq.parent_path());
  quant::save_quantized_checkpoint(ptq, m, nullptr, nullptr, nlohmann::json::object(), mapping, "ptq");
  const fs::path fp = dir / "fp32.pt";
  model::save_checkpoint(fp, fp32, nullptr, nullptr, nlohmann::json::object());

  const std::string project = "project=" + dir.path().string();
  cli::run_subcommand("convert", {"weights=" + ptq.string(), project, "threads=2"});
  const fs::path out = dir / "models/int8/tiny.int8";
  ASSERT_TRUE(fs::exists(out));
  const auto summary = nlohmann::json::parse(read_text(dir / "models/int8/tiny.json"));
  EXPECT_EQ(summary["kind"], "ptq");
  EXPECT_EQ(summary["convs_float"], 0);
  EXPECT_GT(summary["convs_int8"].get<int64_t>(), 40);
  EXPECT_EQ(summary["file_bytes"].get<int64_t>(), int64_t(fs::file_size(out)));
  std::cout << "convert: " << summary["file_bytes"] << " bytes, " << summary["size_ratio"] << " x fp32, "
            << summary["seconds"] << " s\n";
  // A second convert gets a numbered name.
  cli::run_subcommand("convert", {"weights=" + ptq.string(), project, "engine=qnnpack"});
  EXPECT_TRUE(fs::exists(dir / "models/int8/tiny2.int8"));
  EXPECT_EQ(Int8Model::load(dir / "models/int8/tiny2.int8").engine(), "qnnpack");

  // Float checkpoints and int8 files are refused with a usage error.
  EXPECT_THROW(cli::run_subcommand("convert", {"weights=" + fp.string(), project}), UsageError);
  EXPECT_THROW(cli::run_subcommand("convert", {"weights=" + out.string(), project}), UsageError);

  // val reads the int8 file like any other weights=.
  for (const auto& [name, w] : {std::pair<std::string, fs::path>{"valint8", out}, {"valptq", ptq}}) {
    cli::run_subcommand("val", {"data=" + data.string(), "weights=" + w.string(), project, "name=" + name,
                                "imgsz=64", "batch=4", "workers=0", "plots=false", "threads=2"});
    const fs::path metrics = dir / ("reports/" + name + "/metrics.json");
    ASSERT_TRUE(fs::exists(metrics)) << metrics;
    std::cout << name << ": " << read_text(metrics).substr(0, 200) << "\n";
  }
  const auto mi = nlohmann::json::parse(read_text(dir / "reports/valint8/metrics.json"));
  EXPECT_EQ(mi["source"]["kind"], "int8");
}

}  // namespace
}  // namespace yq::deploy
