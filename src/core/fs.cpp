#include "core/fs.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace yq {

void atomic_write(const fs::path& path, const std::string& data) {
  if (path.has_parent_path()) fs::create_directories(path.parent_path());
  static std::atomic<int> counter{0};
  fs::path tmp = path;
  tmp += fmt::format(".tmp{}.{}", ::getpid(), counter++);
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    YQ_CHECK(f.good(), "cannot open {} for writing", tmp.string());
    f.write(data.data(), static_cast<std::streamsize>(data.size()));
    f.flush();
    if (!f.good()) {
      f.close();
      std::error_code ec;
      fs::remove(tmp, ec);
      throw Error(fmt::format("writing {} failed (disk full?)", path.string()));
    }
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    fs::remove(tmp, ec);
    throw Error(fmt::format("cannot move {} into place: {}", path.string(), ec.message()));
  }
}

std::string read_text(const fs::path& path) {
  std::ifstream f(path, std::ios::binary);
  YQ_CHECK(f.good(), "cannot open {}", path.string());
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

fs::path increment_path(const fs::path& base, bool exist_ok) {
  if (exist_ok || !fs::exists(base)) return base;
  for (int i = 2;; ++i) {
    fs::path p = base;
    p += std::to_string(i);
    if (!fs::exists(p)) return p;
  }
}

std::string lower_ext(const fs::path& p) {
  std::string e = p.extension().string();
  if (!e.empty() && e[0] == '.') e = e.substr(1);
  std::transform(e.begin(), e.end(), e.begin(), ::tolower);
  return e;
}

bool is_image_file(const fs::path& p) {
  static const char* exts[] = {"jpg", "jpeg", "png", "bmp", "tif", "tiff", "webp", "pgm", "ppm"};
  std::string e = lower_ext(p);
  return std::any_of(std::begin(exts), std::end(exts), [&](const char* x) { return e == x; });
}

}  // namespace yq
