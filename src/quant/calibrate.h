// Post-training quantization (PTQ) calibration: observers watch a few batches of real data, then the
// quantizers' ranges are fixed (`yoloqat calibrate`, src/cli/cmd_calibrate.cpp).
#pragma once

#include <cstdint>

namespace yq::data {
class DataLoader;
}
namespace yq::model {
class YoloV8Impl;
}

namespace yq::quant {

struct CalibrateResult {
  int64_t batches = 0;
  int64_t images = 0;
  double seconds = 0;
};

// Runs up to `batches` batches of `loader` (one epoch at most; images uint8 -> /255) through the
// prepared `model` in eval mode with observers on and fake quant off, then freezes every quantizer and
// turns fake quant on: the model then computes as the PTQ model. Throws when the model is not prepared
// or the loader yields nothing.
CalibrateResult calibrate(model::YoloV8Impl& model, data::DataLoader& loader, int64_t batches);

}  // namespace yq::quant
