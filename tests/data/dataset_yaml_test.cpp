// dataset.yaml as the reference resolves it (relative `path:` from the working directory, then beside
// the yaml, then ./datasets; `names` optional with `nc`; `download:` answered, never run), and a label
// cache that never touches the reference's own `labels.cache`.
#include <gtest/gtest.h>

#include <functional>

#include "core/error.h"
#include "data/dataset.h"
#include "test_util.h"

namespace yq::data {
namespace {

using yq::testing::TempDir;
using yq::testing::write_file;
using yq::testing::write_image;

// Runs the test body in `dir` and goes back to where it was.
class InDir {
 public:
  explicit InDir(const fs::path& dir) : old_(fs::current_path()) { fs::current_path(dir); }
  ~InDir() { fs::current_path(old_); }

 private:
  fs::path old_;
};

std::string usage_error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const UsageError& e) {
    return e.what();
  }
  return "";
}

void write_split(const fs::path& root) {
  write_image(root / "images/train/a.jpg", 32, 32);
  write_file(root / "labels/train/a.txt", "0 0.5 0.5 0.5 0.5\n");
  write_image(root / "images/val/b.jpg", 32, 32);
}

const char* kYaml = "path: ds\ntrain: images/train\nval: images/val\nnames: [a]\n";

TEST(DatasetYaml, RelativePathFromTheWorkingDirectoryThenBesideTheYaml) {
  TempDir t("dsyaml");
  const fs::path yaml = t / "cfg/data.yaml";
  write_file(yaml, kYaml);
  const fs::path work = t / "work";
  fs::create_directories(work);
  InDir in(work);
  // Only beside the yaml (yoloqat's reading so far; a data set that travelled with its yaml).
  write_split(t / "cfg/ds");
  EXPECT_EQ(load_dataset_yaml(yaml).root, (t / "cfg/ds").lexically_normal());
  // Also from the working directory: the reference's first choice wins.
  write_split(work / "ds");
  EXPECT_EQ(load_dataset_yaml(yaml).root, (work / "ds").lexically_normal());
  const SplitIndex idx = scan_split(load_dataset_yaml(yaml), "train");
  ASSERT_EQ(idx.samples.size(), 1u);
  EXPECT_EQ(fs::path(idx.samples[0].image).parent_path(), (work / "ds/images/train").lexically_normal());
  // A folder of that name in the working directory without the splits does not count.
  fs::remove_all(work / "ds/images");
  EXPECT_EQ(load_dataset_yaml(yaml).root, (t / "cfg/ds").lexically_normal());
  // The reference's default datasets_dir (./datasets) when neither holds it.
  fs::remove_all(work / "ds");
  fs::remove_all(t / "cfg/ds");
  write_split(work / "datasets/ds");
  EXPECT_EQ(load_dataset_yaml(yaml).root, (work / "datasets/ds").lexically_normal());
}

TEST(DatasetYaml, NamesMayBeLeftOutWhenNcIsGiven) {
  TempDir t("dsnames");
  write_split(t.path());
  write_file(t / "nc.yaml", "train: images/train\nval: images/val\nnc: 3\n");
  const DatasetInfo info = load_dataset_yaml(t / "nc.yaml");
  EXPECT_EQ(info.nc, 3);
  EXPECT_EQ(info.names, (std::vector<std::string>{"class_0", "class_1", "class_2"}));
  write_file(t / "none.yaml", "train: images/train\nval: images/val\n");
  EXPECT_NE(usage_error_of([&] { load_dataset_yaml(t / "none.yaml"); }).find("'names' is missing"),
            std::string::npos);
  write_file(t / "bad.yaml", "train: images/train\nnc: 2\nnames: [a, b, c]\n");
  EXPECT_THROW(load_dataset_yaml(t / "bad.yaml"), UsageError);
}

TEST(DatasetYaml, DownloadKeyIsAnsweredOnlyWhenTheDataIsMissing) {
  TempDir t("dsdownload");
  write_file(t / "coco.yaml",
             "train: images/train\nval: images/val\nnames: [a]\ndownload: https://example.com/coco.zip\n");
  const std::string e = usage_error_of([&] { load_dataset_yaml(t / "coco.yaml"); });
  EXPECT_NE(e.find("does not download"), std::string::npos) << e;
  EXPECT_NE(e.find("images/val"), std::string::npos) << e;
  EXPECT_NE(e.find("https://example.com/coco.zip"), std::string::npos) << e;
  // With the data there, the key is harmless.
  write_split(t.path());
  DatasetInfo info;
  ASSERT_NO_THROW(info = load_dataset_yaml(t / "coco.yaml"));
  EXPECT_EQ(scan_split(info, "train").summary.images, 1);
  // A missing test split of such a data set says the same when it is read.
  write_file(
      t / "coco.yaml",
      "train: images/train\nval: images/val\ntest: images/test\nnames: [a]\ndownload: |\n  import os\n");
  info = load_dataset_yaml(t / "coco.yaml");
  EXPECT_NE(usage_error_of([&] { scan_split(info, "test"); }).find("does not download"), std::string::npos);
}

// The reference keeps its (numpy) cache at <labels folder>.cache: ours has a name of its own, and a
// foreign labels.cache is never read as ours, overwritten or removed.
TEST(DatasetYaml, LabelCacheLeavesTheReferencesCacheAlone) {
  TempDir t("dscache");
  write_split(t.path());
  write_file(t / "d.yaml", "train: images/train\nval: images/val\nnames: [a]\n");
  const std::string foreign = std::string("\x93NUMPY\x01\x00", 8) + "{'descr': '|O', 'fortran_order': False}";
  write_file(t / "labels/train.cache", foreign);
  const auto stamp = fs::last_write_time(t / "labels/train.cache");
  const DatasetInfo info = load_dataset_yaml(t / "d.yaml");
  const SplitIndex a = scan_split(info, "train");
  EXPECT_FALSE(a.from_cache);
  EXPECT_EQ(a.summary.images, 1);
  EXPECT_TRUE(fs::is_regular_file(t / "labels/train.yoloqat.json"));
  EXPECT_TRUE(scan_split(info, "train").from_cache);
  EXPECT_EQ(read_text(t / "labels/train.cache"), foreign);
  EXPECT_EQ(fs::last_write_time(t / "labels/train.cache"), stamp);

  // The usual layout: train/images -> train/labels, the reference's cache at train/labels.cache.
  TempDir u("dscache2");
  write_image(u / "train/images/a.jpg", 32, 32);
  write_file(u / "train/labels/a.txt", "0 0.5 0.5 0.5 0.5\n");
  write_file(u / "train/labels.cache", foreign);
  write_file(u / "d.yaml", "train: train/images\nnames: [a]\n");
  scan_split(load_dataset_yaml(u / "d.yaml"), "train");
  EXPECT_TRUE(fs::is_regular_file(u / "train/labels.yoloqat.json"));
  EXPECT_EQ(read_text(u / "train/labels.cache"), foreign);
}

}  // namespace
}  // namespace yq::data
