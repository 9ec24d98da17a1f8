#include <gtest/gtest.h>

#include "core/log.h"

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  yq::log::set_level("warn");
  return RUN_ALL_TESTS();
}
