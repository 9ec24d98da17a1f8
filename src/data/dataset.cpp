#include "data/dataset.h"

#include <yaml-cpp/yaml.h>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <set>
#include <sstream>
#include <thread>

#include "core/error.h"
#include "core/log.h"

namespace yq::data {

namespace {

constexpr int kCacheVersion = 2;  // 2: polygon lines read as boxes
// <labels folder> + this: train/labels.yoloqat.json (the reference keeps train/labels.cache).
constexpr const char* kCacheSuffix = ".yoloqat.json";
// A box corner up to this far outside [0, 1] is clipped; further out the line is rejected.
constexpr float kClipTolerance = 0.02f;

std::string yaml_where(const fs::path& yaml, const YAML::Node& n) {
  return fmt::format("{}: line {}", yaml.string(), n.Mark().line + 1);
}

// Where a split entry is, for a root: the entry under the root, else beside the yaml, else (Roboflow's
// data.yaml says 'train: ../train/images' for train/images beside the yaml; the reference falls back
// the same way) the entry without its '../' under the root. The root-relative path when none exists.
fs::path resolve_under(const fs::path& root, const fs::path& yaml_dir, const std::string& entry) {
  fs::path p(entry);
  if (p.is_absolute()) return p;
  std::error_code ec;
  fs::path a = root / p;
  if (fs::exists(a, ec)) return a.lexically_normal();
  fs::path b = yaml_dir / p;
  if (fs::exists(b, ec)) return b.lexically_normal();
  if (entry.rfind("../", 0) == 0) {
    fs::path c = root / entry.substr(3);
    if (fs::exists(c, ec)) return c.lexically_normal();
  }
  return a.lexically_normal();
}

// The data set root of a relative `path:` as the reference resolves it: from the working directory,
// then (yoloqat's reading until now, and where a data set that travelled with its yaml is) beside the
// yaml, then under ./datasets (the reference's default datasets_dir). The first candidate under which
// the train / val entries exist wins; else the first that is a folder; else the one beside the yaml.
fs::path resolve_root(const fs::path& path, const fs::path& yaml_dir,
                      const std::map<std::string, std::vector<std::string>>& splits) {
  if (path.is_absolute()) return path.lexically_normal();
  std::error_code ec;
  const fs::path cwd = fs::current_path(ec);
  std::vector<fs::path> candidates = {(cwd / path).lexically_normal(), (yaml_dir / path).lexically_normal(),
                                      (cwd / "datasets" / path).lexically_normal()};
  auto holds_splits = [&](const fs::path& root) {
    bool any = false;
    for (const char* split : {"train", "val"}) {
      auto it = splits.find(split);
      if (it == splits.end()) continue;
      for (const auto& e : it->second) {
        if (fs::path(e).is_absolute()) continue;
        if (!fs::exists(resolve_under(root, root, e), ec)) return false;
        any = true;
      }
    }
    return any;
  };
  for (const auto& c : candidates)
    if (fs::is_directory(c, ec) && holds_splits(c)) return c;
  for (const auto& c : candidates)
    if (fs::is_directory(c, ec)) return c;
  return candidates[1];
}

// The entries of `splits` that do not exist, as "split: entry (resolved path)".
std::vector<std::string> missing_entries(const DatasetInfo& info, const std::vector<std::string>& splits);

// The hint a missing split entry of a data set with a download: key ends with.
std::string no_download_note(const DatasetInfo& info) {
  if (info.download.empty()) return "";
  return ". Its dataset.yaml has a download: key, but yoloqat does not download data sets (no network "
         "access is used): download and unpack the data yourself so that the paths of the yaml exist";
}

}  // namespace

DatasetInfo load_dataset_yaml(const fs::path& yaml_path) {
  YQ_CHECK_USAGE(fs::exists(yaml_path), "data set file {} does not exist", yaml_path.string());
  DatasetInfo info;
  info.yaml = fs::absolute(yaml_path).lexically_normal();
  YAML::Node root;
  try {
    root = YAML::LoadFile(yaml_path.string());
  } catch (const YAML::Exception& e) {
    throw UsageError(
        fmt::format("{}: line {}: YAML syntax error: {}", yaml_path.string(), e.mark.line + 1, e.msg));
  }
  YQ_CHECK_USAGE(root.IsMap(), "{}: expected a mapping with path, train, val, nc, names", yaml_path.string());

  fs::path dir = info.yaml.parent_path();
  info.root = dir;

  for (const char* split : {"train", "val", "test"}) {
    YAML::Node n = root[split];
    if (!n || n.IsNull()) continue;
    std::vector<std::string> entries;
    if (n.IsScalar()) {
      entries.push_back(n.Scalar());
    } else if (n.IsSequence()) {
      for (const auto& e : n) {
        YQ_CHECK_USAGE(e.IsScalar(), "{}: key '{}' must list paths", yaml_where(yaml_path, e), split);
        entries.push_back(e.Scalar());
      }
    } else {
      throw UsageError(
          fmt::format("{}: key '{}' must be a path or a list of paths", yaml_where(yaml_path, n), split));
    }
    info.splits[split] = entries;
  }
  YQ_CHECK_USAGE(info.splits.count("train") || info.splits.count("val"),
                 "{}: neither 'train' nor 'val' is given", yaml_path.string());
  if (root["path"] && !root["path"].IsNull()) {
    info.root = resolve_root(root["path"].as<std::string>(), dir, info.splits);
    log::debug("{}: path '{}' is {}", yaml_path.string(), root["path"].as<std::string>(), info.root.string());
  }

  // `download:` (a URL or a script in the reference): yoloqat never downloads. Harmless when the data is
  // here; when it is not, say so instead of failing on a missing folder later.
  if (YAML::Node d = root["download"]; d && !d.IsNull()) {
    info.download = d.IsScalar() ? d.Scalar() : std::string("(a script)");
    // The reference looks at val only; train too here (it is what train and calibrate read).
    const auto missing = missing_entries(info, {"train", "val"});
    if (missing.empty()) {
      log::debug("{}: the data is here; its download: key is not used", yaml_path.string());
    } else {
      std::string list;
      for (const auto& m : missing) list += (list.empty() ? "" : "; ") + m;
      const std::string from =
          info.download.size() > 200 ? info.download.substr(0, 200) + "..." : info.download;
      throw UsageError(fmt::format(
          "{}: the data set is not here ({}). Its dataset.yaml has a download: key, but yoloqat does not "
          "download data sets (no network access is used): download and unpack the data yourself (the "
          "reference tool's download: {}) so that these paths exist",
          yaml_path.string(), list, from));
    }
  }

  YAML::Node names = root["names"];
  const bool has_nc = root["nc"] && !root["nc"].IsNull();
  YQ_CHECK_USAGE((names && !names.IsNull()) || has_nc,
                 "{}: key 'names' is missing (give names, or nc to name the classes class_0, ...)",
                 yaml_path.string());
  if (!names || names.IsNull()) {
    // As the reference's check_det_dataset: nc alone names the classes class_0, class_1, ...
    int nc = 0;
    try {
      nc = root["nc"].as<int>();
    } catch (const YAML::Exception&) {
      throw UsageError(fmt::format("{}: key 'nc' must be an integer", yaml_where(yaml_path, root["nc"])));
    }
    YQ_CHECK_USAGE(nc > 0 && nc <= 100000, "{}: nc is {}; expected 1 or more classes", yaml_path.string(),
                   nc);
    for (int i = 0; i < nc; ++i) info.names.push_back("class_" + std::to_string(i));
    log::debug("{}: no 'names': classes named class_0..class_{}", yaml_path.string(), nc - 1);
  } else if (names.IsSequence()) {
    for (const auto& n : names) info.names.push_back(n.as<std::string>());
  } else if (names.IsMap()) {
    std::map<int, std::string> by_index;
    for (const auto& kv : names) {
      int idx = -1;
      try {
        idx = kv.first.as<int>();
      } catch (const YAML::Exception&) {
      }
      YQ_CHECK_USAGE(idx >= 0, "{}: 'names' keys must be class indices 0..nc-1, got '{}'",
                     yaml_where(yaml_path, kv.first), kv.first.Scalar());
      by_index[idx] = kv.second.as<std::string>();
    }
    int expect = 0;
    for (const auto& [i, name] : by_index) {
      YQ_CHECK_USAGE(i == expect, "{}: 'names' has no entry for class {}", yaml_path.string(), expect);
      info.names.push_back(name);
      ++expect;
    }
  } else {
    throw UsageError(
        fmt::format("{}: key 'names' must be a list or an index -> name map", yaml_where(yaml_path, names)));
  }

  if (root["nc"] && !root["nc"].IsNull()) {
    try {
      info.nc = root["nc"].as<int>();
    } catch (const YAML::Exception&) {
      throw UsageError(fmt::format("{}: key 'nc' must be an integer", yaml_where(yaml_path, root["nc"])));
    }
    YQ_CHECK_USAGE(info.nc == int(info.names.size()), "{}: nc is {} but 'names' has {} entries",
                   yaml_path.string(), info.nc, info.names.size());
  } else {
    info.nc = int(info.names.size());
  }
  YQ_CHECK_USAGE(info.nc > 0, "{}: the data set has no classes", yaml_path.string());

  if (YAML::Node f = root["flip_idx"]; f && !f.IsNull()) {
    YQ_CHECK_USAGE(f.IsSequence() && int(f.size()) == info.nc,
                   "{}: 'flip_idx' must list {} class indices (one per class)", yaml_where(yaml_path, f),
                   info.nc);
    for (const auto& e : f) {
      int v = e.as<int>();
      YQ_CHECK_USAGE(v >= -1 && v < info.nc, "{}: 'flip_idx' entry {} is not -1 or a class index",
                     yaml_where(yaml_path, e), v);
      info.flip_map.push_back(v);
    }
    for (int c = 0; c < info.nc; ++c) {
      int m = info.flip_map[c];
      YQ_CHECK_USAGE(m < 0 || info.flip_map[m] == c,
                     "{}: 'flip_idx' maps {} -> {} but {} -> {} (mirror pairs must agree)",
                     yaml_path.string(), c, m, m, info.flip_map[m]);
    }
  }
  return info;
}

fs::path label_path_for(const fs::path& image) {
  std::string s = image.string();
  size_t pos = s.rfind("/images/");
  if (pos != std::string::npos) s.replace(pos, 8, "/labels/");
  fs::path p(s);
  p.replace_extension(".txt");
  return p;
}

std::vector<Label> parse_labels(const std::string& text, const std::string& file, int nc, SplitSummary& sum) {
  std::vector<Label> out;
  std::istringstream in(text);
  std::string line;
  int lineno = 0;
  auto bad = [&](const std::string& kind, const std::string& msg) {
    ++sum.bad_lines;
    sum.problems.push_back({file, lineno, kind, msg});
  };
  while (std::getline(in, line)) {
    ++lineno;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    std::istringstream fields(line);
    std::vector<std::string> f;
    for (std::string t; fields >> t;) f.push_back(t);
    if (f.empty()) continue;  // blank line
    // 'class cx cy w h', or a segmentation polygon 'class x1 y1 x2 y2 x3 y3 ...' (three points or more,
    // as YOLO segment data sets and Roboflow exports hold): a detector trains on its bounding box.
    const bool polygon = f.size() >= 7 && f.size() % 2 == 1;
    if (f.size() != 5 && !polygon) {
      bad("field count",
          fmt::format(
              "expected 5 fields 'class cx cy w h' (or a polygon 'class x1 y1 x2 y2 x3 y3 ...'), found {}",
              f.size()));
      continue;
    }
    std::vector<double> v(f.size());
    bool ok = true;
    for (size_t i = 0; i < f.size() && ok; ++i) {
      size_t pos = 0;
      try {
        v[i] = std::stod(f[i], &pos);
      } catch (...) {
        pos = 0;
      }
      if (pos != f[i].size() || !std::isfinite(v[i])) {
        bad("not a number", fmt::format("field {} '{}' is not a number", i + 1, f[i]));
        ok = false;
      }
    }
    if (!ok) continue;
    if (polygon) {
      double px1 = v[1], py1 = v[2], px2 = v[1], py2 = v[2];
      for (size_t i = 1; i + 1 < v.size(); i += 2) {
        px1 = std::min(px1, v[i]), px2 = std::max(px2, v[i]);
        py1 = std::min(py1, v[i + 1]), py2 = std::max(py2, v[i + 1]);
      }
      v = {v[0], (px1 + px2) / 2, (py1 + py2) / 2, px2 - px1, py2 - py1};
      ++sum.polygons;
    }
    if (v[0] != std::floor(v[0]) || v[0] < 0 || v[0] >= nc) {
      bad("class out of range", fmt::format("class {} is not an integer in [0, {})", f[0], nc));
      continue;
    }
    if (v[3] <= 0 || v[4] <= 0) {
      bad("zero-size box", fmt::format("box width {} or height {} is not positive", f[3], f[4]));
      continue;
    }
    double x1 = v[1] - v[3] / 2, y1 = v[2] - v[4] / 2, x2 = v[1] + v[3] / 2, y2 = v[2] + v[4] / 2;
    double lo = std::min({x1, y1}), hi = std::max({x2, y2});
    if (lo < -kClipTolerance || hi > 1 + kClipTolerance) {
      bad("out of bounds", fmt::format("box ({} {} {} {}) reaches outside the image [0, 1] by more than {}",
                                       f[1], f[2], f[3], f[4], kClipTolerance));
      continue;
    }
    if (lo < 0 || hi > 1) {
      x1 = std::clamp(x1, 0.0, 1.0), y1 = std::clamp(y1, 0.0, 1.0);
      x2 = std::clamp(x2, 0.0, 1.0), y2 = std::clamp(y2, 0.0, 1.0);
      ++sum.clipped;
      sum.problems.push_back({file, lineno, "clipped", "box slightly outside the image, clipped to [0, 1]"});
    }
    if (x2 - x1 < 1e-6 || y2 - y1 < 1e-6) {
      bad("zero-size box", "box has no area after clipping");
      continue;
    }
    Label l{int(v[0]), float((x1 + x2) / 2), float((y1 + y2) / 2), float(x2 - x1), float(y2 - y1)};
    bool dup = std::any_of(out.begin(), out.end(), [&](const Label& o) {
      return o.cls == l.cls && std::abs(o.cx - l.cx) < 1e-6f && std::abs(o.cy - l.cy) < 1e-6f &&
             std::abs(o.w - l.w) < 1e-6f && std::abs(o.h - l.h) < 1e-6f;
    });
    if (dup) {
      ++sum.duplicates;
      sum.problems.push_back({file, lineno, "duplicate", "same class and box as an earlier line, removed"});
      continue;
    }
    out.push_back(l);
  }
  return out;
}

namespace {

fs::path resolve_entry(const DatasetInfo& info, const std::string& entry) {
  return resolve_under(info.root, info.yaml.parent_path(), entry);
}

std::vector<std::string> missing_entries(const DatasetInfo& info, const std::vector<std::string>& splits) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& split : splits) {
    auto it = info.splits.find(split);
    if (it == info.splits.end()) continue;
    for (const auto& e : it->second) {
      const fs::path p = resolve_entry(info, e);
      if (!fs::exists(p, ec)) out.push_back(fmt::format("{}: {} ({})", split, e, p.string()));
    }
  }
  return out;
}

