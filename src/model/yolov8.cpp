#include "model/yolov8.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <regex>

#include "core/error.h"
#include "core/fs.h"

namespace yq::model {

namespace {

// Our own rendering of the YOLOv8 layer table of SPEC-YOLOV8.md (channels at width 1.0).
const char* const kYoloV8Yaml = R"(# YOLOv8 detection layer table (SPEC-YOLOV8.md), channels at width 1.0
nc: 80
scales:  # depth, width, max_channels
  n: [0.33, 0.25, 1024]
  s: [0.33, 0.50, 1024]
  m: [0.67, 0.75, 768]
  l: [1.00, 1.00, 512]
  x: [1.00, 1.25, 512]
backbone:  # [from, repeats, module, args]
  - [-1, 1, Conv, [64, 3, 2]]     # 0  stride 2
  - [-1, 1, Conv, [128, 3, 2]]    # 1  stride 4
  - [-1, 3, C2f, [128, True]]     # 2
  - [-1, 1, Conv, [256, 3, 2]]    # 3  stride 8
  - [-1, 6, C2f, [256, True]]     # 4
  - [-1, 1, Conv, [512, 3, 2]]    # 5  stride 16
  - [-1, 6, C2f, [512, True]]     # 6
  - [-1, 1, Conv, [1024, 3, 2]]   # 7  stride 32
  - [-1, 3, C2f, [1024, True]]    # 8
  - [-1, 1, SPPF, [1024, 5]]      # 9
head:
  - [-1, 1, nn.Upsample, [None, 2, nearest]]  # 10
  - [[-1, 6], 1, Concat, [1]]     # 11
  - [-1, 3, C2f, [512]]           # 12
  - [-1, 1, nn.Upsample, [None, 2, nearest]]  # 13
  - [[-1, 4], 1, Concat, [1]]     # 14
  - [-1, 3, C2f, [256]]           # 15 P3, stride 8
  - [-1, 1, Conv, [256, 3, 2]]    # 16
  - [[-1, 12], 1, Concat, [1]]    # 17
  - [-1, 3, C2f, [512]]           # 18 P4, stride 16
  - [-1, 1, Conv, [512, 3, 2]]    # 19
  - [[-1, 9], 1, Concat, [1]]     # 20
  - [-1, 3, C2f, [1024]]          # 21 P5, stride 32
  - [[15, 18, 21], 1, Detect, [nc]]  # 22
)";

const char* const kKnownModules = "Conv, C2f, SPPF, nn.Upsample, Concat, Detect";

// One row of the table as written.
struct LayerDef {
  std::vector<int64_t> from;
  int64_t repeats = 1;
  std::string module;
  std::vector<std::string> args;  // scalars as text
  std::string where;              // "file:line"
};

int64_t make_divisible(double x, int64_t divisor) {
  return static_cast<int64_t>(std::ceil(x / double(divisor))) * divisor;
}

std::string where_of(const std::string& origin, const YAML::Node& n) {
  return n.Mark().line >= 0 ? fmt::format("{}:{}", origin, n.Mark().line + 1) : origin;
}

int64_t to_int(const std::string& s, const std::string& what, const std::string& where) {
  try {
    size_t pos = 0;
    int64_t v = std::stoll(s, &pos);
    if (pos == s.size()) return v;
  } catch (const std::exception&) {
  }
  throw UsageError(fmt::format("{}: {} must be an integer, found '{}'", where, what, s));
}

double to_double(const std::string& s, const std::string& what, const std::string& where) {
  try {
    size_t pos = 0;
    double v = std::stod(s, &pos);
    if (pos == s.size()) return v;
  } catch (const std::exception&) {
  }
  throw UsageError(fmt::format("{}: {} must be a number, found '{}'", where, what, s));
}

bool to_bool(const std::string& s, const std::string& what, const std::string& where) {
  if (s == "True" || s == "true") return true;
  if (s == "False" || s == "false") return false;
  throw UsageError(fmt::format("{}: {} must be True or False, found '{}'", where, what, s));
}

std::vector<LayerDef> read_layers(const YAML::Node& list, const std::string& section,
                                  const std::string& origin) {
  std::vector<LayerDef> out;
  if (!list) return out;
  YQ_CHECK_USAGE(list.IsSequence(), "{}: '{}' must be a list of [from, repeats, module, args]",
                 where_of(origin, list), section);
  for (const auto& row : list) {
    LayerDef d;
    d.where = where_of(origin, row);
    YQ_CHECK_USAGE(row.IsSequence() && row.size() == 4, "{}: a layer is [from, repeats, module, args]",
                   d.where);
    if (row[0].IsSequence()) {
      for (const auto& f : row[0]) d.from.push_back(to_int(f.as<std::string>(), "from", d.where));
    } else {
      d.from.push_back(to_int(row[0].as<std::string>(), "from", d.where));
    }
    d.repeats = to_int(row[1].as<std::string>(), "repeats", d.where);
    YQ_CHECK_USAGE(d.repeats >= 1, "{}: repeats must be >= 1, found {}", d.where, d.repeats);
    d.module = row[2].as<std::string>();
    YQ_CHECK_USAGE(row[3].IsSequence(), "{}: args must be a list", d.where);
    for (const auto& a : row[3]) {
      YQ_CHECK_USAGE(a.IsScalar() || a.IsNull(), "{}: args of {} must be scalars", d.where, d.module);
      d.args.push_back(a.IsNull() ? "None" : a.as<std::string>());
    }
    out.push_back(std::move(d));
  }
  return out;
}

std::string join_ints(const std::vector<int64_t>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s;
}

}  // namespace

