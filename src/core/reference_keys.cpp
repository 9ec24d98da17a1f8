#include "core/reference_keys.h"

#include <fmt/format.h>

#include "core/config.h"

namespace yq {

const std::vector<ReferenceKey>& reference_keys() {
  static const std::vector<ReferenceKey> table = {
      // ultralytics YOLOv8 (cfg/default.yaml)
      {"pretrained", "weights",
       "a checkpoint to start from: a yoloqat or reference .pt, or an .onnx; model=FILE.pt says the same"},
      {"model", "weights", "the model file to run"},
      {"cfg", "--config", "a YAML file of key: value pairs, layered before the key=value arguments"},
      {"verbose", "log", "log=debug says more, log=warn less"},
      {"save_txt", "save_json",
       "val writes its predictions as predictions.json; `yoloqat predict save_txt=true` writes YOLO txt"},
      {"save_conf", "save_txt", "the YOLO txt of save_txt always holds the confidences"},
      {"save_conf", "save_json", "predictions.json holds the scores"},
      {"int8", "format",
       "format=onnx-qdq (ONNX Runtime) or format=tensorrt, from a checkpoint of `yoloqat calibrate` or "
       "`yoloqat qat`"},
      {"int8", "weights", "an int8 model is a file: give weights= the .int8 of `yoloqat convert`"},
      {"dnn", "runtime", "runtime=onnxruntime runs an .onnx file in ONNX Runtime (not OpenCV DNN)"},
      {"source", "data",
       "this command reads the images of a split of data=dataset.yaml; `yoloqat predict source=...` runs on "
       "any images"},
      {"save_dir", "project", "outputs go to project=DIR, in a run folder name="},
      {"half", "",
       "yoloqat runs fp32 or int8, not fp16: make the model int8 with `yoloqat calibrate` or `yoloqat qat`, "
       "then `yoloqat convert`"},
      {"amp", "", "training runs in fp32 on the CPU; there is no mixed precision to switch off"},
      {"cache", "",
       "the label cache (labels.yoloqat.json beside each labels folder) is always on; images are not "
       "cached"},
      {"task", "", "yoloqat trains and runs detectors only (task=detect): leave the key out"},
      {"mode", "", "the command is the mode: `yoloqat train|val|predict|export ...`"},
      {"device", "", "only the commands that run a model take device= (and only device=cpu)"},
      // YOLOv5's spellings (train.py / val.py / detect.py)
      {"conf_thres", "conf", ""},
      {"iou_thres", "iou", ""},
      {"img_size", "imgsz", ""},
      {"img", "imgsz", ""},
      {"batch_size", "batch", ""},
      {"hyp", "--config", "a YAML file of key: value pairs (hyperparameters included)"},
  };
  return table;
}

std::string reference_key_hint(const Schema& schema, const std::string& key) {
  for (const auto& r : reference_keys()) {
    if (r.key != key) continue;
    if (r.ours.empty()) return ": " + r.note;
    const bool flag = r.ours.rfind("--", 0) == 0;
    if (!flag && schema.find(r.ours) == nullptr) continue;
    return fmt::format(": yoloqat calls it '{}'{}", r.ours, r.note.empty() ? "" : " (" + r.note + ")");
  }
  return "";
}

}  // namespace yq
