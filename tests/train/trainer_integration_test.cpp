// End-to-end training on a tiny model and data set: checkpoints, results.csv, TensorBoard, resume
// after an interruption, the NaN guard; then val and predict on the checkpoint.
#include "train/trainer.h"

#include <gtest/gtest.h>

#include "cli/command.h"
#include "core/csv_log.h"
#include "core/error.h"
#include "fixtures.h"
#include "model/checkpoint.h"
#include "test_util.h"

namespace yq::train {
namespace {

using yq::testing::TempDir;

Config train_config(const std::vector<std::string>& args) {
  const cli::Command* cmd = cli::find_command("train");
  return cli::resolve_config(*cmd, "", args);
}

class TrainerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    at::set_num_threads(2);
    model_yaml_ = yq::testing::write_tiny_model_yaml(dir_.path());
    data_yaml_ = yq::testing::write_tiny_dataset(dir_.path(), 16, 8, 4);
  }
  std::vector<std::string> base_args(const std::string& name, int epochs) {
    return {"data=" + data_yaml_.string(),
            "model=" + model_yaml_.string(),
            "epochs=" + std::to_string(epochs),
            "imgsz=64",
            "batch=8",
            "workers=1",
            "project=" + dir_.path().string(),
            "name=" + name,
            "threads=2",
            "close_mosaic=1",
            "warmup_epochs=0",
            "nbs=8"};
  }
  TempDir dir_{"trainer"};
  fs::path model_yaml_, data_yaml_;
};

TEST_F(TrainerTest, TrainsWritesOutputsAndResumesAfterAnInterruption) {
  // Interrupted in the second epoch: the checkpoint says epoch 1 is done.
  TrainHooks stop;
  stop.after_batch = [](int epoch, int64_t batch, model::YoloV8Impl&) {
    if (epoch == 1 && batch == 0) request_interrupt();
  };
  auto r = train(train_config(base_args("run", 3)), stop);
  EXPECT_TRUE(r.interrupted);
  ASSERT_TRUE(fs::exists(r.last));
  auto ck = model::load_checkpoint(r.last);
  EXPECT_EQ(ck.meta["epoch"], 0);
  EXPECT_TRUE(ck.meta["interrupted"].get<bool>());
  EXPECT_EQ(read_csv_log(r.log_dir / "results.csv").rows.size(), 1u);

  // Resume: continues with epochs 2 and 3 in the same run folder.
  clear_interrupt();
  auto args = base_args("run", 3);
  args.push_back("resume=true");
  auto r2 = train(train_config(args));
  EXPECT_FALSE(r2.interrupted);
  EXPECT_EQ(r2.run_dir, r.run_dir);
  EXPECT_EQ(r2.epochs_done, 2);
  auto csv = read_csv_log(r.log_dir / "results.csv");
  ASSERT_EQ(csv.rows.size(), 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(csv.rows[i][0], double(i + 1));
  auto done = model::load_checkpoint(r2.last);
  EXPECT_EQ(done.meta["epoch"], 2);
  EXPECT_TRUE(done.meta["finished"].get<bool>());
  EXPECT_GT(done.meta["updates"].get<int64_t>(), 0) << done.meta.dump();
  EXPECT_TRUE(fs::exists(r2.best));
  // A finished run's best.pt holds the EMA weights only; last.pt keeps raw weights and optimizer.
  auto best = model::load_checkpoint(r2.best);
  EXPECT_FALSE(best.has_ema);
  EXPECT_FALSE(best.has_optimizer);
  EXPECT_TRUE(done.has_ema && done.has_optimizer);
  EXPECT_LT(fs::file_size(r2.best), fs::file_size(r2.last) / 2);
  if (done.meta["best_epoch"] == done.meta["epoch"]) {  // best == last epoch: same EMA weights
    auto a = model::named_state(*best.model), b = model::named_state(*done.model);
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i].second, b[i].second)) << a[i].first;
  }
  EXPECT_TRUE(fs::exists(r2.log_dir / "metrics.json"));
  bool tb = false;
  for (const auto& e : fs::directory_iterator(dir_.path() / "logs/tensorboard/run"))
    tb = tb || e.path().filename().string().rfind("events.out.tfevents.", 0) == 0;
  EXPECT_TRUE(tb);
  // A finished run refuses to resume.
  EXPECT_THROW(train(train_config(args)), UsageError);

  // val and predict accept the checkpoint.
  cli::run_subcommand("val", {"data=" + data_yaml_.string(), "weights=" + r2.best.string(), "imgsz=64",
                              "project=" + dir_.path().string(), "threads=2", "save_json=true"});
  EXPECT_TRUE(fs::exists(dir_.path() / "reports/val/metrics.json"));
  EXPECT_TRUE(fs::exists(dir_.path() / "reports/val/confusion_matrix.png"));
  EXPECT_TRUE(fs::exists(dir_.path() / "reports/val/predictions.json"));
  // Scoring our own predictions file gives the same mAP as the model run.
  cli::run_subcommand("val", {"data=" + data_yaml_.string(),
                              "predictions=" + (dir_.path() / "reports/val/predictions.json").string(),
                              "project=" + dir_.path().string(), "name=fromfile", "threads=2"});
  auto a = nlohmann::json::parse(read_text(dir_.path() / "reports/val/metrics.json"));
  auto b = nlohmann::json::parse(read_text(dir_.path() / "reports/fromfile/metrics.json"));
  EXPECT_NEAR(a["mAP50-95"].get<double>(), b["mAP50-95"].get<double>(), 1e-6);
  cli::run_subcommand("predict", {"weights=" + r2.best.string(),
                                  "source=" + (data_yaml_.parent_path() / "test/images").string(), "imgsz=64",
                                  "conf=0.01", "project=" + dir_.path().string(), "threads=2"});
  EXPECT_TRUE(fs::exists(dir_.path() / "reports/predict/predictions.json"));
  EXPECT_TRUE(fs::exists(dir_.path() / "reports/predict/labels"));
}

