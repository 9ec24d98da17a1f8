// YOLO-format data sets: dataset.yaml, image/label discovery, label checks and the label cache.
//
// Layout (as YOLOv8 users have it): dataset.yaml names `path` (root), `train`, `val`, `test` (each a
// folder of images, a .txt list of image paths, or a list of either), `nc`, `names` and optionally
// `flip_idx` (per class: the class it becomes when the image is mirrored, -1 = never mirror an image
// that holds it). Labels sit beside the images with the last `/images/` replaced by `/labels/` and
// the extension by `.txt`.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/fs.h"
#include "data/boxes.h"

namespace yq::data {

struct DatasetInfo {
  fs::path yaml;                                           // the dataset.yaml itself
  fs::path root;                                           // resolved `path`
  std::map<std::string, std::vector<std::string>> splits;  // "train"/"val"/"test" -> entries as written
  int nc = 0;
  std::vector<std::string> names;  // nc names
  std::vector<int> flip_map;       // nc entries, or empty (identity)
  std::string download;            // the yaml's `download:` (never run: yoloqat does not download), or ""
};

// Parses and checks dataset.yaml; errors (UsageError) name the file and the key. As the reference reads
// it: a relative `path` from the working directory, then beside the yaml, then under ./datasets (the
// first under which the train / val entries exist); `names` may be left out when `nc` is given (the
// classes are then named class_0, class_1, ...); a `download:` key is an error only when the train or val
// data is missing (yoloqat does not download), and is otherwise unused.
DatasetInfo load_dataset_yaml(const fs::path& yaml);

// The label file of an image: last "/images/" -> "/labels/", extension -> ".txt".
fs::path label_path_for(const fs::path& image);

// One reported problem. `line` is 0 for whole-file problems.
struct Problem {
  std::string file;
  int line = 0;
  std::string kind;  // "field count", "not a number", "class out of range", "out of bounds", ...
  std::string message;
};

struct Sample {
  std::string image;
  int width = 0, height = 0;  // pixels of the original image
  std::vector<Label> labels;
};

// What a split scan found. Every skipped item is counted and has a Problem entry.
struct SplitSummary {
  int images = 0;         // usable images (with or without boxes)
  int backgrounds = 0;    // usable images without boxes (empty or missing label file)
  int boxes = 0;          // usable boxes
  int bad_images = 0;     // missing or undecodable images (skipped)
  int bad_lines = 0;      // label lines skipped (format, class, range, zero size)
  int clipped = 0;        // boxes slightly outside [0, 1], clipped and kept
  int duplicates = 0;     // duplicate boxes removed
  int polygons = 0;       // segmentation polygons read as their bounding boxes
  int orphan_labels = 0;  // label files without an image
  std::vector<Problem> problems;
};

struct SplitIndex {
  std::string split;
  std::vector<Sample> samples;
  SplitSummary summary;
  bool from_cache = false;
};

// Parses the text of one label file. Bad lines are skipped, counted and reported; boxes slightly
// outside the image are clipped; duplicates are removed. `file` is used in the messages.
std::vector<Label> parse_labels(const std::string& text, const std::string& file, int nc, SplitSummary& sum);

// Lists the image paths of a split (sorted within each folder), resolving entries against the root.
// Entries that name missing files are reported in `sum` (kind "missing image").
std::vector<fs::path> list_split_images(const DatasetInfo& info, const std::string& split, SplitSummary& sum);

struct ScanOptions {
  bool use_cache = true;  // read/write <labels folder>.yoloqat.json (never the reference's labels.cache)
  int threads = 0;        // image verification threads (0 = all cores)
};

// Lists, verifies (decodes every image) and parses a split. A cache next to the labels folder
// (train/labels.yoloqat.json for train/labels/) makes the second start fast; it is invalidated when any
// image or label file's size or mtime changes. The reference's own cache (train/labels.cache) is left
// alone: never read, overwritten or removed.
SplitIndex scan_split(const DatasetInfo& info, const std::string& split, const ScanOptions& opt = {});

// Logs the summary of a scan: counts and the first problems (all of them at debug level).
void log_summary(const SplitIndex& idx, size_t max_problems = 20);

}  // namespace yq::data
