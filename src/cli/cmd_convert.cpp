// yoloqat convert weights=QUANT_CKPT [engine=onednn|qnnpack] [name=]: a PTQ or QAT checkpoint -> a true
// int8 model (deploy/int8_model.h), written to <project>/models/int8/<name>.int8 with <name>.json next to
// it: which layers run in int8 and which in float, file size against the fp32 model's parameters, the
// conversion time. `val`, `predict` and `benchmark` read the .int8 file like any other weights=.
// The checkpoint's deployment target (quant/target.h) is recorded; a model that would not be exact on
// this CPU is refused unless allow_inexact=true. data= checks the int8 outputs against fake quant.
#include <fmt/format.h>
#include <torch/torch.h>

#include <chrono>
#include <cmath>

#include "cli/command.h"
#include "core/cpu.h"
#include "core/error.h"
#include "core/log.h"
#include "data/dataset.h"
#include "data/loader.h"
#include "deploy/int8_model.h"
#include "deploy/runtime.h"
#include "model/checkpoint.h"
#include "quant/prepare.h"
#include "quant/qcheckpoint.h"
#include "quant/sensitivity.h"

namespace yq::cli {

namespace {

// int8 raw head outputs against the fake-quant model's on up to `limit` images of `data`'s val split
// (letterboxed squares of imgsz): the signal-to-noise ratio in dB (quant::SqnrAccumulator's rules: +inf when
// identical) and the images used.
std::pair<double, int64_t> check_against_fake_quant(const Config& cfg, model::YoloV8Impl& fake,
                                                    deploy::Int8Model& q) {
  const data::DatasetInfo info = data::load_dataset_yaml(cfg.get_str("data"));
  const std::string split = info.splits.count("val") ? "val" : "train";
  data::SplitIndex idx = data::scan_split(info, split);
  const int64_t limit = cfg.get_int("check_images");
  if (int64_t(idx.samples.size()) > limit) idx.samples.resize(size_t(limit));
  YQ_CHECK_USAGE(!idx.samples.empty(), "data={}: the {} split has no images to check the int8 model on",
                 info.yaml.string(), split);
  data::LoaderOptions lo;
  lo.imgsz = int(cfg.get_int("imgsz")), lo.batch = 4, lo.workers = 0;
  lo.augment = false, lo.shuffle = false, lo.rect = false;
  data::DataLoader loader(idx.samples, info.flip_map, lo);
  quant::enable_observers(fake, false);
  torch::NoGradGuard ng;
  quant::SqnrAccumulator sqnr;
  int64_t images = 0;
  loader.start_epoch(0);
  data::Batch b;
  while (loader.next(b)) {
    const torch::Tensor x = b.images.to(torch::kFloat) / 255.0;
    const auto ref = fake.forward_raw(x), got = q.forward_raw(x);
    for (size_t i = 0; i < ref.size(); ++i) sqnr.add(ref[i], got[i]);
    images += x.size(0);
  }
  return {sqnr.db(), images};
}

void run_convert(const Config& cfg) {
  const std::string weights = cfg.get_str("weights");
  YQ_CHECK_USAGE(!weights.empty(), "key 'weights' is required (a PTQ or QAT checkpoint)");
  YQ_CHECK_USAGE(fs::is_regular_file(weights), "weights={}: no such file", weights);
  YQ_CHECK_USAGE(!deploy::Int8Model::is_int8_file(weights), "weights={}: already an int8 model", weights);
  const auto t0 = std::chrono::steady_clock::now();
  auto ck = model::load_checkpoint(weights, /*prefer_ema=*/true);
  YQ_CHECK_USAGE(quant::is_quantized_meta(ck.meta) && quant::is_prepared(*ck.model),
                 "weights={} is a float checkpoint; convert takes a quantized one (calibrate or qat first)",
                 weights);
  model::YoloV8 net = ck.model;
  net->eval();

  const quant::QConfigMapping mapping = quant::checkpoint_qconfig(ck.meta, weights);
  const std::string target = mapping.target() ? quant::target_name(*mapping.target()) : "";
  deploy::ConvertOptions opt;
  opt.engine = cfg.get_str("engine");
  if (opt.engine.empty()) opt.engine = mapping.target() ? quant::default_engine(*mapping.target()) : "onednn";
  deploy::Int8Model m = deploy::convert(*net, opt);
  const std::string kind = ck.meta.value("kind", std::string("qat"));
  m.meta() = {
      {"source", weights}, {"kind", kind}, {"run_name", ck.meta.value("run_name", "")}, {"target", target}};
  // The file would compute something else than fake quant here: say so before writing it.
  const quant::Exactness ex = m.exactness(cpu_onednn());
  deploy::check_exact(weights, target, m.pair_bound(), m.engine(), cpu_onednn(),
                      cfg.get_bool("allow_inexact"));
  log::info("target {}; int8 pair bound {}: {}", target.empty() ? "(none recorded)" : target, m.pair_bound(),
            ex.why);
  nlohmann::json check = nullptr;
  if (!cfg.get_str("data").empty()) {
    const auto [db, images] = check_against_fake_quant(cfg, *net, m);
    log::info("int8 vs fake quant on {} images of {} at {}: raw output SQNR {:.1f} dB", images,
              cfg.get_str("data"), cfg.get_int("imgsz"), db);
    check = {{"images", images},
             {"imgsz", cfg.get_int("imgsz")},
             {"sqnr_db", std::isinf(db) && db > 0 ? nlohmann::json("inf")
                         : std::isfinite(db)      ? nlohmann::json(db)
                                                  : nlohmann::json(nullptr)}};
  }

  std::string name = cfg.get_str("name");
  if (name.empty()) name = fs::path(weights).parent_path().filename().string();
  if (name.empty()) name = fs::path(weights).stem().string();
  const fs::path dir = fs::path(cfg.get_str("project")) / "models/int8";
  fs::create_directories(dir);
  // name.int8, else name2.int8, name3.int8, ... unless exist_ok.
  fs::path out = dir / (name + deploy::kInt8Extension);
  for (int i = 2; !cfg.get_bool("exist_ok") && fs::exists(out); ++i)
    out = dir / (name + std::to_string(i) + deploy::kInt8Extension);
  m.save(out);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  int64_t convs_int8 = 0, convs_float = 0, junctions_int8 = 0, junctions_float = 0;
  nlohmann::json layers = nlohmann::json::array();
  for (const auto& r : m.report()) {
    const bool conv = r.kind == "conv" || r.kind == "head";
    (conv ? (r.int8 ? convs_int8 : convs_float) : (r.int8 ? junctions_int8 : junctions_float)) += 1;
    layers.push_back({{"name", r.name}, {"kind", r.kind}, {"int8", r.int8}, {"detail", r.detail}});
  }
  const int64_t fp32_bytes = 4 * model::count_parameters(*net);
  const int64_t file_bytes = int64_t(fs::file_size(out));
  nlohmann::json j = {{"source", weights},
                      {"kind", kind},
                      {"output", out.string()},
                      {"engine", m.engine()},
                      {"target", target},
                      {"pair_bound", m.pair_bound()},
                      {"exact_here", ex.exact},
                      {"cpu", cpu_onednn().describe()},
                      {"check", check},
                      {"convs_int8", convs_int8},
                      {"convs_float", convs_float},
                      {"junctions_int8", junctions_int8},
                      {"junctions_float", junctions_float},
                      {"file_bytes", file_bytes},
                      {"weight_bytes", m.weight_bytes()},
                      {"fp32_model_bytes", fp32_bytes},
                      {"size_ratio", double(file_bytes) / double(fp32_bytes)},
                      {"seconds", seconds},
                      {"layers", layers}};
  fs::path summary = out;
  summary.replace_extension(".json");
  atomic_write(summary, j.dump(2));
  log::info("int8 model written to {} ({} convs int8, {} float; {} of {} junctions int8; engine {})",
            out.string(), convs_int8, convs_float, junctions_int8, junctions_int8 + junctions_float,
            m.engine());
  log::info("size {:.2f} MB = {:.3f} x the fp32 model's {:.2f} MB; converted in {:.2f} s",
            double(file_bytes) / 1e6, double(file_bytes) / double(fp32_bytes), double(fp32_bytes) / 1e6,
            seconds);
}

}  // namespace

Command convert_command() {
  Command c;
  c.name = "convert";
  c.summary = "PTQ/QAT checkpoint -> true int8 model (models/int8/NAME.int8, quantized LibTorch kernels)";
  c.declare = [](Schema& s) {
    s.text("weights", "", "quantized checkpoint (from calibrate or qat)");
    s.text("engine", "",
           "quantized engine: onednn (x86) or qnnpack (ARM); \"\" = the target's (qnnpack for arm)",
           {"", "onednn", "qnnpack"});
    add_device_key(s);
    add_inexact_key(s);
    s.text(
        "data", "",
        "dataset.yaml: check the int8 model against the fake-quant one on its val images (\"\" = no check)");
    s.integer("check_images", 16, "images of that check", 1, 100000);
    s.integer("imgsz", 640, "side of the check's square letterboxed input (multiple of 32)", 32, 8192);
    s.text("project", ".", "root of the output tree (dataset/, models/, logs/, reports/)");
    s.text("name", "",
           "output name (\"\" = the checkpoint's run folder); an existing one gets a numbered suffix");
    s.flag("exist_ok", false, "overwrite an existing output of that name");
    add_runtime_keys(s);
  };
  c.run = run_convert;
  return c;
}

}  // namespace yq::cli
