// Imports reference YOLOv8 checkpoints (.pt files written by the Python tool) without Python and
// without executing anything: the archive is read by model/pt_archive.h (zip + a pickle reader that
// only records), and this file turns its tensor records into LibTorch tensors and its metadata into
// plain values. Unlike Python's torch.load, a hostile file cannot run code here; it is refused.
#pragma once

#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "model/pt_archive.h"

namespace yq::model {

struct PtImportOptions {
  pickle::PickleLimits limits;
  // Floating-point tensors are converted to float32 (the reference saves half precision); integer
  // and bool tensors keep their dtype. With keep_dtype, every tensor keeps the stored dtype.
  bool keep_dtype = false;
};

// What a reference checkpoint holds, in plain C++.
struct PtCheckpoint {
  std::string path;
  std::string module_key;   // "ema" or "model" ("" when the pickle is a bare module or state dict)
  std::string model_class;  // "ultralytics.nn.tasks.DetectionModel"
  // The module's state dict in PyTorch's order: "model.0.conv.weight" -> [16, 3, 3, 3] float32, ...
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  std::vector<std::string> names;  // class names by id, from the module's `names` (empty when absent)
  std::optional<int64_t> nc;       // the module's `nc`, else yaml["nc"], else names.size() when known
  std::vector<double> stride;      // the module's `stride` tensor ([8, 16, 32]) when present
  nlohmann::json yaml;             // the module's `yaml` dict (null when absent)
  nlohmann::json train_args;       // checkpoint's train_args (null when absent)
  nlohmann::json info;             // epoch, best_fitness, updates, date, version (those present)

  // The tensor called `name`, or nullptr.
  const torch::Tensor* find(const std::string& name) const;
};

// Reads a reference-format checkpoint. Throws yq::Error naming the file on anything malformed,
// truncated, refused (a pickle that names os.system, ...) or over a limit.
PtCheckpoint read_pt_checkpoint(const std::filesystem::path& path, const PtImportOptions& options = {});
PtCheckpoint read_pt_checkpoint(const PtArchive& archive, const PtImportOptions& options = {});

// One tensor record of `archive` as a contiguous tensor (its own memory). Floating dtypes become
// float32 unless `keep_dtype`.
torch::Tensor materialize(const PtArchive& archive, const pickle::TensorRecord& record,
                          bool keep_dtype = false);

// A pickled value as JSON (dicts with str/int keys, lists, tuples, scalars; tensors and other objects
// as short descriptions). Recursion stops at `max_depth` with an error.
nlohmann::json to_json(const pickle::Value* v, size_t max_depth = 32);

}  // namespace yq::model
