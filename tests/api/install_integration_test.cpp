// `cmake --install` of this build tree into a temporary prefix, then examples/detect configured and built
// against it with find_package(yoloqat) alone, and run: it prints the boxes the in-tree API gives.
#include <gtest/gtest.h>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include <sstream>

#include "core/process.h"
#include "test_util.h"
#include "yoloqat/detector.h"

namespace yq {
namespace {

using yq::testing::TempDir;

ProcessResult run_ok(const std::vector<std::string>& argv) {
  auto r = run_process(argv);
  std::string line;
  for (const auto& a : argv) line += a + " ";
  EXPECT_EQ(r.exit_code, 0) << line << "\n" << r.out << r.err;
  return r;
}

TEST(ApiInstall, ExampleBuildsAgainstInstalledPackage) {
  TempDir dir("install");
  const fs::path prefix = dir / "prefix", build = dir / "build";
  const fs::path tree = fs::path(YOLOQAT_BINARY).parent_path();  // the build tree of this test
  run_ok({"cmake", "--install", tree.string(), "--prefix", prefix.string()});
  for (const char* f :
       {"bin/yoloqat", "include/yoloqat/detector.h", "include/yoloqat/version.h", "lib/libyoloqat.a",
        "lib/libyoloqat_lib.a", "lib/libyoloqat_proto.a", "lib/cmake/yoloqat/yoloqatConfig.cmake",
        "lib/cmake/yoloqat/yoloqatConfigVersion.cmake", "lib/cmake/yoloqat/yoloqatTargets.cmake",
        "share/bash-completion/completions/yoloqat"})
    EXPECT_TRUE(fs::exists(prefix / f)) << f;
  EXPECT_EQ(run_ok({(prefix / "bin/yoloqat").string(), "--version"}).out.rfind("yoloqat " YOLOQAT_VERSION, 0),
            0u);

  std::vector<std::string> configure = {"cmake",
                                        "-S",
                                        std::string(YOLOQAT_SOURCE_DIR) + "/examples/detect",
                                        "-B",
                                        build.string(),
                                        "-DCMAKE_PREFIX_PATH=" + prefix.string(),
                                        "-DCMAKE_BUILD_TYPE=Release"};
  if (run_process({"sh", "-c", "command -v ccache"}).exit_code == 0)
    configure.push_back("-DCMAKE_CXX_COMPILER_LAUNCHER=ccache");
  if (run_ok(configure).exit_code != 0) return;
  if (run_ok({"cmake", "--build", build.string(), "-j2"}).exit_code != 0) return;

  const std::string model = std::string(YOLOQAT_SOURCE_DIR) + "/tests/model/fixtures/tiny.pt";
  cv::Mat img(72, 120, CV_8UC3);
  cv::theRNG().state = 7;
  cv::randu(img, 0, 255);
  const fs::path image = dir / "frame.png";
  ASSERT_TRUE(cv::imwrite(image.string(), img));
  const auto r = run_ok({(build / "detect").string(), model, image.string(), "0"});

  yoloqat::DetectorOptions o;
  o.conf = 0;
  yoloqat::Detector det(model, o);
  const auto want = det.detect(cv::imread(image.string(), cv::IMREAD_COLOR));
  ASSERT_FALSE(want.empty());
  std::istringstream lines(r.out);
  size_t n = 0;
  for (std::string line; std::getline(lines, line); ++n) {
    ASSERT_LT(n, want.size()) << line;
    std::istringstream f(line);
    int cls = -1;
    std::string name;
    float score = 0, x1 = 0, y1 = 0, x2 = 0, y2 = 0;
    f >> cls >> name >> score >> x1 >> y1 >> x2 >> y2;
    const auto& w = want[n];
    EXPECT_EQ(cls, w.class_id) << line;
    EXPECT_EQ(name, w.class_name) << line;
    EXPECT_NEAR(score, w.score, 1e-5) << line;
    EXPECT_NEAR(x1, w.x1, 1e-3) << line;
    EXPECT_NEAR(y1, w.y1, 1e-3) << line;
    EXPECT_NEAR(x2, w.x2, 1e-3) << line;
    EXPECT_NEAR(y2, w.y2, 1e-3) << line;
  }
  EXPECT_EQ(n, want.size());
}

}  // namespace
}  // namespace yq
