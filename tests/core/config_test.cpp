#include "core/config.h"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include "cli/command.h"
#include "core/error.h"
#include "core/reference_keys.h"

namespace yq {
namespace {

Schema demo_schema() {
  Schema s;
  s.integer("epochs", 100, "epochs", 1, 10000)
      .real("lr0", 0.01, "initial lr", 0, 1)
      .flag("cos_lr", false, "cosine schedule")
      .text("optimizer", "auto", "optimizer", {"auto", "SGD", "AdamW"})
      .integers("imgsz", "640,384", "image size", 32, 8192)
      .texts("stages", "backbone,neck,head", "stages");
  return s;
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const UsageError& e) {
    return e.what();
  }
  return "";
}

TEST(Config, DefaultsAndTypes) {
  Config c(demo_schema());
  EXPECT_EQ(c.get_int("epochs"), 100);
  EXPECT_DOUBLE_EQ(c.get_float("lr0"), 0.01);
  EXPECT_FALSE(c.get_bool("cos_lr"));
  EXPECT_EQ(c.get_str("optimizer"), "auto");
  EXPECT_EQ(c.get_ints("imgsz"), (std::vector<int64_t>{640, 384}));
  EXPECT_EQ(c.get_strs("stages").size(), 3u);
  EXPECT_FALSE(c.is_set("epochs"));
}

TEST(Config, LayeringLaterWins) {
  Config c(demo_schema());
  c.merge_yaml("epochs: 5\nlr0: 0.02\n", "base.yaml", false);
  c.merge_yaml("epochs: 7\nimgsz: [320, 192]\n", "cmd.yaml", false);
  c.merge_args({"epochs=9", "cos_lr=true"});
  EXPECT_EQ(c.get_int("epochs"), 9);
  EXPECT_DOUBLE_EQ(c.get_float("lr0"), 0.02);
  EXPECT_TRUE(c.get_bool("cos_lr"));
  EXPECT_EQ(c.get_ints("imgsz"), (std::vector<int64_t>{320, 192}));
  EXPECT_TRUE(c.is_set("epochs"));
}

TEST(Config, UnknownKeySuggestsClosest) {
  Config c(demo_schema());
  std::string msg = error_of([&] { c.merge_args({"epohcs=3"}); });
  EXPECT_NE(msg.find("unknown key 'epohcs'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("did you mean 'epochs'"), std::string::npos) << msg;
  msg = error_of([&] { c.merge_yaml("a: 1\nzzzzzzzzzz: 2\n", "my.yaml", false); });
  EXPECT_NE(msg.find("my.yaml: line 1"), std::string::npos) << msg;
}

// A key of the reference tool that yoloqat spells differently: the error names ours (only where this
// schema has ours), or says why there is none; other keys still get the closest one.
TEST(Config, ReferenceKeysNameOurs) {
  Schema s;
  s.text("weights", "", "w").real("conf", 0.25, "c").real("iou", 0.7, "i").integer("imgsz", 640, "s");
  s.flag("save_json", false, "j").integer("batch", 16, "b").text("log", "info", "l");
  Config c(s);
  auto msg = [&](const std::string& arg) { return error_of([&] { c.merge_args({arg}); }); };
  EXPECT_NE(msg("pretrained=x.pt").find("unknown key 'pretrained': yoloqat calls it 'weights'"),
            std::string::npos)
      << msg("pretrained=x.pt");
  EXPECT_NE(msg("conf_thres=0.5").find("yoloqat calls it 'conf'"), std::string::npos);
  EXPECT_NE(msg("iou_thres=0.5").find("yoloqat calls it 'iou'"), std::string::npos);
  EXPECT_NE(msg("batch_size=4").find("yoloqat calls it 'batch'"), std::string::npos);
  EXPECT_NE(msg("img_size=320").find("yoloqat calls it 'imgsz'"), std::string::npos);
  EXPECT_NE(msg("save_txt=true").find("yoloqat calls it 'save_json'"), std::string::npos);
  EXPECT_NE(msg("int8=true").find("yoloqat calls it 'weights'"), std::string::npos) << msg("int8=true");
  EXPECT_NE(msg("verbose=false").find("yoloqat calls it 'log'"), std::string::npos);
  EXPECT_NE(msg("cfg=my.yaml").find("yoloqat calls it '--config'"), std::string::npos);
  EXPECT_NE(msg("half=true").find("not fp16"), std::string::npos) << msg("half=true");
  // An entry whose key this schema lacks does not apply: save_conf names save_json, not save_txt.
  EXPECT_NE(msg("save_conf=true").find("'save_json'"), std::string::npos) << msg("save_conf=true");
  EXPECT_EQ(msg("save_conf=true").find("'save_txt'"), std::string::npos);
  // Not a key of the reference: the closest key as before.
  EXPECT_NE(msg("wieghts=a").find("did you mean 'weights'"), std::string::npos);
  // The same in a YAML layer.
  const std::string y = error_of([&] { c.merge_yaml("conf_thres: 0.3\n", "my.yaml", false); });
  EXPECT_NE(y.find("my.yaml: line 1"), std::string::npos) << y;
  EXPECT_NE(y.find("yoloqat calls it 'conf'"), std::string::npos) << y;
}

// The table stays true: every key of ours it names is declared by some command; an entry without one
// says why.
TEST(Config, ReferenceKeyTableNamesRealKeys) {
  std::vector<Schema> schemas;
  for (const auto& cmd : cli::all_commands()) {
    schemas.emplace_back();
    cmd.declare(schemas.back());
  }
  for (const auto& r : reference_keys()) {
    if (r.ours.empty() || r.ours.rfind("--", 0) == 0) {
      EXPECT_FALSE(r.note.empty()) << r.key;
      continue;
    }
    bool declared = false;
    for (const auto& s : schemas) declared = declared || s.find(r.ours) != nullptr;
    EXPECT_TRUE(declared) << r.key << " -> " << r.ours << ": no command declares " << r.ours;
  }
}

TEST(Config, UnsetRestoresTheDefault) {
  Config c(demo_schema());
  c.merge_args({"epochs=3"});
  ASSERT_TRUE(c.is_set("epochs"));
  c.unset("epochs");
  EXPECT_FALSE(c.is_set("epochs"));
  EXPECT_EQ(c.get_int("epochs"), 100);
  EXPECT_EQ(c.origin("epochs"), "");
}

TEST(Config, WrongTypeAndRangeNameTheKey) {
  Config c(demo_schema());
  std::string msg = error_of([&] { c.merge_args({"epochs=ten"}); });
  EXPECT_NE(msg.find("'epochs' expects int"), std::string::npos) << msg;
  msg = error_of([&] { c.merge_args({"epochs=0"}); });
  EXPECT_NE(msg.find("'epochs' = 0 is out of range"), std::string::npos) << msg;
  msg = error_of([&] { c.merge_args({"optimizer=Adam"}); });
  EXPECT_NE(msg.find("not one of: auto, SGD, AdamW"), std::string::npos) << msg;
  msg = error_of([&] { c.merge_args({"cos_lr=maybe"}); });
  EXPECT_NE(msg.find("'cos_lr' expects bool"), std::string::npos) << msg;
  msg = error_of([&] { c.merge_args({"imgsz=640,x"}); });
  EXPECT_NE(msg.find("element 'x'"), std::string::npos) << msg;
  msg = error_of([&] { c.merge_args({"noequals"}); });
  EXPECT_NE(msg.find("not of the form key=value"), std::string::npos) << msg;
  msg = error_of([&] { c.merge_yaml("epochs: [1\n", "bad.yaml", false); });
  EXPECT_NE(msg.find("bad.yaml"), std::string::npos) << msg;
}

TEST(Config, SkipUnknownForSharedBase) {
  Config c(demo_schema());
  EXPECT_NO_THROW(c.merge_yaml("epochs: 3\nsomething_else: 1\n", "base.yaml", true));
  EXPECT_EQ(c.get_int("epochs"), 3);
}

TEST(Config, ResolvedYamlRoundTrips) {
  Config c(demo_schema());
  c.merge_args({"epochs=12", "imgsz=320,160", "optimizer=SGD"});
  Config d(demo_schema());
  d.merge_yaml(c.to_yaml(), "saved.yaml", false);
  EXPECT_EQ(d.to_yaml(), c.to_yaml());
  EXPECT_EQ(d.get_int("epochs"), 12);
  EXPECT_EQ(d.get_ints("imgsz"), (std::vector<int64_t>{320, 160}));
}

TEST(Config, EditDistance) {
  EXPECT_EQ(edit_distance("kitten", "sitting"), 3u);
  EXPECT_EQ(edit_distance("", "abc"), 3u);
  EXPECT_EQ(edit_distance("same", "same"), 0u);
}

// Every key of every embedded config file is declared by at least one command, and the command
// configs hold only keys of their command (a config never holds a key the code does not read).
TEST(Config, EveryBuiltinKeyIsRead) {
  for (const auto& name : builtin_config_names()) {
    // Qconfig files are read by yq::quant::QConfigMapping, not as command configs
    // (tests/quant/qconfig_test.cpp parses them).
    if (name == "quantization.yaml" || name.rfind("experiments/", 0) == 0) continue;
    YAML::Node root = YAML::Load(builtin_config(name));
    if (root.IsNull()) continue;
    for (const auto& kv : root) {
      std::string key = kv.first.as<std::string>();
      bool found = false;
      for (const auto& cmd : cli::all_commands()) {
        Schema s;
        cmd.declare(s);
        found = found || s.find(key) != nullptr;
      }
      EXPECT_TRUE(found) << "configs/" << name << " holds key '" << key << "' that no command reads";
    }
  }
  for (const auto& cmd : cli::all_commands()) EXPECT_NO_THROW(cli::resolve_config(cmd, "", {})) << cmd.name;
}

}  // namespace
}  // namespace yq

// `--help` shows the values a command would run with: its own config and key=value applied, with where
// each set value came from; without a resolved config, the schema defaults.
TEST(Config, HelpShowsResolvedValuesAndOrigins) {
  const auto* qat = yq::cli::find_command("qat");
  ASSERT_NE(qat, nullptr);
  yq::Schema s;
  qat->declare(s);
  const std::string plain = s.help_text();
  EXPECT_NE(plain.find("epochs=100 "), std::string::npos) << plain;
  const yq::Config resolved = yq::cli::resolve_config(*qat, "", {"epochs=2"});
  const std::string text = s.help_text(&resolved);
  EXPECT_NE(text.find("epochs=2 "), std::string::npos) << text;
  EXPECT_NE(text.find("{from argument 'epochs=2'}"), std::string::npos) << text;
  EXPECT_NE(text.find("lr0=0.001 "), std::string::npos) << text;  // configs/qat.yaml, not the schema's 0.01
  EXPECT_NE(text.find("configs/qat.yaml"), std::string::npos) << text;
  EXPECT_EQ(resolved.value_text("cos_lr"), "true");
  EXPECT_EQ(resolved.origin("patience"), "");
}
