// The keys users of the reference tool (ultralytics YOLOv8) type: model= of a checkpoint is weights=
// in every command that runs one, the reference's other spellings are named as ours in the error,
// model= / nc= that contradict the weights are errors, device= is accepted (cpu) or refused with a
// reason, and val without data= uses the data set the checkpoint was trained on.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "core/error.h"
#include "fixtures.h"
#include "model/checkpoint.h"
#include "test_util.h"

namespace yq::cli {
namespace {

using yq::testing::TempDir;

std::string usage_error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const UsageError& e) {
    return e.what();
  }
  return "";
}

Config resolve(const std::string& command, const std::vector<std::string>& args) {
  const Command* cmd = find_command(command);
  EXPECT_NE(cmd, nullptr) << command;
  return resolve_config(*cmd, "", args);
}

// One tiny data set and one checkpoint trained on it (1 epoch) for every test.
class Keys : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    at::set_num_threads(2);
    dir_ = new TempDir("keys");
    model_yaml_ = yq::testing::write_tiny_model_yaml(dir_->path()).string();
    data_yaml_ = yq::testing::write_tiny_dataset(dir_->path(), 8, 4, 2, 96, 64).string();
    run_subcommand("train", {"data=" + data_yaml_, "model=" + model_yaml_, "epochs=1", "imgsz=64", "batch=4",
                             "workers=1", "threads=2", "warmup_epochs=0", "nbs=4", "val=false",
                             "project=" + dir_->path().string(), "name=fp32", "log=warn"});
    weights_ = (dir_->path() / "models/checkpoints/fp32/fp32/best.pt").string();
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static std::string project() { return "project=" + dir_->path().string(); }
  static fs::path reports() { return dir_->path() / "reports"; }

  static TempDir* dir_;
  static std::string model_yaml_, data_yaml_, weights_;
};
TempDir* Keys::dir_ = nullptr;
std::string Keys::model_yaml_, Keys::data_yaml_, Keys::weights_;

// Wall 1: `model=FILE.pt` means "start from these weights" wherever a command runs or starts from one.
TEST_F(Keys, ModelOfACheckpointIsWeights) {
  ASSERT_TRUE(fs::is_regular_file(weights_));
  for (const char* command : {"train", "val", "predict", "export", "calibrate", "qat"}) {
    Config c = resolve(command, {"model=" + weights_});
    EXPECT_EQ(c.get_str("weights"), weights_) << command;
    EXPECT_FALSE(c.is_set("model")) << command;
    EXPECT_NE(c.origin("weights").find("model="), std::string::npos)
        << command << ": " << c.origin("weights");
  }
  // A model config keeps its meaning where model= is one.
  for (const char* command : {"train", "export", "info"}) {
    for (const std::string& m : std::vector<std::string>{"yolov8s", "yolov8s.yaml", model_yaml_}) {
      Config c = resolve(command, {"model=" + m});
      EXPECT_EQ(c.get_str("model"), m) << command;
      if (c.schema().find("weights")) EXPECT_EQ(c.get_str("weights"), "") << command;
    }
  }
  // It runs: val, predict and export of model=best.pt.
  run_subcommand("val", {"data=" + data_yaml_, "model=" + weights_, "imgsz=64", "plots=false", "workers=1",
                         project(), "name=v-model", "log=warn"});
  EXPECT_TRUE(fs::is_regular_file(reports() / "v-model/metrics.json"));
  const fs::path image = fs::path(data_yaml_).parent_path() / "test/images";
  run_subcommand("predict", {"model=" + weights_, "source=" + image.string(), "imgsz=64", "save=false",
                             project(), "name=p-model", "log=warn"});
  EXPECT_TRUE(fs::is_regular_file(reports() / "p-model/predictions.json"));
  run_subcommand("export", {"model=" + weights_, "imgsz=64", project(), "name=e-model", "log=warn"});
  EXPECT_TRUE(fs::is_regular_file(dir_->path() / "models/exported/onnx/e-model.onnx"));

  // Missing weights: yoloqat does not download. A model config where only weights make sense. Two
  // different weights at once.
  std::string e = usage_error_of([] { resolve("val", {"model=yolov8n.pt"}); });
  EXPECT_NE(e.find("does not download"), std::string::npos) << e;
  e = usage_error_of([] { resolve("predict", {"model=yolov8n"}); });
  EXPECT_NE(e.find("weights=FILE"), std::string::npos) << e;
  e = usage_error_of([&] { resolve("train", {"model=" + weights_, "weights=" + model_yaml_}); });
  EXPECT_NE(e.find("give one of them"), std::string::npos) << e;
  EXPECT_NO_THROW(resolve("train", {"model=" + weights_, "weights=" + weights_}));
}

