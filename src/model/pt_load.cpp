#include "model/pt_load.h"

#include <fmt/format.h>

#include <cmath>
#include <map>
#include <regex>

#include "core/error.h"
#include "core/log.h"

namespace yq::model {

namespace {

std::string shape_str(const torch::Tensor& t) {
  return fmt::format("[{}]", fmt::join(t.sizes().vec(), ", "));
}

// Class convs of the Detect head: model.<i>.cv3.<level>.2.{weight,bias}.
bool is_class_head(const std::string& name) {
  static const std::regex re(R"(^model\.\d+\.cv3\.\d+\.2\.(weight|bias)$)");
  return std::regex_match(name, re);
}

template <class V>
std::string first_few(const V& items, size_t n = 8) {
  std::vector<std::string> head(items.begin(), items.begin() + std::min(n, items.size()));
  return fmt::format("{}{}", fmt::join(head, ", "),
                     items.size() > n ? fmt::format(", ... ({} in all)", items.size()) : "");
}

int64_t make_div8(double x) {
  return static_cast<int64_t>(std::ceil(x / 8.0)) * 8;
}

}  // namespace

std::string LoadReport::summary() const {
  std::string s = fmt::format("loaded {}/{} tensors", loaded, expected);
  if (!skipped.empty())
    s += fmt::format("; class head not loaded ({} tensors: {})", skipped.size(), first_few(skipped, 2));
  if (!missing.empty()) s += fmt::format("; missing: {}", first_few(missing));
  if (!unexpected.empty()) s += fmt::format("; unexpected: {}", first_few(unexpected));
  if (!mismatched.empty()) s += fmt::format("; shape mismatch: {}", first_few(mismatched, 4));
  return s;
}

LoadReport load_state_dict(torch::nn::Module& model,
                           const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                           const LoadOptions& options) {
  std::map<std::string, torch::Tensor> targets;
  for (const auto& p : model.named_parameters(true)) targets.emplace(p.key(), p.value());
  for (const auto& b : model.named_buffers(true)) targets.emplace(b.key(), b.value());

  LoadReport r;
  r.expected = static_cast<int64_t>(targets.size());
  std::map<std::string, const torch::Tensor*> source;
  for (const auto& [name, t] : tensors) source[name] = &t;
  std::vector<std::pair<torch::Tensor, const torch::Tensor*>> copies;
  for (const auto& [name, dst] : targets) {
    auto it = source.find(name);
    if (it == source.end()) {
      r.missing.push_back(name);
      continue;
    }
    const torch::Tensor& src = *it->second;
    if (src.sizes() != dst.sizes()) {
      if (options.skip_class_head && is_class_head(name))
        r.skipped.push_back(name);
      else
        r.mismatched.push_back(
            fmt::format("{}: checkpoint {} vs model {}", name, shape_str(src), shape_str(dst)));
      continue;
    }
    copies.emplace_back(dst, &src);
  }
  for (const auto& [name, t] : tensors)
    if (!targets.count(name)) r.unexpected.push_back(name);

  YQ_CHECK(!options.strict || r.complete(),
           "the checkpoint does not match the model ({}); nothing was loaded", r.summary());
  torch::NoGradGuard no_grad;
  for (auto& [dst, src] : copies) dst.copy_(*src);
  r.loaded = static_cast<int64_t>(copies.size());
  return r;
}

ModelSpec infer_spec(const PtCheckpoint& ck) {
  auto shape = [&](const std::string& name) {
    const torch::Tensor* t = ck.find(name);
    YQ_CHECK(t != nullptr && t->dim() >= 1, "{}: no '{}' tensor: not a YOLOv8 detection checkpoint", ck.path,
             name);
    return t->sizes().vec();
  };
  auto repeats = [&](int layer) {
    int64_t n = 0;
    while (ck.find(fmt::format("model.{}.m.{}.cv1.conv.weight", layer, n))) ++n;
    return n;
  };
  // The Detect layer is the last one: find it by its DFL.
  int detect = -1;
  for (const auto& [name, t] : ck.tensors) {
    std::smatch m;
    static const std::regex re(R"(^model\.(\d+)\.dfl\.conv\.weight$)");
    if (std::regex_match(name, m, re)) detect = std::stoi(m[1]);
  }
  YQ_CHECK(detect == 22, "{}: expected the YOLOv8 layer table (Detect at layer 22), found Detect at {}",
           ck.path, detect);

  ModelSpec spec = parse_model_name("yolov8n");
  spec.name = std::filesystem::path(ck.path).stem().string();
  spec.origin = ck.path;
  spec.nc = shape(fmt::format("model.{}.cv3.0.2.weight", detect))[0];
  if (ck.nc && *ck.nc != spec.nc)
    log::warn("{}: nc attribute says {} but the class convs have {} outputs; using {}", ck.path, *ck.nc,
              spec.nc, spec.nc);

  // 1. The pickled yaml's scales table, when it names the scale.
  const nlohmann::json& y = ck.yaml;
  if (y.is_object() && y.contains("scales") && y["scales"].is_object() && y.contains("scale") &&
      y["scale"].is_string() && y["scales"].contains(y["scale"].get<std::string>())) {
    const nlohmann::json& s = y["scales"][y["scale"].get<std::string>()];
    if (s.is_array() && s.size() == 3 && s[0].is_number() && s[1].is_number() && s[2].is_number()) {
      spec.depth = s[0].get<double>();
      spec.width = s[1].get<double>();
      spec.max_channels = s[2].get<int64_t>();
      return spec;
    }
  }
  // 2. The shapes, against the standard scales.
  int64_t c0 = shape("model.0.conv.weight")[0], c9 = shape("model.9.cv2.conv.weight")[0];
  int64_t n2 = repeats(2), n4 = repeats(4);
  struct Scale {
    const char* name;
    double depth, width;
    int64_t max_channels;
  };
  for (const Scale& s :
       {Scale{"n", 0.33, 0.25, 1024}, Scale{"s", 0.33, 0.50, 1024}, Scale{"m", 0.67, 0.75, 768},
        Scale{"l", 1.00, 1.00, 512}, Scale{"x", 1.00, 1.25, 512}}) {
    auto reps = [&](int n) { return std::max<int64_t>(std::llround(n * s.depth), 1); };
    if (c0 == make_div8(std::min<int64_t>(64, s.max_channels) * s.width) &&
        c9 == make_div8(std::min<int64_t>(1024, s.max_channels) * s.width) && n2 == reps(3) &&
        n4 == reps(6)) {
      spec.scale = s.name;
      spec.name = spec.name.empty() ? fmt::format("yolov8{}", s.name) : spec.name;
      return spec;
    }
  }
  throw Error(
      fmt::format("{}: the tensor shapes fit no YOLOv8 scale (stem {} channels, SPPF {} channels, C2f "
                  "repeats {} and {}) and the "
                  "checkpoint has no yaml scales",
                  ck.path, c0, c9, n2, n4));
}

YoloV8 model_from_checkpoint(const PtCheckpoint& ck, const ImportOptions& options, LoadReport* report) {
  ModelSpec spec = infer_spec(ck);
  int64_t ck_nc = spec.nc;
  bool transfer = options.nc > 0 && options.nc != ck_nc;
  if (transfer) spec.nc = options.nc;
  YoloV8 model(spec);
  LoadOptions lo;
  lo.strict = options.strict;
  lo.skip_class_head = transfer;
  LoadReport r =
      with_context("while loading " + ck.path, [&] { return load_state_dict(*model, ck.tensors, lo); });
  if (transfer) {
    log::info("{}: checkpoint has nc={}, model nc={}: {} (the usual transfer-learning start)", ck.path, ck_nc,
              spec.nc, r.summary());
  } else {
    if (!ck.names.empty()) model->set_names(ck.names);
    if (!r.complete()) log::warn("{}: partial load: {}", ck.path, r.summary());
  }
  if (report) *report = r;
  return model;
}

YoloV8 model_from_checkpoint(const std::filesystem::path& path, const ImportOptions& options,
                             LoadReport* report) {
  return model_from_checkpoint(read_pt_checkpoint(path), options, report);
}

}  // namespace yq::model
