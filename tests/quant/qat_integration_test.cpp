// The quantization pipeline end to end on a tiny model and data set: fp32 training, `calibrate`
// (PTQ checkpoint + fp32/PTQ validation), `val` of the PTQ checkpoint, `qat` from the PTQ checkpoint and
// from the fp32 one (checkpoints of kind qat with their qconfig, logs under logs/qat).
#include <gtest/gtest.h>

#include <iostream>

#include "cli/command.h"
#include "core/error.h"
#include "core/fs.h"
#include "test_util.h"
#include "fixtures.h"
#include "model/checkpoint.h"
#include "quant/prepare.h"
#include "quant/qcheckpoint.h"
#include "train/trainer.h"

namespace yq::quant {
namespace {

using yq::testing::TempDir;

class QatPipeline : public ::testing::Test {
 protected:
  void SetUp() override {
    at::set_num_threads(2);
    model_yaml_ = yq::testing::write_tiny_model_yaml(dir_.path());
    data_yaml_ = yq::testing::write_tiny_dataset(dir_.path(), 16, 8, 4);
  }
  std::vector<std::string> common(const std::string& name) {
    return {"data=" + data_yaml_.string(),     "imgsz=64",     "batch=8",  "workers=1",
            "project=" + dir_.path().string(), "name=" + name, "threads=2"};
  }
  std::vector<std::string> train_args(const std::string& name, int epochs) {
    auto a = common(name);
    a.insert(a.end(), {"model=" + model_yaml_.string(), "epochs=" + std::to_string(epochs),
                       std::string("close_mosaic=1"), std::string("warmup_epochs=0"), std::string("nbs=8")});
    return a;
  }
  TempDir dir_{"qatpipe"};
  fs::path model_yaml_, data_yaml_;
};

TEST_F(QatPipeline, CalibrateValAndQat) {
  const cli::Command* train = cli::find_command("train");
  auto fp = train::train(cli::resolve_config(*train, "", train_args("fp", 1)));
  ASSERT_TRUE(fs::exists(fp.best));

  // PTQ.
  auto cal = common("ptq");
  cal.push_back("weights=" + fp.best.string());
  cal.push_back("batches=2");
  cli::run_subcommand("calibrate", cal);
  const fs::path ptq = dir_ / "models/checkpoints/ptq/ptq/ptq.pt";
  ASSERT_TRUE(fs::exists(ptq));
  EXPECT_TRUE(fs::exists(dir_ / "models/checkpoints/ptq/ptq/args.yaml"));
  EXPECT_TRUE(fs::exists(dir_ / "models/checkpoints/ptq/ptq/metrics.json"));
  auto ck = load_quantized_checkpoint(ptq);
  EXPECT_EQ(ck.meta["kind"], "ptq");
  for (auto& [name, fq] : named_quantizers(*ck.model)) EXPECT_FALSE(fq->observer_enabled()) << name;

  // A quantized checkpoint cannot be calibrated again.
  auto again = common("ptq2");
  again.push_back("weights=" + ptq.string());
  EXPECT_THROW(cli::run_subcommand("calibrate", again), UsageError);

  // val reads the PTQ checkpoint transparently.
  auto val = common("valptq");
  val.push_back("weights=" + ptq.string());
  val.push_back("plots=false");
  cli::run_subcommand("val", val);
  EXPECT_TRUE(fs::exists(dir_ / "reports/valptq/metrics.json"));

  // QAT from the PTQ checkpoint (its qconfig), observers and BN frozen from the second epoch.
  auto qat = train_args("fromptq", 2);
  qat.push_back("weights=" + ptq.string());
  qat.push_back("freeze_observer_epoch=1");
  qat.push_back("freeze_bn_epoch=1");
  cli::run_subcommand("qat", qat);
  const fs::path last = dir_ / "models/checkpoints/qat/fromptq/last.pt";
  ASSERT_TRUE(fs::exists(last));
  EXPECT_TRUE(fs::exists(dir_ / "logs/qat/fromptq/results.csv"));
  auto q = model::load_checkpoint(last);
  EXPECT_EQ(q.meta["kind"], "qat");
  EXPECT_TRUE(is_prepared(*q.model));
  EXPECT_EQ(checkpoint_qconfig(q.meta, last.string()).to_yaml(),
            checkpoint_qconfig(ck.meta, "ptq").to_yaml());
  // Observers were frozen in the last epoch.
  for (auto& [name, fq] : named_quantizers(*q.raw)) EXPECT_FALSE(fq->observer_enabled()) << name;

  // QAT from the fp32 checkpoint with another qconfig; asking a PTQ checkpoint for another qconfig fails.
  auto qat2 = train_args("fromfp32", 1);
  qat2.push_back("weights=" + fp.best.string());
  qat2.push_back("qconfig=experiments/exp1_symmetric_quant.yaml");
  qat2.push_back("val=false");
  cli::run_subcommand("qat", qat2);
  auto q2 = model::load_checkpoint(dir_ / "models/checkpoints/qat/fromfp32/last.pt");
  EXPECT_EQ(checkpoint_qconfig(q2.meta, "q2").name(), "tensorrt");
  auto bad = train_args("bad", 1);
  bad.push_back("weights=" + ptq.string());
  bad.push_back("qconfig=experiments/exp1_symmetric_quant.yaml");
  EXPECT_THROW(cli::run_subcommand("qat", bad), UsageError);

  // The numbers (tiny model, 1 epoch: for the record, not a quality bar).
  const auto m = nlohmann::json::parse(read_text(dir_ / "models/checkpoints/ptq/ptq/metrics.json"));
  for (const char* k : {"fp32", "ptq"})
    std::cout << k << " mAP50 " << m[k]["mAP50"] << " mAP50-95 " << m[k]["mAP50-95"] << "\n";
  std::cout << "qat (from ptq) " << q.meta["metrics"].dump() << "\n";
}

}  // namespace
}  // namespace yq::quant
