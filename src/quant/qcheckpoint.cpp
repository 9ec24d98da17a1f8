#include "quant/qcheckpoint.h"

#include "core/error.h"
#include "quant/prepare.h"

namespace yq::quant {

bool is_quantized_meta(const nlohmann::json& meta) {
  return meta.contains("qconfig") && meta["qconfig"].is_string();
}

void save_quantized_checkpoint(const fs::path& path, model::YoloV8& model, model::YoloV8* ema,
                               torch::optim::Optimizer* optimizer, nlohmann::json meta,
                               const QConfigMapping& qconfig, const std::string& kind) {
  YQ_CHECK(kind == "ptq" || kind == "qat", "quantized checkpoint kind must be ptq or qat, not '{}'", kind);
  YQ_CHECK(is_prepared(*model), "save_quantized_checkpoint: the model is not prepared for quantization");
  for (auto& [name, fq] : named_quantizers(*model)) fq->qparams();  // refresh stale qparams
  if (ema)
    for (auto& [name, fq] : named_quantizers(**ema)) fq->qparams();
  meta["kind"] = kind;
  meta["qconfig"] = qconfig.to_yaml();
  model::save_checkpoint(path, model, ema, optimizer, std::move(meta));
}

QConfigMapping checkpoint_qconfig(const nlohmann::json& meta, const std::string& origin) {
  YQ_CHECK_USAGE(is_quantized_meta(meta), "{} is not a quantized checkpoint", origin);
  return QConfigMapping::from_yaml(meta["qconfig"].get<std::string>(), origin + " (qconfig)");
}

model::Checkpoint load_quantized_checkpoint(const fs::path& path, bool prefer_ema) {
  model::Checkpoint ck = model::load_checkpoint(path, prefer_ema);
  YQ_CHECK_USAGE(is_quantized_meta(ck.meta),
                 "{} is a float checkpoint (kind '{}'), but a quantized one is needed: make one with "
                 "`yoloqat calibrate` (PTQ) or `yoloqat qat`",
                 path.string(), ck.meta.value("kind", "?"));
  return ck;
}

void check_same_model(const model::ModelSpec& a, const std::string& what_a, const model::ModelSpec& b,
                      const std::string& what_b) {
  YQ_CHECK_USAGE(a.nc == b.nc, "{} has {} classes but {} has {}", what_a, a.nc, what_b, b.nc);
  const bool same = a.yaml == b.yaml && a.scale == b.scale && a.depth == b.depth && a.width == b.width &&
                    a.max_channels == b.max_channels;
  YQ_CHECK_USAGE(same, "{} ({}, scale '{}') and {} ({}, scale '{}') are different architectures", what_a,
                 a.name, a.scale, what_b, b.name, b.scale);
}

}  // namespace yq::quant
