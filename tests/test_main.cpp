#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "core/cpu.h"
#include "core/log.h"

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  // YOLOQAT_TEST_LOG=info shows the library's messages while debugging a test.
  const char* level = std::getenv("YOLOQAT_TEST_LOG");
  yq::log::set_level(level ? level : "warn");
  // The int8 tests run again under oneDNN ISA caps (tests/CMakeLists.txt, label isa). A cap that does
  // not take this machine below its best ISA repeats the uncapped run: skipped, and CTest reports it so.
  if (std::getenv("YOLOQAT_ISA_CAP_TEST") != nullptr) {
    const std::string cap = yq::cpu_onednn().cap;
    const auto caps = yq::onednn_caps_below(yq::cpu_hardware());
    if (cap.empty() || std::find(caps.begin(), caps.end(), cap) == caps.end()) {
      std::printf("[ isa skip ] ONEDNN_MAX_CPU_ISA=%s does not lower this CPU (%s)\n", cap.c_str(),
                  yq::cpu_hardware().describe().c_str());
      return 0;
    }
    std::printf("[ isa cap ] oneDNN capped at %s: %s\n", cap.c_str(), yq::cpu_onednn().describe().c_str());
  }
  return RUN_ALL_TESTS();
}