TEST_F(TrainerTest, DivergingLossStopsWithoutACheckpoint) {
  // Poison a weight after the first batch: the next loss is NaN and the run stops with a message,
  // writing no checkpoint for the broken epoch.
  TrainHooks poison;
  poison.after_batch = [](int, int64_t batch, model::YoloV8Impl& m) {
    if (batch != 0) return;
    torch::NoGradGuard ng;
    m.named_parameters(true)["model.0.conv.weight"].fill_(std::nan(""));
  };
  try {
    train(train_config(base_args("nan", 1)), poison);
    FAIL() << "a NaN loss did not stop training";
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("the loss became nan"), std::string::npos) << msg;
    EXPECT_NE(msg.find("epoch 1 batch 2"), std::string::npos) << msg;
  }
  EXPECT_FALSE(fs::exists(dir_.path() / "models/checkpoints/fp32/nan/last.pt"));
}

TEST_F(TrainerTest, BadDataIsAUsageError) {
  auto args = base_args("bad", 1);
  args[0] = "data=" + (dir_.path() / "missing.yaml").string();
  EXPECT_THROW(train(train_config(args)), UsageError);
}

}  // namespace
}  // namespace yq::train

namespace yq::train {
namespace {

// Fine-tuning from a reference YOLOv8 checkpoint of another class count: all but the class convs load.
TEST_F(TrainerTest, FineTunesFromAReferenceCheckpoint) {
  auto args = base_args("ref", 1);
  args[1] = "weights=" + (fs::path(YOLOQAT_SOURCE_DIR) / "tests/model/fixtures/tiny.pt").string();
  auto r = train(train_config(args));
  EXPECT_EQ(r.epochs_done, 1);
  auto ck = model::load_checkpoint(r.last);
  EXPECT_EQ(ck.model->nc(), 7);
}

}  // namespace
}  // namespace yq::train