void list_folder(const fs::path& dir, std::vector<fs::path>& out) {
  std::vector<fs::path> found;
  for (const auto& e : fs::recursive_directory_iterator(dir, fs::directory_options::follow_directory_symlink))
    if (e.is_regular_file() && is_image_file(e.path())) found.push_back(e.path());
  std::sort(found.begin(), found.end());
  out.insert(out.end(), found.begin(), found.end());
}

}  // namespace

std::vector<fs::path> list_split_images(const DatasetInfo& info, const std::string& split,
                                        SplitSummary& sum) {
  auto it = info.splits.find(split);
  YQ_CHECK_USAGE(it != info.splits.end(), "{}: the data set has no '{}' split", info.yaml.string(), split);
  std::vector<fs::path> out;
  for (const auto& entry : it->second) {
    fs::path p = resolve_entry(info, entry);
    if (fs::is_directory(p)) {
      list_folder(p, out);
    } else if (lower_ext(p) == "txt" && fs::exists(p)) {
      std::istringstream in(read_text(p));
      std::string line;
      int lineno = 0;
      while (std::getline(in, line)) {
        ++lineno;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.empty()) continue;
        fs::path img(line);
        if (!img.is_absolute()) img = (line.rfind("./", 0) == 0 ? info.root : p.parent_path()) / img;
        img = img.lexically_normal();
        if (!fs::exists(img)) {
          ++sum.bad_images;
          sum.problems.push_back(
              {p.string(), lineno, "missing image", "image " + img.string() + " does not exist"});
          continue;
        }
        out.push_back(img);
      }
    } else if (fs::exists(p) && is_image_file(p)) {
      out.push_back(p);
    } else {
      throw UsageError(fmt::format(
          "{}: '{}' of split '{}' ({}) is not a folder, an image list (.txt) or an image{}",
          info.yaml.string(), entry, split, p.string(), fs::exists(p) ? "" : no_download_note(info)));
    }
  }
  return out;
}

