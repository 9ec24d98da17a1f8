#include "model/checkpoint.h"

#include <unistd.h>

#include <atomic>
#include <map>
#include <optional>

#include "core/error.h"
#include "core/log.h"
#include "model/onnx_import.h"
#include "model/pt_load.h"
#include "model/zip_reader.h"
#include "quant/prepare.h"

namespace yq::model {

nlohmann::json spec_to_json(const ModelSpec& s) {
  return {{"name", s.name},   {"scale", s.scale},  {"nc", s.nc},
          {"depth", s.depth}, {"width", s.width},  {"max_channels", s.max_channels},
          {"yaml", s.yaml},   {"origin", s.origin}};
}

ModelSpec spec_from_json(const nlohmann::json& j) {
  ModelSpec s;
  s.name = j.at("name").get<std::string>();
  s.scale = j.at("scale").get<std::string>();
  s.nc = j.at("nc").get<int64_t>();
  s.depth = j.at("depth").get<double>();
  s.width = j.at("width").get<double>();
  s.max_channels = j.at("max_channels").get<int64_t>();
  s.yaml = j.at("yaml").get<std::string>();
  s.origin = j.at("origin").get<std::string>();
  return s;
}

std::vector<std::pair<std::string, torch::Tensor>> named_state(torch::nn::Module& m) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& p : m.named_parameters(true)) out.emplace_back(p.key(), p.value());
  for (const auto& b : m.named_buffers(true)) out.emplace_back(b.key(), b.value());
  return out;
}

int64_t load_named_state(torch::nn::Module& m,
                         const std::vector<std::pair<std::string, torch::Tensor>>& state, bool strict,
                         const std::string& origin) {
  // One implementation of name/shape-checked loading (model/pt_load.h); this adds the file's name.
  LoadOptions options;
  options.strict = strict;
  const LoadReport r = with_context(origin, [&] { return load_state_dict(m, state, options); });
  if (!r.complete()) log::warn("{}: {}", origin, r.summary());
  return r.loaded;
}

namespace {

void write_state(torch::serialize::OutputArchive& ar, const std::string& prefix, torch::nn::Module& m) {
  for (auto& [name, t] : named_state(m)) ar.write(prefix + name, t.detach().cpu(), /*is_buffer=*/true);
}

std::vector<std::pair<std::string, torch::Tensor>> read_state(torch::serialize::InputArchive& ar,
                                                              const std::string& prefix) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& key : ar.keys()) {
    if (key.rfind(prefix, 0) != 0) continue;
    torch::Tensor t;
    ar.read(key, t, /*is_buffer=*/true);
    out.emplace_back(key.substr(prefix.size()), t);
  }
  return out;
}

}  // namespace

void save_checkpoint(const fs::path& path, YoloV8& model, YoloV8* ema, torch::optim::Optimizer* optimizer,
                     nlohmann::json meta) {
  meta["format"] = kCheckpointFormat;
  meta["version"] = kCheckpointVersion;
  meta["spec"] = spec_to_json(model->spec());
  meta["names"] = model->names();
  meta["has_ema"] = ema != nullptr;
  meta["has_optimizer"] = optimizer != nullptr;
  torch::serialize::OutputArchive ar;
  ar.write("meta", c10::IValue(meta.dump()));
  write_state(ar, "model.", *model);
  if (ema) write_state(ar, "ema.", **ema);
  if (optimizer) {
    torch::serialize::OutputArchive opt_ar;
    optimizer->save(opt_ar);
    ar.write("optimizer", opt_ar);
  }
  if (path.has_parent_path()) fs::create_directories(path.parent_path());
  static std::atomic<int> counter{0};
  fs::path tmp = path;
  tmp += fmt::format(".tmp{}.{}", ::getpid(), counter++);
  try {
    ar.save_to(tmp.string());
  } catch (const std::exception& e) {
    std::error_code ec;
    fs::remove(tmp, ec);
    throw Error(fmt::format("writing checkpoint {} failed: {}", path.string(), e.what()));
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    fs::remove(tmp, ec);
    throw Error(fmt::format("cannot move checkpoint {} into place: {}", path.string(), ec.message()));
  }
}

static nlohmann::json read_meta(torch::serialize::InputArchive& ar, const fs::path& path) {
  c10::IValue v;
  YQ_CHECK(ar.try_read("meta", v) && v.isString(), "{} is not a yoloqat checkpoint (no header)",
           path.string());
  nlohmann::json meta = nlohmann::json::parse(v.toStringRef());
  YQ_CHECK(meta.value("format", "") == kCheckpointFormat, "{} is not a yoloqat checkpoint", path.string());
  YQ_CHECK(meta.value("version", 0) <= kCheckpointVersion,
           "{} was written by a newer yoloqat (checkpoint version {}, this build reads up to {})",
           path.string(), meta.value("version", 0), kCheckpointVersion);
  return meta;
}

bool is_reference_checkpoint(const fs::path& path) {
  // The reference's torch.save archives hold <dir>/data.pkl; ours (LibTorch archives) also hold
  // <dir>/constants.pkl and code/.
  try {
    ZipReader z = ZipReader::open(path);
    bool data = false, constants = false;
    auto ends = [](const std::string& s, const std::string& t) {
      return s.size() >= t.size() && s.compare(s.size() - t.size(), t.size(), t) == 0;
    };
    for (const auto& e : z.entries()) {
      data = data || ends(e.name, "/data.pkl");
      constants = constants || ends(e.name, "/constants.pkl");
    }
    return data && !constants;
  } catch (const std::exception&) {
    return false;
  }
}