// Wall 2: the reference's spellings of our keys are named in the error.
TEST_F(Keys, ReferenceSpellingsNameOurs) {
  struct Case {
    const char* command;
    const char* arg;
    const char* expect;
  };
  const Case cases[] = {
      {"val", "save_txt=true", "yoloqat calls it 'save_json'"},
      {"predict", "save_conf=true", "yoloqat calls it 'save_txt'"},
      {"train", "pretrained=x.pt", "yoloqat calls it 'weights'"},
      {"export", "int8=true", "yoloqat calls it 'format'"},
      {"val", "int8=true", "yoloqat calls it 'weights'"},
      {"export", "half=true", "not fp16"},
      {"val", "dnn=true", "yoloqat calls it 'runtime'"},
      {"val", "source=images", "yoloqat calls it 'data'"},
      {"val", "conf_thres=0.1", "yoloqat calls it 'conf'"},
      {"predict", "img_size=320", "yoloqat calls it 'imgsz'"},
      {"train", "batch_size=8", "yoloqat calls it 'batch'"},
      {"train", "cfg=hyp.yaml", "yoloqat calls it '--config'"},
      {"convert", "model=x.pt", "yoloqat calls it 'weights'"},
      {"stats", "device=cpu", "only the commands that run a model"},
  };
  for (const auto& c : cases) {
    const std::string e = usage_error_of([&] { resolve(c.command, {c.arg}); });
    EXPECT_NE(e.find(std::string("unknown key '") +
                     std::string(c.arg).substr(0, std::string(c.arg).find('=')) + "'"),
              std::string::npos)
        << c.command << " " << c.arg << ": " << e;
    EXPECT_NE(e.find(c.expect), std::string::npos) << c.command << " " << c.arg << ": " << e;
  }
}

// Wall 3: an explicit model= or nc= that contradicts the weights is an error, not silently ignored.
TEST_F(Keys, KeysThatContradictTheWeightsAreErrors) {
  std::string e = usage_error_of([&] {
    run_subcommand("qat", {"data=" + data_yaml_, "weights=" + weights_, "model=yolov8s", "epochs=1",
                           "imgsz=64", "batch=4", "workers=1", project(), "name=q-conflict", "log=warn"});
  });
  EXPECT_NE(e.find("model=yolov8s conflicts with weights="), std::string::npos) << e;
  e = usage_error_of([&] {
    run_subcommand("train", {"data=" + data_yaml_, "weights=" + weights_, "model=yolov8n.yaml", "epochs=1",
                             "imgsz=64", "batch=4", "workers=1", project(), "name=t-conflict", "log=warn"});
  });
  EXPECT_NE(e.find("conflicts with weights="), std::string::npos) << e;
  e = usage_error_of([&] {
    run_subcommand("export", {"weights=" + weights_, "model=yolov8s", "imgsz=64", project(), "log=warn"});
  });
  EXPECT_NE(e.find("conflicts with weights="), std::string::npos) << e;
  e = usage_error_of([&] {
    run_subcommand("export", {"weights=" + weights_, "nc=3", "imgsz=64", project(), "log=warn"});
  });
  EXPECT_NE(e.find("nc=3 conflicts with weights="), std::string::npos) << e;
  EXPECT_NE(e.find("7 classes"), std::string::npos) << e;
  // model= of the weights' own architecture, nc= of their own class count: fine.
  run_subcommand("export", {"weights=" + weights_, "model=" + model_yaml_, "nc=7", "imgsz=64", project(),
                            "name=e-agree", "log=warn"});
  EXPECT_TRUE(fs::is_regular_file(dir_->path() / "models/exported/onnx/e-agree.onnx"));
}