const std::string& builtin_yolov8_yaml() {
  static const std::string text = kYoloV8Yaml;
  return text;
}

ModelSpec parse_model_name(const std::string& model, int64_t nc) {
  YQ_CHECK_USAGE(!model.empty(), "model: empty name (expected yolov8n ... yolov8x or a model yaml)");
  ModelSpec spec;
  const fs::path p(model);
  const std::string stem = p.stem().string();
  std::smatch m;
  if (fs::is_regular_file(p)) {
    spec.name = stem;
    spec.origin = model;
    spec.yaml = read_text(p);
    spec.scale = std::regex_search(stem, m, std::regex("yolov\\d+([nslmx])")) ? m[1].str() : "";
    YAML::Node root;
    try {
      root = YAML::Load(spec.yaml);
    } catch (const YAML::Exception& e) {
      throw UsageError(fmt::format("{}: not valid YAML: {}", model, e.what()));
    }
    YQ_CHECK_USAGE(root.IsMap(), "{}: a model yaml is a mapping with nc, scales, backbone, head", model);
    spec.nc = root["nc"] ? to_int(root["nc"].as<std::string>(), "nc", where_of(model, root["nc"])) : 80;
  } else {
    const std::string base =
        p.extension() == ".yaml" || p.extension() == ".yml" ? stem : p.filename().string();
    YQ_CHECK_USAGE(
        p.parent_path().empty() && std::regex_match(base, m, std::regex("yolov8([nslmx]?)")),
        "model={}: no such file, and not a built-in model (yolov8n, yolov8s, yolov8m, yolov8l, yolov8x, "
        "optionally with .yaml)",
        model);
    spec.scale = m[1].str().empty() ? "n" : m[1].str();
    spec.name = "yolov8" + spec.scale;
    spec.origin = "built-in " + spec.name + ".yaml";
  }
  if (nc > 0) spec.nc = nc;
  YQ_CHECK_USAGE(spec.nc >= 1, "model={}: nc must be >= 1, found {}", model, spec.nc);
  return spec;
}

ModelSpec tiny_model_spec(int64_t nc) {
  ModelSpec s;
  s.name = "yolov8-tiny";
  s.scale = "n";
  s.nc = nc;
  s.depth = 0.33;
  s.width = 0.0625;
  s.max_channels = 1024;
  s.origin = "built-in yolov8.yaml (tiny)";
  return s;
}

void YoloV8Impl::set_names(std::vector<std::string> names) {
  YQ_CHECK_USAGE(static_cast<int64_t>(names.size()) == spec_.nc,
                 "model has {} classes but {} names were given", spec_.nc, names.size());
  names_ = std::move(names);
}

