#include "data/dataset.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <thread>

#include "core/error.h"
#include "test_util.h"

namespace yq::data {
namespace {

using yq::testing::TempDir;
using yq::testing::write_file;
using yq::testing::write_image;

bool has_problem(const SplitSummary& s, const std::string& kind, int line = -1,
                 const std::string& file_part = "") {
  for (const auto& p : s.problems)
    if (p.kind == kind && (line < 0 || p.line == line) && p.file.find(file_part) != std::string::npos)
      return true;
  return false;
}

TEST(Labels, ValidLinesParse) {
  SplitSummary s;
  auto l = parse_labels("0 0.5 0.5 0.2 0.1\n3 0.25 0.75 0.1 0.1\n\n", "a.txt", 4, s);
  ASSERT_EQ(l.size(), 2u);
  EXPECT_EQ(l[1].cls, 3);
  EXPECT_FLOAT_EQ(l[0].w, 0.2f);
  EXPECT_EQ(s.bad_lines, 0);
  EXPECT_TRUE(s.problems.empty());
}

TEST(Labels, EachProblemIsReportedWithFileAndLine) {
  SplitSummary s;
  std::string text =
      "0 0.5 0.5 0.2\n"          // 1 field count
      "0 0.5 abc 0.2 0.2\n"      // 2 not a number
      "7 0.5 0.5 0.2 0.2\n"      // 3 class out of range (nc 4)
      "1.5 0.5 0.5 0.2 0.2\n"    // 4 class not an integer
      "0 1.4 0.5 0.2 0.2\n"      // 5 far outside -> rejected
      "0 0.95 0.5 0.11 0.2\n"    // 6 slightly outside -> clipped, kept
      "0 0.5 0.5 0 0.2\n"        // 7 zero size
      "2 0.3 0.3 0.1 0.1\n"      // 8 fine
      "2 0.3 0.3 0.1 0.1\n"      // 9 duplicate
      "1 nan 0.5 0.1 0.1\n"      // 10 not a number (nan)
      "1 0.5 0.5 -0.1 0.1\r\n";  // 11 negative size, CRLF line ending
  auto l = parse_labels(text, "x/labels/img.txt", 4, s);
  EXPECT_EQ(l.size(), 2u);  // line 6 (clipped) and line 8
  EXPECT_TRUE(has_problem(s, "field count", 1, "img.txt"));
  EXPECT_TRUE(has_problem(s, "not a number", 2));
  EXPECT_TRUE(has_problem(s, "class out of range", 3));
  EXPECT_TRUE(has_problem(s, "class out of range", 4));
  EXPECT_TRUE(has_problem(s, "out of bounds", 5));
  EXPECT_TRUE(has_problem(s, "clipped", 6));
  EXPECT_TRUE(has_problem(s, "zero-size box", 7));
  EXPECT_TRUE(has_problem(s, "duplicate", 9));
  EXPECT_TRUE(has_problem(s, "not a number", 10));
  EXPECT_TRUE(has_problem(s, "zero-size box", 11));
  EXPECT_EQ(s.bad_lines, 8);
  EXPECT_EQ(s.clipped, 1);
  EXPECT_EQ(s.duplicates, 1);
  // The clipped box now ends exactly at the right edge.
  EXPECT_NEAR(l[0].cx + l[0].w / 2, 1.0f, 1e-6f);
}

// Segmentation polygons (YOLO segment format, Roboflow exports) become their bounding boxes; an even
// field count is neither form.
TEST(Labels, PolygonLinesBecomeTheirBoundingBoxes) {
  SplitSummary s;
  auto l = parse_labels(
      "1 0.2 0.3 0.6 0.3 0.6 0.7 0.2 0.7\n"  // rectangle 0.2..0.6 x 0.3..0.7
      "2 0.5 0.1 0.9 0.5 0.1 0.5\n"          // triangle: x 0.1..0.9, y 0.1..0.5
      "0 0.1 0.1 0.2 0.2 0.3\n"              // 6 fields: bad
      "3 0.1 0.1 0.2 0.2 0.3 x 0.2 0.4\n",   // not a number
      "seg.txt", 4, s);
  ASSERT_EQ(l.size(), 2u);
  EXPECT_EQ(l[0].cls, 1);
  EXPECT_FLOAT_EQ(l[0].cx, 0.4f);
  EXPECT_FLOAT_EQ(l[0].cy, 0.5f);
  EXPECT_FLOAT_EQ(l[0].w, 0.4f);
  EXPECT_FLOAT_EQ(l[0].h, 0.4f);
  EXPECT_FLOAT_EQ(l[1].cx, 0.5f);
  EXPECT_FLOAT_EQ(l[1].cy, 0.3f);
  EXPECT_FLOAT_EQ(l[1].w, 0.8f);
  EXPECT_FLOAT_EQ(l[1].h, 0.4f);
  EXPECT_EQ(s.polygons, 2);
  EXPECT_TRUE(has_problem(s, "field count", 3, "seg.txt"));
  EXPECT_TRUE(has_problem(s, "not a number", 4));
  EXPECT_EQ(s.bad_lines, 2);
}

TEST(Labels, PathMapping) {
  EXPECT_EQ(label_path_for("/d/images/train/images/a.jpg"), fs::path("/d/images/train/labels/a.txt"));
  EXPECT_EQ(label_path_for("/d/train/x.PNG"), fs::path("/d/train/x.txt"));
}

TEST(DatasetYaml, ListAndMapNamesRelativePath) {
  TempDir t("yaml");
  write_file(t / "ds/data.yaml", "path: root\ntrain: train/images\nval: [val/images]\nnames: {0: a, 1: b}\n");
  auto info = load_dataset_yaml(t / "ds/data.yaml");
  EXPECT_EQ(info.nc, 2);
  EXPECT_EQ(info.names[1], "b");
  EXPECT_EQ(info.root, (t / "ds/root").lexically_normal());
  EXPECT_EQ(info.splits.at("val").size(), 1u);
  EXPECT_TRUE(info.flip_map.empty());

  write_file(t / "ds/b.yaml", "train: t\nval: v\nnc: 3\nnames: [x, y, z]\nflip_idx: [1, 0, -1]\n");
  auto b = load_dataset_yaml(t / "ds/b.yaml");
  EXPECT_EQ(b.root, (t / "ds").lexically_normal());
  EXPECT_EQ(b.flip_map, (std::vector<int>{1, 0, -1}));
}

TEST(DatasetYaml, ErrorsNameFileAndKey) {
  TempDir t("yamlerr");
  auto msg = [&](const std::string& text) {
    write_file(t / "d.yaml", text);
    try {
      load_dataset_yaml(t / "d.yaml");
    } catch (const UsageError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(msg("train: a\nval: b\nnc: 3\nnames: [a, b]\n").find("nc is 3 but 'names' has 2"),
            std::string::npos);
  EXPECT_NE(msg("train: a\nval: b\n").find("'names' is missing"), std::string::npos);
  EXPECT_NE(msg("train: a\nnames: [a, b]\nflip_idx: [1, 1]\n").find("mirror pairs"), std::string::npos);
  EXPECT_NE(msg("train: a\nnames: [a]\nnc: x\n").find("'nc' must be an integer"), std::string::npos);
  EXPECT_NE(msg("train: [a\n").find("d.yaml"), std::string::npos);
  EXPECT_NE(msg("names: [a]\n").find("neither 'train' nor 'val'"), std::string::npos);
  EXPECT_THROW(load_dataset_yaml(t / "missing.yaml"), UsageError);
}

// A data set with every kind of bad input: each is reported, counted and skipped; nothing throws.
class BadDataset : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::path r = dir_.path();
    write_file(r / "data.yaml", "path: .\ntrain: train/images\nval: list.txt\nnames: [a, b]\n");
    write_image(r / "train/images/good.jpg", 64, 48);
    write_file(r / "train/labels/good.txt", "0 0.5 0.5 0.5 0.5\n1 0.2 0.2 0.1 0.1\n");
    write_image(r / "train/images/background.png", 32, 32);  // no label file: background
    write_image(r / "train/images/empty.jpg", 32, 32);
    write_file(r / "train/labels/empty.txt", "");
    write_file(r / "train/images/corrupt.jpg", "this is not a jpeg");
    write_file(r / "train/labels/corrupt.txt", "0 0.5 0.5 0.5 0.5\n");
    write_image(r / "train/images/mixed.jpg", 40, 40);
    write_file(r / "train/labels/mixed.txt", "0 0.5 0.5 0.5 0.5\n9 0.5 0.5 0.1 0.1\n0 0.5\n");
    write_file(r / "train/labels/orphan.txt", "0 0.5 0.5 0.5 0.5\n");
    write_file(r / "list.txt", "./train/images/good.jpg\n./train/images/nothere.jpg\n");
  }
  TempDir dir_{"bad"};
};

TEST_F(BadDataset, ReportsAndSkipsWithoutCrashing) {
  auto info = load_dataset_yaml(dir_ / "data.yaml");
  SplitIndex idx = scan_split(info, "train", {true, 2});
  const auto& s = idx.summary;
  EXPECT_FALSE(idx.from_cache);
  EXPECT_EQ(s.images, 4);  // good, background, empty, mixed
  EXPECT_EQ(s.backgrounds, 2);
  EXPECT_EQ(s.boxes, 3);  // good 2, mixed 1
  EXPECT_EQ(s.bad_images, 1);
  EXPECT_EQ(s.bad_lines, 2);
  EXPECT_EQ(s.orphan_labels, 1);
  EXPECT_TRUE(has_problem(s, "bad image", 0, "corrupt.jpg"));
  EXPECT_TRUE(has_problem(s, "class out of range", 2, "mixed.txt"));
  EXPECT_TRUE(has_problem(s, "field count", 3, "mixed.txt"));
  EXPECT_TRUE(has_problem(s, "label without image", 0, "orphan.txt"));
  for (const auto& smp : idx.samples) EXPECT_GT(smp.width, 0) << smp.image;

  SplitIndex val = scan_split(info, "val", {true, 1});
  EXPECT_EQ(val.summary.images, 1);
  EXPECT_EQ(val.summary.bad_images, 1);
  EXPECT_TRUE(has_problem(val.summary, "missing image", 2, "list.txt"));
}

TEST_F(BadDataset, CacheIsReusedAndInvalidated) {
  auto info = load_dataset_yaml(dir_ / "data.yaml");
  SplitIndex a = scan_split(info, "train");
  EXPECT_FALSE(a.from_cache);
  EXPECT_TRUE(fs::exists(dir_ / "train/labels.yoloqat.json"));
  SplitIndex b = scan_split(info, "train");
  EXPECT_TRUE(b.from_cache);
  EXPECT_EQ(b.summary.images, a.summary.images);
  EXPECT_EQ(b.summary.problems.size(), a.summary.problems.size());
  ASSERT_EQ(b.samples.size(), a.samples.size());
  EXPECT_EQ(b.samples[0].labels.size(), a.samples[0].labels.size());

  // Changing a label file (size) invalidates the cache.
  write_file(dir_ / "train/labels/good.txt", "0 0.5 0.5 0.5 0.5\n");
  SplitIndex c = scan_split(info, "train");
  EXPECT_FALSE(c.from_cache);
  EXPECT_EQ(c.summary.boxes, 2);
  // A corrupt cache is ignored, not fatal.
  write_file(dir_ / "train/labels.yoloqat.json", "{not json");
  SplitIndex d = scan_split(info, "train");
  EXPECT_FALSE(d.from_cache);
  EXPECT_EQ(d.summary.boxes, 2);
}

// A Roboflow export: data.yaml beside train/ and valid/ but naming them '../train/images', polygon labels.
TEST(Dataset, RoboflowLayoutAndPolygonLabels) {
  TempDir t("roboflow");
  const fs::path r = t / "rf";
  write_file(r / "data.yaml", "train: ../train/images\nval: ../valid/images\nnc: 2\nnames: ['a', 'b']\n");
  write_image(r / "train/images/x.jpg", 64, 48);
  write_file(r / "train/labels/x.txt", "1 0.2 0.3 0.6 0.3 0.6 0.7 0.2 0.7\n0 0.5 0.5 0.2 0.2\n");
  write_image(r / "valid/images/y.jpg", 64, 48);
  auto info = load_dataset_yaml(r / "data.yaml");
  SplitIndex idx = scan_split(info, "train");
  EXPECT_EQ(idx.summary.images, 1);
  EXPECT_EQ(idx.summary.boxes, 2);
  EXPECT_EQ(idx.summary.polygons, 1);
  EXPECT_EQ(idx.summary.bad_lines, 0);
  SplitIndex again = scan_split(info, "train");  // from the label cache: the count survives
  EXPECT_TRUE(again.from_cache);
  EXPECT_EQ(again.summary.polygons, 1);
  EXPECT_EQ(scan_split(info, "val").summary.images, 1);
}

TEST(Dataset, UnknownSplitIsAUsageError) {
  TempDir t("split");
  write_file(t / "d.yaml", "train: nope\nnames: [a]\n");
  auto info = load_dataset_yaml(t / "d.yaml");
  EXPECT_THROW(scan_split(info, "test"), UsageError);
  EXPECT_THROW(scan_split(info, "train"), UsageError);  // 'nope' does not exist
}

}  // namespace
}  // namespace yq::data
