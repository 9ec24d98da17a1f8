#include <gtest/gtest.h>

#include <cstdlib>

#include "core/log.h"

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  // YOLOQAT_TEST_LOG=info shows the library's messages while debugging a test.
  const char* level = std::getenv("YOLOQAT_TEST_LOG");
  yq::log::set_level(level ? level : "warn");
  return RUN_ALL_TESTS();
}
