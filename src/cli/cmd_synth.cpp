// yoloqat synth: writes the synthetic Vietnamese traffic-sign data set (src/data/synth.h).
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "core/error.h"
#include "core/log.h"
#include "data/synth.h"

namespace yq::cli {

Command synth_command() {
  Command c;
  c.name = "synth";
  c.summary = "write the synthetic Vietnamese traffic-sign data set (YOLO layout + dataset.yaml)";
  c.declare = [](Schema& s) {
    s.text("out", "dataset/vietnam-traffic-sign-detection",
           "output folder of the data set (relative: under project)");
    s.text("project", ".", "root of the output tree (dataset/, models/, logs/, reports/)");
    s.integer("train", 600, "training images", 0, 10000000);
    s.integer("val", 150, "validation images (valid/)", 0, 10000000);
    s.integer("test", 150, "test images", 0, 10000000);
    s.integer("seed", 0, "random seed: the same seed and options give the same bytes", 0);
    s.integers("imgsz", "640,384", "image size W,H (one value = square)", 32, 8192);
    s.text("classes", "zalo7", "class set: zalo7 (the 7 Zalo AI groups) or qcvn (QCVN 41 sign codes)",
           {"zalo7", "qcvn"});
    s.text("backgrounds", "", "folder of photos to crop scenes from (\"\" = procedural street scenes)");
    add_runtime_keys(s);
  };
  c.run = [](const Config& cfg) {
    data::SynthOptions o;
    o.out = cfg.get_str("out");
    if (o.out.is_relative()) o.out = fs::path(cfg.get_str("project")) / o.out;
    o.train = int(cfg.get_int("train"));
    o.val = int(cfg.get_int("val"));
    o.test = int(cfg.get_int("test"));
    o.seed = uint64_t(cfg.get_int("seed"));
    std::vector<int64_t> sz = cfg.get_ints("imgsz");
    YQ_CHECK_USAGE(sz.size() == 1 || sz.size() == 2, "imgsz: expected W,H or one size, got {} values",
                   sz.size());
    o.width = int(sz[0]);
    o.height = int(sz.back());
    o.classes = cfg.get_str("classes");
    o.backgrounds = cfg.get_str("backgrounds");
    o.threads = int(cfg.get_int("threads"));

    data::SynthReport r = data::synthesize(o);
    const auto names = data::synth_class_names(o.classes);
    std::string counts;
    nlohmann::ordered_json per_class = nlohmann::ordered_json::object();
    for (size_t i = 0; i < names.size(); ++i) {
      counts += fmt::format("{}{} {}", i ? ", " : "", names[i], r.per_class[i]);
      per_class[names[i]] = r.per_class[i];
    }
    log::info(
        "synth: {} images ({} train, {} val, {} test), {} boxes, {} without signs, {:.1f} s ({:.1f} "
        "images/s)",
        r.images, o.train, o.val, o.test, r.boxes, r.backgrounds, r.seconds,
        r.seconds > 0 ? r.images / r.seconds : 0.0);
    log::info("synth: per class: {}", counts);
    log::info("synth: wrote {}", (o.out / "dataset.yaml").string());

    nlohmann::ordered_json j;
    j["images"] = r.images;
    j["splits"] = {{"train", o.train}, {"val", o.val}, {"test", o.test}};
    j["boxes"] = r.boxes;
    j["backgrounds"] = r.backgrounds;
    j["per_class"] = per_class;
    j["seconds"] = r.seconds;
    j["seed"] = o.seed;
    j["imgsz"] = {o.width, o.height};
    j["classes"] = o.classes;
    atomic_write(o.out / "synth.json", j.dump(2) + "\n");
    cfg.save((o.out / "synth_args.yaml").string());
  };
  return c;
}

}  // namespace yq::cli
