#include "train/trainer.h"

#include <torch/torch.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <ctime>
#include <iostream>
#include <optional>

#include "core/csv_log.h"
#include "core/error.h"
#include "core/log.h"
#include "core/progress.h"
#include "core/tensorboard.h"
#include "data/dataset.h"
#include "data/loader.h"
#include "eval/validator.h"
#include "model/checkpoint.h"
#include "model/yolov8.h"
#include "train/ema.h"
#include "train/loss.h"
#include "train/schedule.h"

namespace yq::train {

namespace {

std::atomic<int> g_interrupts{0};

extern "C" void on_sigint(int) {
  if (g_interrupts.fetch_add(1) >= 1) {
    std::signal(SIGINT, SIG_DFL);
    std::raise(SIGINT);
  }
}

std::string now_iso() {
  std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", std::localtime(&t));
  return buf;
}

const std::vector<std::string> kCsvColumns = {"epoch",
                                              "train/box_loss",
                                              "train/cls_loss",
                                              "train/dfl_loss",
                                              "metrics/precision(B)",
                                              "metrics/recall(B)",
                                              "metrics/mAP50(B)",
                                              "metrics/mAP50-95(B)",
                                              "val/box_loss",
                                              "val/cls_loss",
                                              "val/dfl_loss",
                                              "lr/pg0",
                                              "lr/pg1",
                                              "lr/pg2"};

}  // namespace

void install_interrupt_handler() {
  std::signal(SIGINT, on_sigint);
}
bool interrupt_requested() {
  return g_interrupts.load() > 0;
}
void request_interrupt() {
  g_interrupts = 1;
}
void clear_interrupt() {
  g_interrupts = 0;
}

void declare_train_keys(Schema& s) {
  s.text("data", "", "dataset.yaml of the data set");
  s.text("model", "yolov8n",
         "model: yolov8n/s/m/l/x, a built-in name with .yaml, or a model yaml file; a checkpoint (.pt, "
         ".onnx) here means weights=, as in the reference");
  s.text("weights", "",
         "start from this checkpoint (a yoloqat or reference .pt, an .onnx); its class convs are reset when "
         "nc differs; an explicit model= must agree with it");
  s.flag("strict", true,
         "refuse weights whose tensors do not all match the model (false: load what matches)");
  s.integer("epochs", 100, "epochs to train", 1, 100000);
  s.integer("imgsz", 640, "training image size (square, multiple of 32)", 32, 8192);
  s.integer("batch", 16, "images per batch", 1, 4096);
  s.integer("workers", 2, "loader threads (0 = load in the training thread)", 0, 64);
  s.text("optimizer", "auto", "optimizer", {"auto", "SGD", "AdamW"});
  s.real("lr0", 0.01, "initial learning rate (optimizer=auto chooses its own)", 0, 10);
  s.real("lrf", 0.01, "final learning rate as a fraction of lr0", 0, 1);
  s.flag("cos_lr", false, "cosine learning-rate schedule instead of linear");
  s.real("momentum", 0.937, "SGD momentum / AdamW beta1", 0, 1);
  s.real("weight_decay", 5e-4, "weight decay (scaled by batch * accumulate / nbs)", 0, 1);
  s.real("warmup_epochs", 3.0, "warmup epochs (at least 100 iterations); 0 = none", 0, 1000);
  s.real("warmup_momentum", 0.8, "momentum at the start of warmup", 0, 1);
  s.real("warmup_bias_lr", 0.1, "bias learning rate at the start of warmup", 0, 10);
  s.integer("nbs", 64, "nominal batch size: gradients accumulate to it", 1, 4096);
  s.integer("close_mosaic", 10, "turn mosaic off for the last N epochs", 0, 100000);
  s.real("hsv_h", 0.015, "HSV hue gain", 0, 1);
  s.real("hsv_s", 0.7, "HSV saturation gain", 0, 1);
  s.real("hsv_v", 0.4, "HSV value gain", 0, 1);
  s.real("degrees", 0.0, "rotation range (+- degrees)", 0, 180);
  s.real("translate", 0.1, "translation range (fraction of the image)", 0, 0.9);
  s.real("scale", 0.5, "scale range (1 +- scale)", 0, 0.99);
  s.real("shear", 0.0, "shear range (+- degrees)", 0, 90);
  s.real("perspective", 0.0, "perspective strength", 0, 0.001);
  s.real("fliplr", 0.5, "left-right flip probability (respects the data set's flip_idx)", 0, 1);
  s.real("flipud", 0.0, "up-down flip probability", 0, 1);
  s.real("mosaic", 1.0, "mosaic probability", 0, 1);
  s.real("box", 7.5, "box loss gain", 0, 1000);
  s.real("cls", 0.5, "class loss gain", 0, 1000);
  s.real("dfl", 1.5, "DFL loss gain", 0, 1000);
  s.integer("patience", 50, "stop after N epochs without a better fitness", 1, 100000);
  s.flag("val", true, "validate during training");
  s.integer("val_period", 1, "validate every N epochs (and after the last)", 1, 100000);
  s.integer("seed", 0, "seed of the loader and the model initialisation", 0);
  s.text("resume", "", "continue an interrupted run: 'true' (the run `name`) or a last.pt path");
}

namespace {

// Applies the config's keys to loader options.
data::AugmentOptions augment_options(const Config& cfg) {
  data::AugmentOptions a;
  a.hsv_h = cfg.get_float("hsv_h"), a.hsv_s = cfg.get_float("hsv_s"), a.hsv_v = cfg.get_float("hsv_v");
  a.degrees = cfg.get_float("degrees"), a.translate = cfg.get_float("translate"),
  a.scale = cfg.get_float("scale");
  a.shear = cfg.get_float("shear"), a.perspective = cfg.get_float("perspective");
  a.fliplr = cfg.get_float("fliplr"), a.flipud = cfg.get_float("flipud"), a.mosaic = cfg.get_float("mosaic");
  return a;
}

// items: box, cls, dfl[, the extra loss named `extra`].
std::string fmt_items(const torch::Tensor& items, const std::string& extra = "") {
  auto a = items.accessor<float, 1>();
  std::string s = fmt::format("box {:.3f} cls {:.3f} dfl {:.3f}", a[0], a[1], a[2]);
  if (items.size(0) > 3) s += fmt::format(" {} {:.3f}", extra, a[3]);
  return s;
}

}  // namespace

Config resume_config(const Config& cfg_in, const std::string& kind, fs::path* from) {
  if (cfg_in.get_str("resume").empty()) return cfg_in;
  Config cfg = cfg_in;
  const fs::path project = cfg.get_str("project");
  const std::string r = cfg.get_str("resume");
  const fs::path resume_from =
      (r == "true") ? project / "models/checkpoints" / kind / cfg.get_str("name") / "last.pt" : fs::path(r);
  YQ_CHECK_USAGE(fs::exists(resume_from), "resume: {} does not exist (nothing to resume)",
                 resume_from.string());
  auto ck = model::load_checkpoint(resume_from, false);
  YQ_CHECK_USAGE(ck.meta.value("kind", "") == kind && ck.meta.contains("train_args"),
                 "resume: {} is not a checkpoint of an {} training run", resume_from.string(), kind);
  YQ_CHECK_USAGE(!ck.meta.value("finished", false), "resume: the run of {} already finished all its epochs",
                 resume_from.string());
  Config saved = cfg;
  saved.merge_yaml(ck.meta["train_args"].get<std::string>(), resume_from.string() + " (saved arguments)",
                   true);
  // Keep this invocation's machine settings; everything else continues as it was.
  for (const char* k : {"threads", "workers"})
    if (cfg.is_set(k)) saved.set(k, std::to_string(cfg.get_int(k)), "resume");
  saved.set("resume", "", "resume");
  saved.set("exist_ok", "true", "resume");
  saved.set("name", ck.meta.value("run_name", cfg.get_str("name")), "resume");
  if (from) *from = resume_from;
  return saved;
}

TrainResult train(const Config& cfg_in, const TrainHooks& hooks) {
  Config cfg = cfg_in;
  const fs::path project = cfg.get_str("project");
  TrainResult res;

  // ---- Resume: the run's own configuration and state come from its last checkpoint.
  fs::path resume_from;
  cfg = resume_config(cfg, hooks.kind, &resume_from);

  // ---- Run folders.
  const fs::path ck_root = project / "models/checkpoints" / hooks.kind;
  fs::path run_dir = increment_path(ck_root / cfg.get_str("name"), cfg.get_bool("exist_ok"));
  const std::string run_name = run_dir.filename().string();
  res.run_dir = run_dir;
  res.log_dir = project / "logs" / hooks.kind / run_name;
  fs::create_directories(run_dir);
  fs::create_directories(res.log_dir);
  cfg.save(res.log_dir / "args.yaml");
  cfg.save(run_dir / "args.yaml");
  res.last = run_dir / "last.pt";
  res.best = run_dir / "best.pt";

  // ---- Data.
  YQ_CHECK_USAGE(!cfg.get_str("data").empty(), "key 'data' is required (a dataset.yaml)");
  data::DatasetInfo info = data::load_dataset_yaml(cfg.get_str("data"));
  data::SplitIndex train_idx = data::scan_split(info, "train");
  data::log_summary(train_idx);
  bool do_val = cfg.get_bool("val") && info.splits.count("val");
  std::optional<data::SplitIndex> val_idx;
  if (do_val) {
    val_idx = data::scan_split(info, "val");
    data::log_summary(*val_idx);
    if (val_idx->samples.empty()) {
      log::warn("the val split has no usable images: training without validation (best.pt = last.pt)");
      do_val = false;
    }
  }
  const int imgsz = int(cfg.get_int("imgsz"));
  YQ_CHECK_USAGE(imgsz % 32 == 0, "key 'imgsz' = {} must be a multiple of 32", imgsz);
  const int64_t batch = cfg.get_int("batch");
  data::LoaderOptions lo;
  lo.imgsz = imgsz, lo.batch = int(batch), lo.workers = int(cfg.get_int("workers"));
  lo.seed = uint64_t(cfg.get_int("seed")), lo.aug = augment_options(cfg);
  data::DataLoader train_loader(train_idx.samples, info.flip_map, lo);
  std::unique_ptr<data::DataLoader> val_loader;
  if (do_val) {
    data::LoaderOptions vo = lo;
    vo.augment = false, vo.shuffle = false, vo.rect = true, vo.batch = int(std::max<int64_t>(1, batch * 2));
    val_loader = std::make_unique<data::DataLoader>(val_idx->samples, info.flip_map, vo);
  }

  // ---- Model.
  torch::manual_seed(uint64_t(cfg.get_int("seed")));
  model::YoloV8 net{nullptr};
  std::optional<model::Checkpoint> resume_ck;
  if (!resume_from.empty()) {
    resume_ck = model::load_checkpoint(resume_from, false);
    net = resume_ck->raw;
  } else if (!cfg.get_str("weights").empty()) {
    auto ck = model::load_checkpoint(cfg.get_str("weights"), true, cfg.get_bool("strict"));
    if (cfg.is_set("model"))
      model::check_model_matches(cfg.get_str("model"), *ck.model, cfg.get_str("weights"));
    model::ModelSpec spec = ck.model->spec();
    if (spec.nc != info.nc) {
      log::info("weights {} have {} classes, the data set {}: loading everything but the class convs",
                cfg.get_str("weights"), spec.nc, info.nc);
      spec.nc = info.nc;
      net = model::YoloV8(spec);
      model::load_named_state(*net, model::named_state(*ck.model), false, cfg.get_str("weights"));
    } else {
      net = ck.model;
    }
  } else {
    net = model::YoloV8(model::parse_model_name(cfg.get_str("model"), info.nc));
  }
  YQ_CHECK_USAGE(net->nc() == info.nc, "the model has {} classes but the data set {}", net->nc(), info.nc);
  net->set_names(info.names);
  if (hooks.prepare) hooks.prepare(*net);
  net->train();

  // ---- Optimizer, schedule, loss, EMA.
  const int64_t nb = train_loader.num_batches();
  const int64_t epochs = cfg.get_int("epochs");
  const int64_t nbs = cfg.get_int("nbs");
  int64_t accumulate = std::max<int64_t>(int64_t(std::lround(double(nbs) / double(batch))), 1);
  const double wd = cfg.get_float("weight_decay") * double(batch) * double(accumulate) / double(nbs);
  OptimizerChoice oc = resolve_optimizer(cfg.get_str("optimizer"), cfg.get_float("lr0"),
                                         cfg.get_float("momentum"), cfg.get_float("warmup_bias_lr"),
                                         train_loader.num_samples(), batch, nbs, epochs, info.nc);
  auto optimizer = build_optimizer(net, oc, wd);
  std::vector<double> initial_lr;
  for (auto& g : optimizer->param_groups()) initial_lr.push_back(group_lr(g));
  const double lrf = cfg.get_float("lrf");
  const bool cos_lr = cfg.get_bool("cos_lr");

  LossOptions loss_opts;
  loss_opts.box = cfg.get_float("box"), loss_opts.cls = cfg.get_float("cls"),
  loss_opts.dfl = cfg.get_float("dfl");
  DetectionLoss criterion(int(info.nc), net->strides(), loss_opts);

  ModelEMA ema(net, 0.9999, 2000, 0, hooks.prepare);
  int start_epoch = 0;
  double best_fitness = -1;
  int best_epoch = -1;
  if (resume_ck) {
    if (resume_ck->has_optimizer) model::load_optimizer_state(resume_from, *optimizer);
    auto full = model::load_checkpoint(resume_from, true);
    model::copy_state(full.model, ema.model());
    ema.set_updates(resume_ck->meta.value("updates", int64_t(0)));
    start_epoch = resume_ck->meta.value("epoch", -1) + 1;
    best_fitness = resume_ck->meta.value("best_fitness", -1.0);
    best_epoch = resume_ck->meta.value("best_epoch", -1);
    log::info("resuming {} from epoch {} of {}", run_name, start_epoch + 1, epochs);
  }

  const double warmup_epochs = cfg.get_float("warmup_epochs");
  const int64_t nw = warmup_epochs > 0 ? std::max<int64_t>(std::lround(warmup_epochs * double(nb)), 100) : -1;
  const int64_t close_mosaic = cfg.get_int("close_mosaic");
  const int64_t patience = cfg.get_int("patience");

  const bool extra = bool(hooks.extra_loss);
  const std::string extra_col = "train/" + hooks.extra_loss_name + "_loss";
  std::vector<std::string> csv_columns = kCsvColumns;
  if (extra) csv_columns.insert(csv_columns.begin() + 4, extra_col);  // after train/dfl_loss
  CsvLog csv(res.log_dir / "results.csv", csv_columns);
  csv.truncate_from(double(start_epoch + 1));
  TensorBoardWriter tb(project / "logs/tensorboard" / run_name);

  auto save = [&](const fs::path& path, int epoch_done, const nlohmann::json& metrics, bool interrupted) {
    nlohmann::json meta;
    meta["kind"] = hooks.kind;
    meta.update(hooks.extra_meta);
    meta["run_name"] = run_name;
    meta["epoch"] = epoch_done;
    meta["epochs"] = epochs;
    meta["best_fitness"] = best_fitness;
    meta["best_epoch"] = best_epoch;
    meta["updates"] = ema.updates();
    meta["train_args"] = cfg.to_yaml();
    meta["metrics"] = metrics;
    meta["date"] = now_iso();
    meta["interrupted"] = interrupted;
    meta["finished"] = !interrupted && epoch_done + 1 >= epochs;
    meta["data"] = info.yaml.string();
    model::save_checkpoint(path, net, &ema.model(), optimizer.get(), meta);
  };

  log::info(
      "training {} ({} classes) on {} images, {} batches of {} per epoch, accumulate {}, {} epochs -> {}",
      net->spec().name, info.nc, train_loader.num_samples(), nb, batch, accumulate, epochs, run_dir.string());
  install_interrupt_handler();
  clear_interrupt();
  int64_t last_opt_step = -1;
  int epochs_without_improvement = 0;
  double epoch_seconds_sum = 0;
  int epochs_timed = 0;
  nlohmann::json last_metrics;
  int epoch = start_epoch;
  for (; epoch < epochs; ++epoch) {
    auto t_epoch = std::chrono::steady_clock::now();
    if (close_mosaic > 0 && epoch >= epochs - close_mosaic) train_loader.set_mosaic(0.0);
    if (hooks.epoch_start) hooks.epoch_start(epoch, *net);
    net->train();
    train_loader.start_epoch(epoch);
    optimizer->zero_grad();
    torch::Tensor mean_items = torch::zeros({extra ? 4 : 3});
    ProgressBar bar(fmt::format("epoch {}/{}", epoch + 1, epochs), nb);
    data::Batch b;
    int64_t i = 0;
    for (; train_loader.next(b); ++i) {
      const int64_t ni = i + nb * epoch;
      if (ni <= nw) {
        accumulate =
            std::max<int64_t>(1, std::lround(interp(double(ni), 0, double(nw), 1, double(nbs) / batch)));
        for (size_t j = 0; j < optimizer->param_groups().size(); ++j) {
          auto& g = optimizer->param_groups()[j];
          set_group_lr(g, interp(double(ni), 0, double(nw), j == 0 ? oc.warmup_bias_lr : 0.0,
                                 initial_lr[j] * lr_factor(epoch, epochs, lrf, cos_lr)));
          set_group_momentum(
              g, interp(double(ni), 0, double(nw), cfg.get_float("warmup_momentum"), oc.momentum));
        }
      }
      auto x = b.images.to(torch::kFloat32).div_(255);
      std::vector<torch::Tensor> detect_inputs;
      auto raw = net->forward_raw(x, extra ? &detect_inputs : nullptr);
      auto out = criterion(raw, b.targets, x.size(2), x.size(3));
      if (extra) {
        torch::Tensor e = hooks.extra_loss(x, raw, detect_inputs);
        out.total = out.total + e * double(x.size(0));
        out.items = torch::cat({out.items, e.detach().reshape({1}).to(out.items.dtype())});
      }
      if (!torch::isfinite(out.total).item<bool>()) {
        throw Error(fmt::format(
            "the loss became {} at epoch {} batch {} ({}); no checkpoint was written for this "
            "epoch. Lower lr0 "
            "(now {}) or check the labels; the last good checkpoint is {}",
            out.total.item<double>(), epoch + 1, i + 1, fmt_items(out.items, hooks.extra_loss_name), oc.lr0,
            fs::exists(res.last) ? res.last.string() : "none"));
      }
      out.total.backward();
      mean_items = (mean_items * double(i) + out.items) / double(i + 1);
      if (ni - last_opt_step >= accumulate) {
        torch::nn::utils::clip_grad_norm_(net->parameters(), 10.0);
        optimizer->step();
        optimizer->zero_grad();
        ema.update(net);
        last_opt_step = ni;
      }
      bar.update(i + 1,
                 fmt_items(mean_items, hooks.extra_loss_name) + fmt::format(" {} img", b.images.size(0)));
      if (hooks.after_batch) hooks.after_batch(epoch, i, *net);
      if (interrupt_requested()) break;
    }
    if (interrupt_requested()) {
      bar.finish("interrupted");
      // The interrupted epoch runs again on resume, from the weights reached so far.
      save(res.last, epoch - 1, last_metrics, true);
      log::warn("interrupted: saved {}; continue with `yoloqat {} resume=true name={}`", res.last.string(),
                hooks.kind == "fp32" ? "train" : hooks.kind, run_name);
      res.interrupted = true;
      break;
    }
    bar.finish(fmt_items(mean_items, hooks.extra_loss_name));
    std::vector<double> lrs;
    for (auto& g : optimizer->param_groups()) lrs.push_back(group_lr(g));
    // Scheduler step: the learning rate of the next epoch.
    for (size_t j = 0; j < optimizer->param_groups().size(); ++j)
      set_group_lr(optimizer->param_groups()[j], initial_lr[j] * lr_factor(epoch + 1, epochs, lrf, cos_lr));

    // Validation of the EMA model.
    const bool final_epoch = epoch + 1 == epochs;
    double fitness = -1;
    std::vector<double> row = {double(epoch + 1)};
    auto mi = mean_items.accessor<float, 1>();
    row.insert(row.end(), {mi[0], mi[1], mi[2]});
    if (extra) row.push_back(mi[3]);
    if (do_val && ((epoch + 1) % cfg.get_int("val_period") == 0 || final_epoch)) {
      auto& em = ema.model();
      em->eval();
      if (hooks.before_val) hooks.before_val(*em);
      eval::Detector det;
      det.raw = [&](const torch::Tensor& x) { return em->forward_raw(x); };
      det.decode = [&](const std::vector<torch::Tensor>& r) { return em->decode(r); };
      eval::ValOptions vopt;
      auto vr = eval::validate(det, *val_loader, int(info.nc), vopt, &criterion);
      const auto& m = vr.metrics;
      fitness = m.fitness();
      last_metrics = {{"precision", m.precision()},
                      {"recall", m.recall()},
                      {"mAP50", m.map50()},
                      {"mAP50-95", m.map()},
                      {"fitness", fitness}};
      auto vl = vr.loss.accessor<float, 1>();
      row.insert(row.end(), {m.precision(), m.recall(), m.map50(), m.map(), vl[0], vl[1], vl[2]});
      log::info("epoch {}/{}: P {:.3f} R {:.3f} mAP50 {:.3f} mAP50-95 {:.3f}", epoch + 1, epochs,
                m.precision(), m.recall(), m.map50(), m.map());
      tb.add_scalar("metrics/precision(B)", m.precision(), epoch + 1);
      tb.add_scalar("metrics/recall(B)", m.recall(), epoch + 1);
      tb.add_scalar("metrics/mAP50(B)", m.map50(), epoch + 1);
      tb.add_scalar("metrics/mAP50-95(B)", m.map(), epoch + 1);
      tb.add_scalar("val/box_loss", vl[0], epoch + 1);
      tb.add_scalar("val/cls_loss", vl[1], epoch + 1);
      tb.add_scalar("val/dfl_loss", vl[2], epoch + 1);
    } else {
      row.insert(row.end(), 7, std::nan(""));
    }
    row.insert(row.end(), lrs.begin(), lrs.end());
    csv.append(row);
    tb.add_scalar("train/box_loss", mi[0], epoch + 1);
    tb.add_scalar("train/cls_loss", mi[1], epoch + 1);
    tb.add_scalar("train/dfl_loss", mi[2], epoch + 1);
    if (extra) tb.add_scalar(extra_col, mi[3], epoch + 1);
    for (size_t j = 0; j < lrs.size(); ++j) tb.add_scalar(fmt::format("lr/pg{}", j), lrs[j], epoch + 1);
    tb.flush();

    // Without validation every epoch counts as the best so far (best.pt = last.pt).
    bool improved = !do_val || fitness > best_fitness;
    if (improved) {
      best_fitness = std::max(best_fitness, fitness);
      best_epoch = epoch;
      epochs_without_improvement = 0;
    } else {
      ++epochs_without_improvement;
    }
    save(res.last, epoch, last_metrics, false);
    if (improved) {  // a copy and a rename: an interrupted copy never leaves a half-written best.pt
      fs::path tmp = res.best;
      tmp += ".tmp";
      fs::copy_file(res.last, tmp, fs::copy_options::overwrite_existing);
      fs::rename(tmp, res.best);
    }
    epoch_seconds_sum += std::chrono::duration<double>(std::chrono::steady_clock::now() - t_epoch).count();
    ++epochs_timed;
    if (do_val && epochs_without_improvement >= patience) {
      log::info("no improvement for {} epochs (best epoch {}): stopping early", patience, best_epoch + 1);
      ++epoch;
      break;
    }
  }
  res.epochs_done = epoch - start_epoch;
  res.best_fitness = best_fitness;
  res.seconds_per_epoch = epochs_timed ? epoch_seconds_sum / epochs_timed : 0;
  if (res.interrupted) return res;

  // A finished run's best.pt keeps only what inference and the next step (calibrate, qat, convert) read:
  // the EMA weights as the model, no raw weights, no optimizer state (a quarter of the size). last.pt
  // keeps everything.
  if (fs::exists(res.best)) {
    auto full = model::load_checkpoint(res.best, /*prefer_ema=*/true);
    if (full.has_ema || full.has_optimizer) {
      nlohmann::json meta = full.meta;
      meta["stripped"] = "EMA weights only (raw weights and optimizer state are in last.pt)";
      model::save_checkpoint(res.best, full.model, nullptr, nullptr, meta);
    }
  }

  // Final validation of best.pt, with the per-class table.
  if (do_val && fs::exists(res.best)) {
    auto best = model::load_checkpoint(res.best, true);
    best.model->eval();
    if (hooks.before_val) hooks.before_val(*best.model);
    eval::Detector det;
    det.forward = [&](const torch::Tensor& x) { return best.model->forward(x); };
    auto vr = eval::validate(det, *val_loader, int(info.nc), eval::ValOptions{});
    std::cout << eval::format_metrics_table(vr.metrics, info.names);
    res.final_metrics = vr.metrics.to_json(info.names);
    atomic_write(res.log_dir / "metrics.json", res.final_metrics.dump(2));
  }
  log::info("{} epochs in {:.1f} s/epoch; best fitness {:.4f} (epoch {}); checkpoints in {}", res.epochs_done,
            res.seconds_per_epoch, best_fitness, best_epoch + 1, run_dir.string());
  return res;
}

}  // namespace yq::train