Checkpoint load_checkpoint(const fs::path& path, bool prefer_ema, bool strict) {
  YQ_CHECK_USAGE(fs::exists(path), "checkpoint {} does not exist", path.string());
  if (lower_ext(path) == "onnx") {
    // A YOLOv8 ONNX export (reference layout): conv weights from the initializers, BN as identity.
    return with_context("while importing ONNX model " + path.string(), [&] {
      Checkpoint ck;
      ck.model = model_from_onnx(path);
      ck.raw = ck.model;
      ck.meta = {{"format", "onnx"}, {"kind", "fp32"}, {"source", path.string()}};
      return ck;
    });
  }
  if (is_reference_checkpoint(path)) {
    // A YOLOv8 .pt from the reference tool: read safely (nothing executed), strict name/shape check.
    return with_context("while importing reference checkpoint " + path.string(), [&] {
      Checkpoint ck;
      LoadReport report;
      ck.model = model_from_checkpoint(path, ImportOptions{0, strict}, &report);
      ck.raw = ck.model;
      ck.meta = {{"format", "ultralytics"}, {"kind", "fp32"}, {"source", path.string()}};
      log::info("{}: reference checkpoint, {}", path.string(), report.summary());
      return ck;
    });
  }
  return with_context("while loading checkpoint " + path.string(), [&] {
    torch::serialize::InputArchive ar;
    ar.load_from(path.string());
    Checkpoint ck;
    ck.meta = read_meta(ar, path);
    ModelSpec spec = spec_from_json(ck.meta.at("spec"));
    auto names = ck.meta.at("names").get<std::vector<std::string>>();
    // Quantized checkpoints (kind ptq / qat) hold their qconfig: the model is prepared with it before
    // the quantizer state is loaded.
    std::optional<quant::QConfigMapping> qconfig;
    if (ck.meta.contains("qconfig"))
      qconfig = quant::QConfigMapping::from_yaml(ck.meta["qconfig"].get<std::string>(),
                                                 path.string() + " (qconfig)");
    auto build = [&] {
      YoloV8 m(spec);
      m->set_names(names);
      if (qconfig) quant::prepare(*m, *qconfig);
      return m;
    };
    ck.raw = build();
    load_named_state(*ck.raw, read_state(ar, "model."), strict, path.string());
    ck.has_ema = ck.meta.value("has_ema", false);
    ck.has_optimizer = ck.meta.value("has_optimizer", false);
    if (ck.has_ema && prefer_ema) {
      ck.model = build();
      load_named_state(*ck.model, read_state(ar, "ema."), strict, path.string() + " (EMA)");
    } else {
      ck.model = ck.raw;
    }
    return ck;
  });
}

void load_optimizer_state(const fs::path& path, torch::optim::Optimizer& optimizer) {
  torch::serialize::InputArchive ar;
  ar.load_from(path.string());
  torch::serialize::InputArchive opt_ar;
  YQ_CHECK(ar.try_read("optimizer", opt_ar), "{} holds no optimizer state", path.string());
  optimizer.load(opt_ar);
}

void copy_state(YoloV8& src, YoloV8& dst) {
  torch::NoGradGuard ng;
  auto s = named_state(*src);
  auto d = named_state(*dst);
  YQ_ASSERT(s.size() == d.size());
  for (size_t i = 0; i < s.size(); ++i) d[i].second.copy_(s[i].second);
}

}  // namespace yq::model

namespace yq::model {

namespace {

std::string shape_text(const torch::Tensor& t) {
  std::string s;
  for (int64_t d : t.sizes()) s += (s.empty() ? "" : ", ") + std::to_string(d);
  return "[" + s + "]";
}

int64_t parameter_count(torch::nn::Module& m) {
  int64_t n = 0;
  for (const auto& p : m.parameters()) n += p.numel();
  return n;
}

}  // namespace

void check_model_matches(const std::string& model_key, YoloV8Impl& have, const std::string& weights) {
  ModelSpec wanted_spec = parse_model_name(model_key, have.nc());
  YoloV8 wanted(wanted_spec);
  // Conv weights only: BN, quantizer state and the fused forms add or drop other tensors, and the conv
  // shapes alone fix the architecture (depth: which convs exist; width: their channels).
  std::map<std::string, torch::Tensor> loaded;
  for (const auto& p : have.named_parameters()) loaded[p.key()] = p.value();
  std::string diff;
  for (const auto& p : wanted->named_parameters()) {
    if (p.value().dim() != 4) continue;
    auto it = loaded.find(p.key());
    if (it == loaded.end())
      diff = fmt::format("{} has no {}", weights, p.key());
    else if (!it->second.sizes().equals(p.value().sizes()))
      diff = fmt::format("{} is {} in {} but {} in model={}", p.key(), shape_text(it->second), weights,
                         shape_text(p.value()), model_key);
    if (!diff.empty()) break;
  }
  if (diff.empty()) {
    int64_t convs = 0;
    for (const auto& p : have.named_parameters())
      if (p.value().dim() == 4 && p.key().find("_fq") == std::string::npos) ++convs;
    int64_t wanted_convs = 0;
    for (const auto& p : wanted->named_parameters()) wanted_convs += p.value().dim() == 4;
    if (convs != wanted_convs)
      diff = fmt::format("{} has {} conv layers, model={} {}", weights, convs, model_key, wanted_convs);
  }
  YQ_CHECK_USAGE(diff.empty(),
                 "model={} conflicts with weights={} ({}, {:.2f}M parameters): {}. The weights define the "
                 "model: leave model= out to use theirs, or leave weights= out to start {} from scratch",
                 model_key, weights, have.spec().name, double(parameter_count(have)) / 1e6, diff,
                 wanted_spec.name);
}

}  // namespace yq::model