YoloV8Impl::YoloV8Impl(const ModelSpec& spec) : spec_(spec) {
  const std::string origin = spec.yaml.empty() ? "built-in yolov8.yaml" : spec.origin;
  YAML::Node root;
  try {
    root = YAML::Load(spec.yaml.empty() ? builtin_yolov8_yaml() : spec.yaml);
  } catch (const YAML::Exception& e) {
    throw UsageError(fmt::format("{}: not valid YAML: {}", origin, e.what()));
  }
  YQ_CHECK_USAGE(root.IsMap(), "{}: a model yaml is a mapping with nc, scales, backbone, head", origin);
  YQ_CHECK_USAGE(spec.nc >= 1, "{}: nc must be >= 1, found {}", origin, spec.nc);

  // Multiples: the scale's row, or depth_multiple / width_multiple, overridden by the spec.
  double max_ch = std::numeric_limits<double>::infinity();
  if (root["depth_multiple"])
    depth_ = to_double(root["depth_multiple"].as<std::string>(), "depth_multiple", origin);
  if (root["width_multiple"])
    width_ = to_double(root["width_multiple"].as<std::string>(), "width_multiple", origin);
  if (const auto scales = root["scales"]) {
    YQ_CHECK_USAGE(scales.IsMap() && scales.size() > 0,
                   "{}: scales must map a scale to [depth, width, max_channels]", where_of(origin, scales));
    std::string key = spec.scale.empty() ? scales.begin()->first.as<std::string>() : spec.scale;
    if (!scales[key]) {
      std::string known;
      for (const auto& kv : scales) known += (known.empty() ? "" : ", ") + kv.first.as<std::string>();
      throw UsageError(fmt::format("{}: no scale '{}' (known: {})", origin, key, known));
    }
    const auto row = scales[key];
    const std::string w = where_of(origin, row);
    YQ_CHECK_USAGE(row.IsSequence() && row.size() == 3, "{}: scale {} must be [depth, width, max_channels]",
                   w, key);
    depth_ = to_double(row[0].as<std::string>(), "depth", w);
    width_ = to_double(row[1].as<std::string>(), "width", w);
    max_ch = to_double(row[2].as<std::string>(), "max_channels", w);
    spec_.scale = key;
  }
  if (spec.depth > 0) depth_ = spec.depth;
  if (spec.width > 0) width_ = spec.width;
  if (spec.max_channels > 0) max_ch = double(spec.max_channels);
  YQ_CHECK_USAGE(depth_ > 0 && width_ > 0 && max_ch > 0, "{}: depth, width and max_channels must be > 0",
                 origin);

  std::vector<LayerDef> defs = read_layers(root["backbone"], "backbone", origin);
  for (auto& d : read_layers(root["head"], "head", origin)) defs.push_back(std::move(d));
  YQ_CHECK_USAGE(!defs.empty(), "{}: no layers (backbone and head are empty)", origin);

  const int64_t n_layers = static_cast<int64_t>(defs.size());
  model = register_module("model", torch::nn::ModuleList());
  std::vector<int64_t> ch_out, stride_out;  // per built layer
  auto scale_ch = [&](int64_t c) { return make_divisible(std::min(double(c), max_ch) * width_, 8); };

  for (int64_t i = 0; i < n_layers; ++i) {
    const LayerDef& d = defs[i];
    const std::string& w = d.where;
    LayerInfo li;
    li.index = i;
    li.from = d.from;
    // Resolve inputs: channels and strides of each source (-1 = previous layer, or the image).
    std::vector<int64_t> cin, sin;
    for (int64_t f : d.from) {
      const int64_t j = f < 0 ? i + f : f;
      YQ_CHECK_USAGE(j < i && j >= (i == 0 ? -1 : 0) && (j >= 0 || f == -1),
                     "{}: layer {} takes input from {}, which is not an earlier layer", w, i, f);
      cin.push_back(j < 0 ? 3 : ch_out[j]);
      sin.push_back(j < 0 ? 1 : stride_out[j]);
    }
    const auto& a = d.args;
    const std::string mod = d.module;
    const bool single = d.from.size() == 1;
    auto need = [&](bool ok, const char* form) {
      YQ_CHECK_USAGE(ok, "{}: {} expects {}, found from [{}] args [{}]", w, mod, form, join_ints(d.from),
                     fmt::format("{}", fmt::join(a, ", ")));
    };
    if (mod != "C2f")
      YQ_CHECK_USAGE(d.repeats == 1, "{}: only C2f takes repeats, {} has {}", w, mod, d.repeats);
    Run run;
    if (mod == "Conv") {
      need(single && a.size() >= 1 && a.size() <= 3, "one input and args [c2, k=1, s=1]");
      const int64_t c2 = scale_ch(to_int(a[0], "Conv c2", w));
      const int64_t k = a.size() > 1 ? to_int(a[1], "Conv k", w) : 1;
      const int64_t s = a.size() > 2 ? to_int(a[2], "Conv s", w) : 1;
      YQ_CHECK_USAGE(k >= 1 && k % 2 == 1 && s >= 1, "{}: Conv needs an odd k >= 1 and s >= 1", w);
      auto conv = ConvBnAct(cin[0], c2, k, s);
      model->push_back(conv);
      run = [conv](const std::vector<torch::Tensor>& x) mutable { return conv->forward(x[0]); };
      li.channels = c2;
      li.stride = sin[0] * s;
      li.args = fmt::format("[{}, {}, {}, {}]", cin[0], c2, k, s);
    } else if (mod == "C2f") {
      need(single && a.size() >= 1 && a.size() <= 2, "one input and args [c2, shortcut=False]");
      const int64_t c2 = scale_ch(to_int(a[0], "C2f c2", w));
      const bool shortcut = a.size() > 1 && to_bool(a[1], "C2f shortcut", w);
      li.repeats = d.repeats > 1
                       ? std::max<int64_t>(std::llround(std::nearbyint(double(d.repeats) * depth_)), 1)
                       : d.repeats;  // Python's round (half to even)
      auto block = C2f(cin[0], c2, li.repeats, shortcut);
      model->push_back(block);
      run = [block](const std::vector<torch::Tensor>& x) mutable { return block->forward(x[0]); };
      li.channels = c2;
      li.stride = sin[0];
      li.args = fmt::format("[{}, {}, {}, {}]", cin[0], c2, li.repeats, shortcut ? "True" : "False");
    } else if (mod == "SPPF") {
      need(single && a.size() >= 1 && a.size() <= 2, "one input and args [c2, k=5]");
      const int64_t c2 = scale_ch(to_int(a[0], "SPPF c2", w));
      const int64_t k = a.size() > 1 ? to_int(a[1], "SPPF k", w) : 5;
      YQ_CHECK_USAGE(k >= 1 && k % 2 == 1, "{}: SPPF needs an odd k", w);
      auto block = SPPF(cin[0], c2, k);
      model->push_back(block);
      run = [block](const std::vector<torch::Tensor>& x) mutable { return block->forward(x[0]); };
      li.channels = c2;
      li.stride = sin[0];
      li.args = fmt::format("[{}, {}, {}]", cin[0], c2, k);
    } else if (mod == "nn.Upsample" || mod == "Upsample") {
      need(single && a.size() >= 2 && a.size() <= 3 && a[0] == "None" && (a.size() < 3 || a[2] == "nearest"),
           "one input and args [None, scale, nearest]");
      const int64_t s = to_int(a[1], "Upsample scale", w);
      YQ_CHECK_USAGE(s >= 1 && sin[0] % s == 0, "{}: Upsample by {} of a stride-{} input", w, s, sin[0]);
      auto up = Upsample(s);
      model->push_back(up);
      run = [up](const std::vector<torch::Tensor>& x) mutable { return up->forward(x[0]); };
      li.channels = cin[0];
      li.stride = sin[0] / s;
      li.args = fmt::format("[None, {}, 'nearest']", s);
    } else if (mod == "Concat") {
      need(d.from.size() >= 2 && a.size() <= 1 && (a.empty() || a[0] == "1"),
           "two or more inputs and args [1]");
      for (size_t k = 1; k < sin.size(); ++k)
        YQ_CHECK_USAGE(sin[k] == sin[0], "{}: Concat of inputs at strides {} and {}", w, sin[0], sin[k]);
      auto cat = Concat(1);
      model->push_back(cat);
      run = [cat](const std::vector<torch::Tensor>& x) mutable { return cat->forward(x); };
      li.channels = 0;
      for (int64_t c : cin) li.channels += c;
      li.stride = sin[0];
      li.args = "[1]";
    } else if (mod == "Detect") {
      need(i == n_layers - 1 && a.size() == 1, "to be the last layer with args [nc]");
      if (a[0] != "nc") to_int(a[0], "Detect nc", w);  // a number is accepted; nc comes from the spec
      detect_ = Detect(spec_.nc, cin);
      model->push_back(detect_);
      detect_->init_bias(sin);
      li.channels = 0;
      li.stride = 0;
      li.args = fmt::format("[{}, [{}]]", spec_.nc, join_ints(cin));
    } else {
      throw UsageError(fmt::format("{}: unknown module '{}' (known: {})", w, mod, kKnownModules));
    }
    li.module = mod == "nn.Upsample" ? "Upsample" : mod;
    ch_out.push_back(li.channels);
    stride_out.push_back(li.stride);
    run_.push_back(std::move(run));
    info_.push_back(std::move(li));
  }
  YQ_CHECK_USAGE(!detect_.is_empty(), "{}: the last layer must be Detect", origin);

  keep_.assign(n_layers, false);
  for (int64_t i = 0; i < n_layers; ++i)
    for (int64_t f : info_[i].from)
      if (f != -1) keep_[f < 0 ? i + f : f] = true;

  names_.clear();
  for (int64_t c = 0; c < spec_.nc; ++c) names_.push_back("class" + std::to_string(c));
}