// Wall 4: device= in the commands that run models: cpu runs, a GPU is refused with the reason.
TEST_F(Keys, DeviceIsCpuOrAClearRefusal) {
  for (const char* command :
       {"train", "val", "predict", "export", "calibrate", "qat", "convert", "benchmark", "compare", "demo"}) {
    Config c = resolve(command, {"device=cpu"});
    EXPECT_NO_THROW(apply_runtime(c)) << command;
    for (const char* d : {"cuda", "cuda:0", "0", "0,1"}) {
      Config g = resolve(command, {std::string("device=") + d, "log=warn"});
      const std::string e = usage_error_of([&] { apply_runtime(g); });
      EXPECT_NE(e.find(std::string("device=") + d + ":"), std::string::npos) << command << ": " << e;
      EXPECT_NE(e.find("device=cpu"), std::string::npos) << e;
    }
  }
  Config g = resolve("val", {"device=cuda", "log=warn"});
  if (!torch::cuda::is_available()) {
    const std::string e = usage_error_of([&] { apply_runtime(g); });
    EXPECT_NE(e.find("without CUDA"), std::string::npos) << e;
  }
  Config bad = resolve("val", {"device=gpu", "log=warn"});
  EXPECT_NE(usage_error_of([&] { apply_runtime(bad); }).find("expected cpu"), std::string::npos);
  // The refusal comes before any work.
  EXPECT_THROW(run_subcommand("val", {"data=" + data_yaml_, "weights=" + weights_, "device=0", project(),
                                      "name=v-gpu", "log=warn"}),
               UsageError);
  EXPECT_FALSE(fs::exists(reports() / "v-gpu"));
}

// Wall 5: val without data= evaluates on the data set the checkpoint records; none recorded is an error.
TEST_F(Keys, ValWithoutDataUsesTheRecordedDataSet) {
  const auto meta = model::load_checkpoint(weights_, false).meta;
  ASSERT_EQ(meta.value("data", ""), fs::absolute(data_yaml_).lexically_normal().string());
  run_subcommand("val", {"weights=" + weights_, "imgsz=64", "plots=false", "workers=1", project(),
                         "name=v-recorded", "log=warn"});
  const auto j = nlohmann::json::parse(read_text(reports() / "v-recorded/metrics.json"));
  EXPECT_EQ(j["data"], meta["data"]);

  // A checkpoint that records no data set, and one whose data set is gone.
  auto ck = model::load_checkpoint(weights_, true);
  const fs::path none = dir_->path() / "no-data.pt", gone = dir_->path() / "gone-data.pt";
  model::save_checkpoint(none, ck.model, nullptr, nullptr, {{"kind", "fp32"}});
  model::save_checkpoint(gone, ck.model, nullptr, nullptr,
                         {{"kind", "fp32"}, {"data", (dir_->path() / "gone/dataset.yaml").string()}});
  std::string e = usage_error_of([&] { run_subcommand("val", {"weights=" + none.string(), "log=warn"}); });
  EXPECT_NE(e.find("records no data set"), std::string::npos) << e;
  e = usage_error_of([&] { run_subcommand("val", {"weights=" + gone.string(), "log=warn"}); });
  EXPECT_NE(e.find("which is not here"), std::string::npos) << e;
  e = usage_error_of([&] { run_subcommand("val", {"log=warn"}); });
  EXPECT_NE(e.find("weights="), std::string::npos) << e;
}

}  // namespace
}  // namespace yq::cli
