#include "deploy/runtime.h"

#include "core/error.h"
#include "core/log.h"
#include "deploy/int8_model.h"
#include "model/checkpoint.h"
#include "quant/fusion.h"
#include "quant/prepare.h"
#include "quant/qcheckpoint.h"

namespace yq::deploy {

void check_exact(const std::string& file, const std::string& target, int64_t bound, const std::string& engine,
                 const CpuFeatures& cpu, bool allow_inexact) {
  const quant::Exactness e = quant::int8_exactness(bound, cpu, engine);
  if (e.exact) {
    log::debug("{}: exact here: {}", file, e.why);
    return;
  }
  const std::string msg = quant::inexact_message(file, target, e);
  YQ_CHECK_USAGE(allow_inexact, "{}", msg);
  log::warn("allow_inexact=true: {}", msg);
}

InferenceModel load_inference_model(const fs::path& path, const LoadOptions& options) {
  YQ_CHECK_USAGE(fs::is_regular_file(path), "weights={}: no such file", path.string());
  InferenceModel im;
  im.file = path;
  im.file_bytes = int64_t(fs::file_size(path));
  if (Int8Model::is_int8_file(path)) {
    // A converted int8 model (yoloqat convert): quantized kernels, no training code.
    auto net = std::make_shared<Int8Model>(Int8Model::load(path));
    check_exact(path.string(), net->target(), net->pair_bound(), net->engine(), cpu_onednn(),
                options.allow_inexact);
    im.kind = "int8";
    im.nc = net->nc();
    im.names = net->names();
    im.max_stride = net->strides().empty() ? 32 : net->strides().back();
    im.meta = net->meta();
    im.meta["engine"] = net->engine();
    im.meta["pair_bound"] = net->pair_bound();
    im.holder = net;
    im.detector.forward = [net](const torch::Tensor& x) { return net->forward(x); };
    im.detector.raw = [net](const torch::Tensor& x) { return net->forward_raw(x); };
    im.detector.decode = [net](const std::vector<torch::Tensor>& raw) { return net->decode(raw); };
    return im;
  }
  auto ck = model::load_checkpoint(path, /*prefer_ema=*/true);
  model::YoloV8 net = ck.model;
  net->eval();
  im.kind = "fp32";
  const bool prepared = quant::is_prepared(*net);
  if (prepared) {
    // Fake quantization with the ranges the checkpoint holds.
    quant::enable_observers(*net, false);
    im.kind = ck.meta.value("kind", std::string("qat"));
  } else {
    // Inference: BN folded into the convs, and channels-last activations (oneDNN's fast conv path).
    quant::set_fused(*net, true);
  }
  im.nc = net->nc();
  im.names = net->names();
  im.max_stride = net->strides().empty() ? 32 : net->strides().back();
  im.meta = ck.meta;
  im.holder = std::make_shared<model::YoloV8>(net);
  if (prepared) {
    im.detector.forward = [net](const torch::Tensor& x) mutable {
      torch::NoGradGuard ng;
      return net->forward(x);
    };
  } else {
    im.detector.forward = [net](const torch::Tensor& x) mutable {
      c10::InferenceMode guard;
      return net->forward(x.contiguous(at::MemoryFormat::ChannelsLast));
    };
  }
  return im;
}

}  // namespace yq::deploy
