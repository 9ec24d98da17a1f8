// Helpers for data tests: temporary folders and tiny images written at test time.
#pragma once

#include <opencv2/imgcodecs.hpp>

#include <fstream>
#include <string>

#include "core/fs.h"

namespace yq::testing {

// A fresh folder under the system temp dir, removed when the object dies.
class TempDir {
 public:
  explicit TempDir(const std::string& tag) {
    path_ = fs::temp_directory_path() /
            ("yoloqat_" + tag + "_" + std::to_string(::getpid()) + "_" + std::to_string(counter()++));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }
  fs::path operator/(const std::string& rel) const { return path_ / rel; }

 private:
  static int& counter() {
    static int c = 0;
    return c;
  }
  fs::path path_;
};

inline void write_file(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << text;
}

inline void write_image(const fs::path& p, int w, int h, int value = 100) {
  fs::create_directories(p.parent_path());
  cv::Mat m(h, w, CV_8UC3, cv::Scalar(value, value, value));
  cv::imwrite(p.string(), m);
}

}  // namespace yq::testing
