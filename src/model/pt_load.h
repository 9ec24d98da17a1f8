// Builds a YoloV8 from a reference checkpoint (model/pt_import.h) and loads its weights, checking
// every name and shape. The scale comes from the checkpoint's pickled yaml (`scales` + `scale`) when
// present, otherwise from tensor shapes (stem width, SPPF width, bottleneck counts) matched against
// n/s/m/l/x; nc comes from the class convs' shapes.
#pragma once

#include <torch/torch.h>

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "model/pt_import.h"
#include "model/yolov8.h"

namespace yq::model {

// The outcome of matching a state dict against a model.
struct LoadReport {
  int64_t loaded = 0;                   // tensors copied
  int64_t expected = 0;                 // parameters + buffers of the model
  std::vector<std::string> missing;     // in the model, not in the checkpoint
  std::vector<std::string> unexpected;  // in the checkpoint, not in the model
  std::vector<std::string> mismatched;  // "name: checkpoint [80, 80, 1, 1] vs model [7, 80, 1, 1]"
  std::vector<std::string> skipped;     // class-head tensors left at their init (transfer learning)

  bool complete() const { return missing.empty() && unexpected.empty() && mismatched.empty(); }
  std::string summary() const;  // one line: "loaded 355/355 tensors" plus what is missing or mismatched
};

struct LoadOptions {
  // Refuse (throw, copying nothing) unless every model tensor is loaded and nothing is left over.
  bool strict = true;
  // Class convs whose shapes differ (another nc) are skipped and reported, not an error.
  bool skip_class_head = false;
};

// Copies `tensors` (name -> tensor) into `model`'s parameters and buffers by name, after checking
// names and shapes. With strict, nothing is copied unless everything matches.
LoadReport load_state_dict(torch::nn::Module& model,
                           const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                           const LoadOptions& options = {});

// The spec of the model a checkpoint holds (built-in YOLOv8 table, scale and nc inferred).
// Throws yq::Error when the shapes fit no scale and the checkpoint has no yaml scales.
ModelSpec infer_spec(const PtCheckpoint& ck);

struct ImportOptions {
  int64_t nc = 0;      // > 0 and different from the checkpoint's: transfer learning (class head not loaded)
  bool strict = true;  // refuse partial loads (strict=false loads what matches and reports the rest)
};

// A YoloV8 with the checkpoint's weights (train mode, as built) and its class names when nc is
// unchanged. `report` receives what was loaded.
YoloV8 model_from_checkpoint(const PtCheckpoint& ck, const ImportOptions& options = {},
                             LoadReport* report = nullptr);
YoloV8 model_from_checkpoint(const std::filesystem::path& path, const ImportOptions& options = {},
                             LoadReport* report = nullptr);

}  // namespace yq::model