std::vector<torch::Tensor> YoloV8Impl::forward_raw(const torch::Tensor& x,
                                                   std::vector<torch::Tensor>* detect_inputs) {
  const int64_t smax = *std::max_element(strides().begin(), strides().end());
  YQ_CHECK(x.dim() == 4 && x.size(1) == 3, "model input must be [B, 3, H, W], found {}",
           fmt::join(x.sizes(), "x"));
  YQ_CHECK(x.size(2) % smax == 0 && x.size(3) % smax == 0,
           "model input {}x{} (HxW): both sides must be multiples of the largest stride {}", x.size(2),
           x.size(3), smax);
  const int64_t n = static_cast<int64_t>(info_.size());
  std::vector<torch::Tensor> saved(n);
  torch::Tensor y = input_fq.is_empty() ? x : input_fq->forward(x);
  std::vector<torch::Tensor> in;
  for (int64_t i = 0; i < n; ++i) {
    in.clear();
    for (int64_t f : info_[i].from) in.push_back(f == -1 ? y : saved[f < 0 ? i + f : f]);
    if (i == n - 1) {
      if (detect_inputs) *detect_inputs = in;
      return detect_->forward(in);
    }
    y = run_[i](in);
    if (keep_[i]) saved[i] = y;
  }
  YQ_ASSERT(false);
  return {};
}

torch::Tensor YoloV8Impl::forward(const torch::Tensor& x) {
  return detect_->decode(forward_raw(x));
}

YoloV8 copy_model(YoloV8Impl& m) {
  YoloV8 out(m.spec());
  out->set_names(m.names());
  auto src_params = m.named_parameters();
  auto src_buffers = m.named_buffers();
  torch::NoGradGuard no_grad;
  for (auto& p : out->named_parameters()) {
    const auto& src = src_params[p.key()];
    p.value().set_data(src.detach().clone());
    p.value().set_requires_grad(src.requires_grad());
  }
  for (auto& b : out->named_buffers()) b.value().set_data(src_buffers[b.key()].detach().clone());
  out->train(m.is_training());
  return out;
}

int64_t count_parameters(const torch::nn::Module& m) {
  int64_t n = 0;
  for (const auto& p : m.parameters()) n += p.numel();
  return n;
}

int64_t count_trainable(const torch::nn::Module& m) {
  int64_t n = 0;
  for (const auto& p : m.parameters())
    if (p.requires_grad()) n += p.numel();
  return n;
}

}  // namespace yq::model