namespace {

struct FileStamp {
  int64_t size = -1;
  int64_t mtime = 0;
};

FileStamp stamp(const fs::path& p) {
  std::error_code ec;
  FileStamp s;
  auto sz = fs::file_size(p, ec);
  if (ec) return s;
  s.size = int64_t(sz);
  s.mtime = int64_t(fs::last_write_time(p, ec).time_since_epoch().count());
  return s;
}

uint64_t fnv1a(uint64_t h, const std::string& s) {
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return (h ^ 0xff) * 1099511628211ull;
}

// Label files in the labels folders of a split that belong to no listed image.
std::vector<fs::path> orphan_labels(const std::vector<fs::path>& images) {
  std::set<fs::path> expected, dirs;
  for (const auto& img : images) {
    fs::path l = label_path_for(img);
    expected.insert(l);
    if (l.parent_path() != img.parent_path()) dirs.insert(l.parent_path());
  }
  std::vector<fs::path> out;
  for (const auto& d : dirs) {
    std::error_code ec;
    if (!fs::is_directory(d, ec)) continue;
    for (const auto& e : fs::directory_iterator(d))
      if (e.is_regular_file() && lower_ext(e.path()) == "txt" && !expected.count(e.path()))
        out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

nlohmann::json to_json(const SplitIndex& idx, uint64_t hash) {
  nlohmann::json j;
  j["version"] = kCacheVersion;
  j["hash"] = std::to_string(hash);
  auto& samples = j["samples"] = nlohmann::json::array();
  for (const auto& s : idx.samples) {
    nlohmann::json labels = nlohmann::json::array();
    for (const auto& l : s.labels) labels.push_back({l.cls, l.cx, l.cy, l.w, l.h});
    samples.push_back({{"image", s.image}, {"w", s.width}, {"h", s.height}, {"labels", labels}});
  }
  const auto& m = idx.summary;
  j["summary"] = {{"images", m.images},         {"backgrounds", m.backgrounds},     {"boxes", m.boxes},
                  {"bad_images", m.bad_images}, {"bad_lines", m.bad_lines},         {"clipped", m.clipped},
                  {"duplicates", m.duplicates}, {"orphan_labels", m.orphan_labels}, {"polygons", m.polygons}};
  auto& probs = j["problems"] = nlohmann::json::array();
  for (const auto& p : m.problems) probs.push_back({p.file, p.line, p.kind, p.message});
  return j;
}

bool from_json(const nlohmann::json& j, uint64_t hash, SplitIndex& idx) {
  if (j.value("version", 0) != kCacheVersion || j.value("hash", "") != std::to_string(hash)) return false;
  for (const auto& s : j.at("samples")) {
    Sample smp{s.at("image").get<std::string>(), s.at("w").get<int>(), s.at("h").get<int>(), {}};
    for (const auto& l : s.at("labels"))
      smp.labels.push_back(
          {l[0].get<int>(), l[1].get<float>(), l[2].get<float>(), l[3].get<float>(), l[4].get<float>()});
    idx.samples.push_back(std::move(smp));
  }
  const auto& m = j.at("summary");
  auto& s = idx.summary;
  s.images = m.at("images"), s.backgrounds = m.at("backgrounds"), s.boxes = m.at("boxes");
  s.bad_images = m.at("bad_images"), s.bad_lines = m.at("bad_lines"), s.clipped = m.at("clipped");
  s.duplicates = m.at("duplicates"), s.orphan_labels = m.at("orphan_labels");
  s.polygons = m.value("polygons", 0);
  for (const auto& p : j.at("problems"))
    s.problems.push_back(
        {p[0].get<std::string>(), p[1].get<int>(), p[2].get<std::string>(), p[3].get<std::string>()});
  return true;
}

}  // namespace

SplitIndex scan_split(const DatasetInfo& info, const std::string& split, const ScanOptions& opt) {
  SplitIndex idx;
  idx.split = split;
  SplitSummary listing;
  std::vector<fs::path> images = list_split_images(info, split, listing);
  std::vector<fs::path> orphans = orphan_labels(images);

  // Cache key: every image's and label's size and mtime, the orphans, nc and the listing problems.
  uint64_t hash = 1469598103934665603ull;
  hash = fnv1a(hash, std::to_string(info.nc));
  for (const auto& img : images) {
    FileStamp a = stamp(img), b = stamp(label_path_for(img));
    hash = fnv1a(hash, fmt::format("{}|{}|{}|{}|{}", img.string(), a.size, a.mtime, b.size, b.mtime));
  }
  for (const auto& o : orphans) hash = fnv1a(hash, "orphan|" + o.string());
  for (const auto& p : listing.problems) hash = fnv1a(hash, p.file + p.message);

  // Our cache is JSON under a name of our own: `labels.cache` beside the labels folder is where the
  // reference keeps its (numpy) cache, never read, written or removed here.
  fs::path cache;
  if (!images.empty()) cache = label_path_for(images.front()).parent_path().string() + kCacheSuffix;
  if (opt.use_cache && !cache.empty() && fs::exists(cache)) {
    try {
      if (from_json(nlohmann::json::parse(read_text(cache)), hash, idx)) {
        idx.from_cache = true;
        return idx;
      }
    } catch (const std::exception& e) {
      log::warn("ignoring unreadable label cache {}: {}", cache.string(), e.what());
    }
    idx = SplitIndex{};
    idx.split = split;
  }

  // Verify images in parallel; each worker keeps its own summary, merged in image order.
  struct Result {
    Sample sample;
    SplitSummary sum;
    bool ok = false;
  };
  std::vector<Result> results(images.size());
  int threads = opt.threads > 0 ? opt.threads : int(std::max(1u, std::thread::hardware_concurrency()));
  threads = std::max(1, std::min<int>(threads, int(images.size())));
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i; (i = next++) < images.size();) {
      Result& r = results[i];
      const fs::path& img = images[i];
      cv::Mat m;
      try {
        m = cv::imread(img.string(), cv::IMREAD_COLOR);
      } catch (const cv::Exception&) {
      }
      if (m.empty()) {
        ++r.sum.bad_images;
        r.sum.problems.push_back(
            {img.string(), 0, "bad image", "image does not decode (corrupt or not an image)"});
        continue;
      }
      r.sample.image = img.string();
      r.sample.width = m.cols;
      r.sample.height = m.rows;
      fs::path lp = label_path_for(img);
      std::error_code ec;
      if (fs::exists(lp, ec)) {
        try {
          r.sample.labels = parse_labels(read_text(lp), lp.string(), info.nc, r.sum);
        } catch (const std::exception& e) {
          r.sum.problems.push_back({lp.string(), 0, "unreadable label", e.what()});
          ++r.sum.bad_lines;
        }
      }
      r.ok = true;
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();

  SplitSummary& s = idx.summary;
  s = listing;
  for (auto& r : results) {
    s.bad_images += r.sum.bad_images;
    s.bad_lines += r.sum.bad_lines;
    s.clipped += r.sum.clipped;
    s.duplicates += r.sum.duplicates;
    s.polygons += r.sum.polygons;
    s.problems.insert(s.problems.end(), r.sum.problems.begin(), r.sum.problems.end());
    if (!r.ok) continue;
    ++s.images;
    s.boxes += int(r.sample.labels.size());
    if (r.sample.labels.empty()) ++s.backgrounds;
    idx.samples.push_back(std::move(r.sample));
  }
  for (const auto& o : orphans) {
    ++s.orphan_labels;
    s.problems.push_back(
        {o.string(), 0, "label without image", "no image of this split has this label file"});
  }

  if (opt.use_cache && !cache.empty()) {
    try {
      atomic_write(cache, to_json(idx, hash).dump());
    } catch (const std::exception& e) {
      log::warn("cannot write label cache {} ({}); the next start scans again", cache.string(), e.what());
    }
  }
  return idx;
}

void log_summary(const SplitIndex& idx, size_t max_problems) {
  const auto& s = idx.summary;
  log::info(
      "{}: {} images ({} backgrounds), {} boxes; skipped {} bad images, {} bad label lines; {} clipped, "
      "{} duplicates removed, {} labels without image{}{}",
      idx.split, s.images, s.backgrounds, s.boxes, s.bad_images, s.bad_lines, s.clipped, s.duplicates,
      s.orphan_labels,
      s.polygons ? fmt::format("; {} polygon labels read as their bounding boxes", s.polygons) : "",
      idx.from_cache ? " (from cache)" : "");
  size_t shown = 0;
  for (const auto& p : s.problems) {
    std::string where = p.line > 0 ? fmt::format("{}:{}", p.file, p.line) : p.file;
    if (shown < max_problems)
      log::warn("{}: {}: {}", where, p.kind, p.message);
    else
      log::debug("{}: {}: {}", where, p.kind, p.message);
    ++shown;
  }
  if (shown > max_problems)
    log::warn("... and {} more problems (log=debug lists them all)", shown - max_problems);
}

}  // namespace yq::data
