#include "model/info.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace yq::model {

namespace {

// Multiply-accumulates of every Conv2d under `m`, all producing an h x w output.
int64_t conv_macs(const torch::nn::Module& m, int64_t h, int64_t w) {
  int64_t macs = 0;
  for (const auto& sub : m.modules(/*include_self=*/true))
    if (const auto* conv = sub->as<torch::nn::Conv2dImpl>()) macs += conv->weight.numel() * h * w;
  return macs;
}

std::string from_text(const std::vector<int64_t>& from) {
  if (from.size() == 1) return std::to_string(from[0]);
  return fmt::format("[{}]", fmt::join(from, ", "));
}

}  // namespace

ModelSummary summarize(YoloV8Impl& model, int64_t imgsz_h, int64_t imgsz_w) {
  ModelSummary s;
  s.name = model.spec().name;
  s.scale = model.spec().scale;
  s.nc = model.nc();
  s.imgsz_h = imgsz_h;
  s.imgsz_w = imgsz_w;
  s.depth = model.depth_multiple();
  s.width = model.width_multiple();
  s.strides = model.strides();
  const int64_t smax = *std::max_element(s.strides.begin(), s.strides.end());
  YQ_CHECK_USAGE(imgsz_h > 0 && imgsz_w > 0 && imgsz_h % smax == 0 && imgsz_w % smax == 0,
                 "imgsz {}x{}: must be a positive multiple of the largest stride {}", imgsz_h, imgsz_w, smax);

  const auto& layers = model.layers();
  int64_t total_macs = 0;
  for (size_t i = 0; i < layers.size(); ++i) {
    LayerRow row;
    row.layer = layers[i];
    const auto& mod = *model.model->ptr(i);
    for (const auto& p : mod.parameters()) row.params += p.numel();
    int64_t macs = 0;
    if (i + 1 == layers.size()) {
      // Detect: each level's branches run at that level's resolution; the DFL is not counted.
      Detect det = model.detect();
      for (int64_t j = 0; j < det->nl(); ++j) {
        const int64_t h = imgsz_h / s.strides[j], w = imgsz_w / s.strides[j];
        macs += conv_macs(*det->cv2->ptr(j), h, w) + conv_macs(*det->cv3->ptr(j), h, w);
      }
    } else {
      // Every conv of a layer produces the layer's output resolution: the only strided conv of
      // the table is a Conv layer's own.
      macs = conv_macs(mod, imgsz_h / row.layer.stride, imgsz_w / row.layer.stride);
    }
    row.gflops = 2.0 * double(macs) / 1e9;
    total_macs += macs;
    s.rows.push_back(std::move(row));
  }
  s.params = count_parameters(model);
  s.gradients = count_trainable(model);
  s.state_entries = static_cast<int64_t>(model.named_parameters().size() + model.named_buffers().size());
  s.gflops = 2.0 * double(total_macs) / 1e9;
  return s;
}

std::string format_summary(const ModelSummary& s) {
  std::string out =
      fmt::format("{:>3}{:>20}{:>4}{:>11}  {:<10}{}\n", "", "from", "n", "params", "module", "arguments");
  for (const auto& r : s.rows)
    out += fmt::format("{:>3}{:>20}{:>4}{:>11}  {:<10}{}\n", r.layer.index, from_text(r.layer.from),
                       r.layer.repeats, r.params, r.layer.module, r.layer.args);
  out += fmt::format("{} summary (nc={}): {} layers, {} parameters, {} gradients, {:.1f} GFLOPs at {}x{}\n",
                     s.name, s.nc, s.rows.size(), s.params, s.gradients, s.gflops, s.imgsz_h, s.imgsz_w);
  return out;
}

std::string summary_json(const ModelSummary& s) {
  nlohmann::json j;
  j["model"] = s.name;
  j["scale"] = s.scale;
  j["nc"] = s.nc;
  j["imgsz"] = {s.imgsz_h, s.imgsz_w};
  j["depth_multiple"] = s.depth;
  j["width_multiple"] = s.width;
  j["strides"] = s.strides;
  nlohmann::json rows = nlohmann::json::array();
  for (const auto& r : s.rows)
    rows.push_back({{"index", r.layer.index},
                    {"from", r.layer.from},
                    {"repeats", r.layer.repeats},
                    {"module", r.layer.module},
                    {"args", r.layer.args},
                    {"params", r.params},
                    {"gflops", r.gflops}});
  j["layers"] = rows;
  j["parameters"] = s.params;
  j["gradients"] = s.gradients;
  j["state_entries"] = s.state_entries;
  j["gflops"] = s.gflops;
  return j.dump(2) + "\n";
}

}  // namespace yq::model
