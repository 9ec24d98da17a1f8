// Builds a YoloV8 from an fp32 ONNX export with the reference layout (input `images`, output
// `output0` [N, 4 + nc, A], Conv + BN folded): the scale comes from the stem conv's width, nc from
// output0 (or the names metadata), the class names from the `names` metadata. Every Conv node's
// weight and bias initializer maps onto one of our convs: by the reference's initializer names
// (model.0.conv.weight, ...) when the file has them, else by graph order (the order the reference
// export writes: each layer's convs in execution order, the Detect head level by level, box branch
// before class branch, the DFL last), with every shape checked either way.
// The BN of each ConvBnAct is set to the identity carrying the conv bias: weight 1, bias = conv
// bias, running mean 0, running var 1 - eps, so BN(conv(x)) = conv(x) + bias exactly as in the file.
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "core/fs.h"
#include "model/yolov8.h"

namespace yq::model {

struct OnnxImportReport {
  int64_t convs = 0;     // Conv nodes loaded
  bool by_name = false;  // matched by initializer names (else by graph order)
  int64_t height = 0;    // the input size of the file (0 when symbolic)
  int64_t width = 0;
  std::string scale;  // n/s/m/l/x
};

// Parses the `names` metadata value, a Python dict literal {0: 'person', 1: "driver's"}, into names
// by id. Throws yq::Error on anything else or on ids that are not 0..n-1.
std::vector<std::string> parse_python_names(const std::string& text);

// Reads `path` and returns the model (eval mode). Throws yq::Error naming the file on anything that
// does not fit (missing output0, a conv of another shape, too few or too many convs).
YoloV8 model_from_onnx(const fs::path& path, OnnxImportReport* report = nullptr);

}  // namespace yq::model
