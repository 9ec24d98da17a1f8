#include "quant/calibrate.h"

#include <torch/torch.h>

#include <chrono>

#include "core/error.h"
#include "core/log.h"
#include "core/progress.h"
#include "data/loader.h"
#include "model/yolov8.h"
#include "quant/prepare.h"

namespace yq::quant {

CalibrateResult calibrate(model::YoloV8Impl& model, data::DataLoader& loader, int64_t batches) {
  YQ_CHECK(is_prepared(model), "calibrate: the model is not prepared for quantization (call prepare first)");
  YQ_CHECK_USAGE(batches >= 1, "calibrate: batches must be >= 1, found {}", batches);
  const auto t0 = std::chrono::steady_clock::now();
  model.eval();
  enable_observers(model, true);
  enable_fake_quant(model, false);
  CalibrateResult r;
  const int64_t n = std::min(batches, loader.num_batches());
  ProgressBar bar("calibrate", n);
  loader.start_epoch(0);
  data::Batch b;
  {
    torch::NoGradGuard no_grad;
    while (r.batches < n && loader.next(b)) {
      model.forward_raw(b.images.to(torch::kFloat32).div_(255));
      ++r.batches;
      r.images += b.images.size(0);
      bar.update(r.batches, fmt::format("{} images", r.images));
    }
  }
  bar.finish(fmt::format("{} images", r.images));
  YQ_CHECK_USAGE(r.batches > 0, "calibrate: the loader yielded no batches");
  if (r.batches < batches)
    log::warn("calibrate: asked for {} batches, the data set has {}", batches, loader.num_batches());
  freeze_quantizers(model);
  enable_fake_quant(model, true);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace yq::quant
