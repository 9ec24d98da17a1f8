// File-system helpers: atomic writes, run directories, small reads.
#pragma once

#include <filesystem>
#include <string>

namespace yq {

namespace fs = std::filesystem;

// Writes `data` to `path` through a temporary file in the same folder and a rename, so a reader
// (or a crash) never sees a half-written file. Creates parent folders.
void atomic_write(const fs::path& path, const std::string& data);

// Reads a whole file; throws yq::Error naming the file when it cannot.
std::string read_text(const fs::path& path);

// `base` when it does not exist (or `exist_ok`), else base2, base3, ... (YOLOv8's run naming).
fs::path increment_path(const fs::path& base, bool exist_ok);

// Lower-cased extension without the dot ("jpg").
std::string lower_ext(const fs::path& p);

bool is_image_file(const fs::path& p);

}  // namespace yq
