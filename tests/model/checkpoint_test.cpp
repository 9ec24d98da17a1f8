#include "model/checkpoint.h"
#include "model/pt_load.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "test_util.h"

namespace yq::model {
namespace {

using yq::testing::TempDir;

TEST(Checkpoint, RoundTripKeepsWeightsNamesAndMeta) {
  TempDir t("ckpt");
  torch::manual_seed(1);
  YoloV8 m(tiny_model_spec(5));
  m->set_names({"a", "b", "c", "d", "e"});
  YoloV8 ema(tiny_model_spec(5));
  ema->set_names(m->names());
  {
    torch::NoGradGuard ng;
    for (auto& p : ema->parameters()) p.mul_(0.5);
  }
  auto opt = torch::optim::SGD(m->parameters(), torch::optim::SGDOptions(0.1).momentum(0.9));
  save_checkpoint(t / "ck.pt", m, &ema, &opt, {{"epoch", 3}, {"kind", "fp32"}});
  // Nothing but the checkpoint is left in the folder (the temporary file was renamed).
  int files = 0;
  for (const auto& e : fs::directory_iterator(t.path())) files += e.is_regular_file();
  EXPECT_EQ(files, 1);

  auto ck = load_checkpoint(t / "ck.pt", true);
  EXPECT_TRUE(ck.has_ema);
  EXPECT_EQ(ck.meta["epoch"], 3);
  EXPECT_EQ(ck.model->names(), m->names());
  EXPECT_EQ(ck.model->nc(), 5);
  auto x = torch::rand({1, 3, 64, 64});
  m->eval(), ema->eval(), ck.model->eval(), ck.raw->eval();
  EXPECT_TRUE(torch::allclose(ck.model->forward(x), ema->forward(x)));
  EXPECT_TRUE(torch::allclose(ck.raw->forward(x), m->forward(x)));
  auto no_ema = load_checkpoint(t / "ck.pt", false);
  no_ema.model->eval();
  EXPECT_TRUE(torch::allclose(no_ema.model->forward(x), m->forward(x)));
  load_optimizer_state(t / "ck.pt", opt);
}

TEST(Checkpoint, ClearErrors) {
  TempDir t("ckpterr");
  EXPECT_THROW(load_checkpoint(t / "missing.pt"), UsageError);
  yq::testing::write_file(t / "junk.pt", "not a checkpoint at all");
  try {
    load_checkpoint(t / "junk.pt");
    FAIL() << "junk loaded";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("junk.pt"), std::string::npos) << e.what();
  }
}

TEST(Checkpoint, StrictLoadNamesMismatches) {
  YoloV8 a(tiny_model_spec(5)), b(tiny_model_spec(7));
  try {
    load_named_state(*b, named_state(*a), true, "five.pt");
    FAIL() << "a 5-class state loaded into a 7-class model";
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("five.pt"), std::string::npos) << msg;
    EXPECT_NE(msg.find("model.22.cv3.0.2.weight"), std::string::npos) << msg;
    EXPECT_NE(msg.find("shape mismatch"), std::string::npos) << msg;
  }
  // Non-strict: everything but the class convs loads (transfer learning).
  int64_t loaded = load_named_state(*b, named_state(*a), false, "five.pt");
  EXPECT_EQ(loaded, int64_t(named_state(*b).size()) - 6);  // 3 levels x (weight, bias)
}

}  // namespace
}  // namespace yq::model

namespace yq::model {
namespace {

TEST(Checkpoint, LoadsReferenceCheckpointsTransparently) {
  const fs::path pt = fs::path(YOLOQAT_SOURCE_DIR) / "tests/model/fixtures/tiny.pt";
  ASSERT_TRUE(is_reference_checkpoint(pt));
  auto ck = load_checkpoint(pt);
  EXPECT_EQ(ck.meta["format"], "ultralytics");
  auto direct = model_from_checkpoint(pt);
  ck.model->eval(), direct->eval();
  auto x = torch::rand({1, 3, 64, 64});
  EXPECT_TRUE(torch::equal(ck.model->forward(x), direct->forward(x)));
  // Our own checkpoints are not mistaken for reference ones.
  yq::testing::TempDir t("ckref");
  save_checkpoint(t / "ours.pt", ck.model, nullptr, nullptr, {});
  EXPECT_FALSE(is_reference_checkpoint(t / "ours.pt"));
  EXPECT_EQ(load_checkpoint(t / "ours.pt").meta["format"], kCheckpointFormat);
}

}  // namespace
}  // namespace yq::model
