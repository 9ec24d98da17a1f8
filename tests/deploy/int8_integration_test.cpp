// `yoloqat convert` and `val` of the int8 file, in process: a PTQ checkpoint of the tiny model
// (calibrated on random images) -> models/int8/NAME.int8 + NAME.json -> val on the tiny synthetic set,
// beside val of the PTQ checkpoint itself. A float checkpoint is refused.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <iostream>

#include "cli/command.h"
#include "core/cpu.h"
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

// A full-range (target x86-vnni) PTQ checkpoint: convert and val run it where oneDNN has VNNI; elsewhere
// (or under an ISA cap below VNNI: label isa) both refuse with the CPU feature named, unless
// allow_inexact=true.
TEST(Int8Cli, InexactTargetIsRefusedWhereItIsNotExact) {
  TempDir dir("int8inexact");
  const fs::path data = yq::testing::write_tiny_dataset(dir.path(), 2, 4, 2, 96, 64);
  auto mapping = quant::QConfigMapping::load("quantization.yaml");
  mapping.set_target(quant::Target::kX86Vnni);
  auto m = quant::testing::tiny_model(5, 7);
  quant::prepare(*m, mapping);
  quant::enable_fake_quant(*m, false);
  {
    torch::NoGradGuard ng;
    m->forward_raw(quant::testing::images(2, 64, 40));
  }
  quant::freeze_quantizers(*m);
  quant::enable_fake_quant(*m, true);
  const fs::path ptq = dir / "models/checkpoints/ptq/vnni/ptq.pt";
  fs::create_directories(ptq.parent_path());
  quant::save_quantized_checkpoint(ptq, m, nullptr, nullptr, nlohmann::json::object(), mapping, "ptq");
  const std::string project = "project=" + dir.path().string();
  const bool exact = quant::int8_exactness(quant::int8_pair_bound(*m), cpu_onednn(), "onednn").exact;
  const fs::path out = dir / "models/int8/vnni.int8";
  auto val = [&](const std::string& extra) {
    cli::run_subcommand("val", {"data=" + data.string(), "weights=" + out.string(), project, "name=v",
                                "imgsz=64", "batch=4", "workers=0", "plots=false", "threads=2", extra});
  };
  if (exact) {
    cli::run_subcommand("convert", {"weights=" + ptq.string(), project, "threads=2", "data=" + data.string(),
                                    "imgsz=64", "check_images=4"});
    const auto summary = nlohmann::json::parse(read_text(dir / "models/int8/vnni.json"));
    EXPECT_EQ(summary["target"], "x86-vnni");
    EXPECT_EQ(summary["exact_here"], true);
    EXPECT_EQ(summary["check"]["images"], 4);
    // Bit-identical outputs are reported as "inf".
    const auto& db = summary["check"]["sqnr_db"];
    EXPECT_TRUE(db == "inf" || (db.is_number() && db.get<double>() > 30.0)) << summary["check"];
    val("log=warn");
    return;
  }
  try {
    cli::run_subcommand("convert", {"weights=" + ptq.string(), project, "threads=2"});
    ADD_FAILURE() << "convert wrote a model that is not exact here";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("no VNNI"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(out));
  cli::run_subcommand("convert", {"weights=" + ptq.string(), project, "threads=2", "allow_inexact=true",
                                  "data=" + data.string(), "imgsz=64", "check_images=4"});
  const auto summary = nlohmann::json::parse(read_text(dir / "models/int8/vnni.json"));
  EXPECT_EQ(summary["exact_here"], false);
  std::cout << "inexact here: int8 vs fake quant SQNR " << summary["check"]["sqnr_db"] << " dB\n";
  EXPECT_THROW(val("log=warn"), UsageError);
  val("allow_inexact=true");
}

}  // namespace
}  // namespace yq::deploy
