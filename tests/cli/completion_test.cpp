// `yoloqat completion bash` (generated from the key schemas) and `yoloqat --version`.
#include "cli/completion.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "core/process.h"
#include "test_util.h"

namespace yq::cli {
namespace {

using yq::testing::TempDir;

// What the completion function offers for the command line `line` (cursor at its end), run in bash with
// its default COMP_WORDBREAKS (which splits words at '=').
std::string complete(const fs::path& script, const std::string& line) {
  const std::string prog =
      "source \"$1\"; COMP_LINE=\"$2\"; COMP_POINT=${#COMP_LINE}; read -ra COMP_WORDS <<< \"${COMP_LINE//=/ "
      "= }\"; "
      "[[ $COMP_LINE == *[[:space:]=] ]] && COMP_WORDS+=(''); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); "
      "_yoloqat; printf '%s\\n' \"${COMPREPLY[@]}\"";
  const auto r = run_process({"bash", "-c", prog, "bash", script.string(), line});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return r.out;
}

TEST(CliCompletion, NamesEveryCommandAndItsKeys) {
  const std::string s = completion_script("bash");
  for (const auto& c : all_commands()) {
    EXPECT_NE(s.find(" " + c.name + ") echo"), std::string::npos) << c.name;
    Schema schema;
    c.declare(schema);
    for (const auto& k : schema.keys())
      EXPECT_NE(s.find(k.name + "="), std::string::npos) << c.name << " " << k.name;
  }
  EXPECT_NE(s.find("complete -F _yoloqat yoloqat"), std::string::npos);
  EXPECT_THROW(completion_script("tcsh"), UsageError);
}

TEST(CliCompletion, BashAcceptsAndCompletes) {
  TempDir dir("completion");
  const fs::path f = dir / "yoloqat.bash";
  yq::testing::write_file(f, completion_script("bash"));
  const auto syntax = run_process({"bash", "-n", f.string()});
  ASSERT_EQ(syntax.exit_code, 0) << syntax.err;

  EXPECT_EQ(complete(f, "yoloqat pre"), "predict\n");
  const std::string all = complete(f, "yoloqat ");
  for (const auto& c : all_commands()) EXPECT_NE(all.find(c.name + "\n"), std::string::npos) << c.name;
  EXPECT_NE(all.find("completion\n"), std::string::npos);
  EXPECT_EQ(complete(f, "yoloqat predict max_"), "max_det=\n");
  EXPECT_EQ(complete(f, "yoloqat val data=x.yaml allow_"), "allow_inexact=\n");
  EXPECT_EQ(complete(f, "yoloqat predict log=w"), "warn\n");
  EXPECT_EQ(complete(f, "yoloqat predict save="), "true\nfalse\n");
  EXPECT_EQ(complete(f, "yoloqat calibrate target=x86-"), "x86-vnni\n");
  EXPECT_EQ(complete(f, "yoloqat completion "), "bash\n");
  // A key without choices completes file names.
  yq::testing::write_file(dir / "model_a.pt", "");
  EXPECT_EQ(complete(f, "yoloqat predict weights=" + (dir / "model_").string()),
            (dir / "model_a.pt\n").string());
}

TEST(CliCompletion, ExecutablePrintsScriptAndVersion) {
  const auto r = run_process({YOLOQAT_BINARY, "completion", "bash"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, completion_script("bash"));
  EXPECT_EQ(run_process({YOLOQAT_BINARY, "--completion", "bash"}).out, r.out);
  EXPECT_EQ(run_process({YOLOQAT_BINARY, "completion", "fish"}).exit_code, 2);

  for (const std::vector<std::string> argv :
       {std::vector<std::string>{YOLOQAT_BINARY, "--version"},
        std::vector<std::string>{YOLOQAT_BINARY, "predict", "--version"},
        std::vector<std::string>{YOLOQAT_BINARY, "train", "epochs=3", "--version"}}) {
    const auto v = run_process(argv);
    EXPECT_EQ(v.exit_code, 0) << argv[1] << ": " << v.err;
    EXPECT_NE(v.out.find("yoloqat " YOLOQAT_VERSION "\n"), std::string::npos) << v.out;
    EXPECT_NE(v.out.find("LibTorch 1."), std::string::npos) << v.out;
    EXPECT_NE(v.out.find("build type: "), std::string::npos) << v.out;
  }
}

}  // namespace
}  // namespace yq::cli
