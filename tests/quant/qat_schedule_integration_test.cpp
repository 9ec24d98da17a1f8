// `yoloqat qat` with progressive stages and distillation on the tiny data set:
// stages=[backbone,neck,head] stage_epochs=1 epochs=3 distill=1.0, interrupted when the second stage
// starts and resumed with `resume=true` alone (the qat keys come back from the checkpoint); the distill
// column of results.csv, the teacher in the meta, and every quantizer on at the end.
#include <gtest/gtest.h>

#include <spdlog/sinks/base_sink.h>

#include <mutex>

#include "cli/command.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/log.h"
#include "fixtures.h"
#include "model/checkpoint.h"
#include "quant/prepare.h"
#include "test_util.h"
#include "train/trainer.h"

namespace yq::quant {
namespace {

using yq::testing::TempDir;

// Asks the trainer to stop when a log message contains `trigger`.
class InterruptSink : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit InterruptSink(std::string trigger) : trigger_(std::move(trigger)) {}
  bool fired = false;

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    if (!fired && std::string(msg.payload.data(), msg.payload.size()).find(trigger_) != std::string::npos) {
      fired = true;
      train::request_interrupt();
    }
  }
  void flush_() override {}

 private:
  std::string trigger_;
};

std::vector<std::string> csv_header(const fs::path& p) {
  const std::string text = read_text(p);
  std::vector<std::string> cols;
  std::stringstream ss(text.substr(0, text.find('\n')));
  std::string c;
  while (std::getline(ss, c, ',')) cols.push_back(c);
  return cols;
}

TEST(QatSchedule, StagesAndDistillationWithResume) {
  at::set_num_threads(2);
  TempDir dir("qatstages");
  const fs::path model_yaml = yq::testing::write_tiny_model_yaml(dir.path());
  const fs::path data_yaml = yq::testing::write_tiny_dataset(dir.path(), 16, 8, 4);
  auto common = [&](const std::string& name) {
    return std::vector<std::string>{"data=" + data_yaml.string(),
                                    "imgsz=64",
                                    "batch=8",
                                    "workers=1",
                                    "project=" + dir.path().string(),
                                    "name=" + name,
                                    "threads=2",
                                    "close_mosaic=1",
                                    "warmup_epochs=0",
                                    "nbs=8"};
  };
  auto fp_args = common("fp");
  fp_args.insert(fp_args.end(), {"model=" + model_yaml.string(), "epochs=1"});
  const cli::Command* train_cmd = cli::find_command("train");
  auto fp = train::train(cli::resolve_config(*train_cmd, "", fp_args));
  ASSERT_TRUE(fs::exists(fp.best));

  auto qat = common("staged");
  qat.insert(qat.end(), {"weights=" + fp.best.string(), "stages=[backbone,neck,head]", "stage_epochs=1",
                         "epochs=3", "distill=1.0", "freeze_observer_epoch=2", "freeze_bn_epoch=2"});
  auto sink = std::make_shared<InterruptSink>("QAT stage 2/3");
  log::logger().sinks().push_back(sink);
  EXPECT_THROW(cli::run_subcommand("qat", qat), Error);  // "QAT interrupted"
  log::logger().sinks().pop_back();
  ASSERT_TRUE(sink->fired);
  train::clear_interrupt();
  const fs::path last = dir / "models/checkpoints/qat/staged/last.pt";
  ASSERT_TRUE(fs::exists(last));
  {
    // Saved after epoch 1 (only the backbone quantized then).
    auto ck = model::load_checkpoint(last, false);
    EXPECT_EQ(ck.meta["epoch"], 0);
    EXPECT_TRUE(ck.meta["interrupted"].get<bool>());
  }

  // Resume with nothing but the run's name: stages, distillation and weights come from the checkpoint.
  cli::run_subcommand(
      "qat", {"resume=true", "name=staged", "project=" + dir.path().string(), "threads=2", "workers=1"});
  auto ck = model::load_checkpoint(last, false);
  EXPECT_TRUE(ck.meta["finished"].get<bool>());
  EXPECT_EQ(ck.meta["epoch"], 2);
  EXPECT_EQ(ck.meta["teacher"], fp.best.string());
  for (auto& [name, fq] : named_quantizers(*ck.raw)) {
    EXPECT_TRUE(fq->fake_quant_enabled()) << name;
    // Observers freeze at epoch 2, but the head's stage starts then: it observes in that epoch (its
    // first), so the last checkpoint (end of epoch 2) has its observers still on.
    if (name.rfind("model.22.", 0) == 0)
      EXPECT_TRUE(fq->observer_enabled()) << name;
    else
      EXPECT_FALSE(fq->observer_enabled()) << name;
  }

  // results.csv: the distillation column, 3 epochs, positive values.
  const fs::path csv = dir / "logs/qat/staged/results.csv";
  auto cols = csv_header(csv);
  auto it = std::find(cols.begin(), cols.end(), "train/distill_loss");
  ASSERT_NE(it, cols.end());
  const size_t col = size_t(it - cols.begin());
  std::stringstream ss(read_text(csv));
  std::string line;
  std::getline(ss, line);
  int rows = 0;
  while (std::getline(ss, line)) {
    if (line.empty()) continue;
    ++rows;
    std::vector<std::string> v;
    std::stringstream ls(line);
    std::string c;
    while (std::getline(ls, c, ',')) v.push_back(c);
    ASSERT_GT(v.size(), col);
    EXPECT_GT(std::stod(v[col]), 0.0) << line;
  }
  EXPECT_EQ(rows, 3);
}

}  // namespace
}  // namespace yq::quant
