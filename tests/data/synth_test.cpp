#include "data/synth.h"

#include <gtest/gtest.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <fstream>
#include <map>
#include <sstream>

#include "cli/command.h"
#include "core/error.h"
#include "core/rng.h"

namespace yq::data {
namespace {

// A fresh folder under the system temp dir, removed at the end of the test.
struct TempDir {
  fs::path path;
  explicit TempDir(const std::string& tag) {
    static int counter = 0;
    path = fs::temp_directory_path() / fmt::format("yq_synth_{}_{}_{}", tag, ::getpid(), counter++);
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

BoxPx grow(const BoxPx& b, float f) {
  float dx = b.width() * f, dy = b.height() * f;
  return {b.cls, b.x1 - dx, b.y1 - dy, b.x2 + dx, b.y2 + dy};
}

std::string bytes(const fs::path& p) {
  return read_text(p);
}

// All files under `dir`, relative path -> content.
std::map<std::string, std::string> tree(const fs::path& dir) {
  std::map<std::string, std::string> m;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) m[fs::relative(e.path(), dir).string()] = bytes(e.path());
  return m;
}

SynthOptions tiny(const fs::path& out, int w = 160, int h = 96) {
  SynthOptions o;
  o.out = out;
  o.train = 8;
  o.val = 2;
  o.test = 2;
  o.seed = 7;
  o.width = w;
  o.height = h;
  o.threads = 1;
  return o;
}

// Thresholds of the box check. Measured over 1,911 real boxes (600 images, 320x192 zalo7 and 160x96
// qcvn): inside >= 0.50, side bands >= 0.14, ring 0.00; boxes moved by 40%, grown or shrunk fail
// 2,015 times out of 2,018.
constexpr double kMinInside = 0.3, kMinBand = 0.05, kMaxRing = 0.05;

// Pixels where the image with signs differs from the same scene without them.
cv::Mat changed_mask(const cv::Mat& with, const cv::Mat& without) {
  cv::Mat diff, sum;
  cv::absdiff(with, without, diff);
  cv::transform(diff, sum, cv::Matx13f(1, 1, 1));  // per-pixel sum over channels (float)
  return sum > 20;
}

double fraction(const cv::Mat& mask, cv::Rect r) {
  r &= cv::Rect(0, 0, mask.cols, mask.rows);
  if (r.area() == 0) return 0;
  return cv::countNonZero(mask(r)) / double(r.area());
}

// How well `box` matches a sign in `changed`: the share of the box that is sign, the least share of
// sign in the band along each of its four sides, and the share of sign in a ring around it, where
// pixels near `others` (the image's other boxes) do not count.
struct BoxFit {
  double inside = 0, band = 0, ring = 0;
};

BoxFit box_fit(const cv::Mat& changed, const BoxPx& box, const std::vector<BoxPx>& others) {
  BoxFit f;
  cv::Rect r(int(std::lround(box.x1)), int(std::lround(box.y1)), int(std::lround(box.width())),
             int(std::lround(box.height())));
  if (r.width < 1 || r.height < 1) return f;
  f.inside = fraction(changed, r);
  const int bw = std::max(1, int(std::lround(0.35 * r.width))),
            bh = std::max(1, int(std::lround(0.35 * r.height)));
  f.band = 1;
  for (cv::Rect b : {cv::Rect(r.x, r.y, bw, r.height), cv::Rect(r.x + r.width - bw, r.y, bw, r.height),
                     cv::Rect(r.x, r.y, r.width, bh), cv::Rect(r.x, r.y + r.height - bh, r.width, bh)})
    f.band = std::min(f.band, fraction(changed, b));
  const int gap = 2, ring = std::max(2, int(std::lround(0.25 * std::max(r.width, r.height))));
  cv::Mat ring_mask(changed.size(), CV_8U, cv::Scalar(0));
  cv::rectangle(
      ring_mask,
      cv::Rect(r.x - gap - ring, r.y - gap - ring, r.width + 2 * (gap + ring), r.height + 2 * (gap + ring)),
      255, cv::FILLED);
  cv::rectangle(ring_mask, cv::Rect(r.x - gap, r.y - gap, r.width + 2 * gap, r.height + 2 * gap), 0,
                cv::FILLED);
  for (const auto& o : others)
    cv::rectangle(ring_mask,
                  cv::Rect(int(o.x1) - gap - 1, int(o.y1) - gap - 1, int(o.width()) + 2 * gap + 3,
                           int(o.height()) + 2 * gap + 3),
                  0, cv::FILLED);
  const int ring_px = cv::countNonZero(ring_mask);
  cv::Mat spill;
  cv::bitwise_and(changed, ring_mask, spill);
  f.ring = ring_px ? cv::countNonZero(spill) / double(ring_px) : 0;
  return f;
}

// Why `box` is not the extent of a sign ("" = it is): the sign must fill a good part of the box,
// reach into the band along each side (a box too large or shifted leaves a side empty) and not
// spill into the ring around it (a box too small or shifted leaves sign outside).
std::string box_problem(const cv::Mat& changed, const BoxPx& box, const std::vector<BoxPx>& others) {
  BoxFit f = box_fit(changed, box, others);
  if (f.inside < kMinInside) return fmt::format("only {:.2f} of the box is sign", f.inside);
  if (f.band < kMinBand) return fmt::format("a side band of the box holds only {:.2f} sign", f.band);
  if (f.ring > kMaxRing) return fmt::format("{:.2f} of the ring around the box is sign", f.ring);
  return "";
}

TEST(SynthClasses, Zalo7NamesAndIdentityFlip) {
  const std::vector<std::string> want = {"no_entry",    "no_parking_stopping", "no_turning",
                                         "speed_limit", "other_prohibition",   "warning",
                                         "mandatory"};
  EXPECT_EQ(synth_class_names("zalo7"), want);
  EXPECT_EQ(synth_flip_map("zalo7"), (std::vector<int>{0, 1, 2, 3, 4, 5, 6}));
}

TEST(SynthClasses, QcvnHasTwentyClassesAndConsistentFlipMap) {
  const auto names = synth_class_names("qcvn");
  const auto flip = synth_flip_map("qcvn");
  ASSERT_GE(names.size(), 20u);
  ASSERT_EQ(flip.size(), names.size());
  auto idx = [&](const std::string& n) {
    return int(std::find(names.begin(), names.end(), n) - names.begin());
  };
  for (size_t i = 0; i < names.size(); ++i) {
    EXPECT_EQ(idx(names[i]), int(i)) << "duplicate name " << names[i];
    ASSERT_GE(flip[i], -1);
    ASSERT_LT(flip[i], int(names.size()));
    if (flip[i] >= 0) EXPECT_EQ(flip[size_t(flip[i])], int(i)) << names[i];
    if (names[i].rfind("P.127-", 0) == 0) EXPECT_EQ(flip[i], -1) << names[i] << " has digits";
  }
  for (auto [a, b] : {std::pair{"P.123a", "P.123b"}, {"W.201a", "W.201b"}, {"R.302a", "R.302b"}}) {
    ASSERT_LT(idx(a), int(names.size())) << a;
    ASSERT_LT(idx(b), int(names.size())) << b;
    EXPECT_EQ(flip[size_t(idx(a))], idx(b));
  }
  EXPECT_EQ(flip[size_t(idx("P.102"))], idx("P.102"));
  EXPECT_EQ(flip[size_t(idx("W.245a"))], -1);
}

TEST(SynthClasses, UnknownSetIsUsageErrorListingBoth) {
  try {
    synth_class_names("gtsrb");
    FAIL() << "no error";
  } catch (const UsageError& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("gtsrb"), std::string::npos) << m;
    EXPECT_NE(m.find("zalo7"), std::string::npos) << m;
    EXPECT_NE(m.find("qcvn"), std::string::npos) << m;
  }
  SynthOptions o;
  o.classes = "coco";
  EXPECT_THROW(SynthRenderer{o}, UsageError);
  EXPECT_THROW(synth_flip_map(""), UsageError);
}

TEST(Synth, WritesValidYoloLayout) {
  TempDir tmp("layout");
  SynthOptions o = tiny(tmp.path / "ds");
  SynthReport rep = synthesize(o);
  EXPECT_EQ(rep.images, 12);

  YAML::Node y = YAML::LoadFile((o.out / "dataset.yaml").string());
  EXPECT_EQ(y["path"].as<std::string>(), ".");
  EXPECT_EQ(y["train"].as<std::string>(), "train/images");
  EXPECT_EQ(y["val"].as<std::string>(), "valid/images");
  EXPECT_EQ(y["test"].as<std::string>(), "test/images");
  const int nc = y["nc"].as<int>();
  EXPECT_EQ(y["names"].as<std::vector<std::string>>(), synth_class_names("zalo7"));
  EXPECT_EQ(y["flip_idx"].as<std::vector<int>>(), synth_flip_map("zalo7"));
  EXPECT_EQ(nc, 7);

  int images = 0, lines = 0, empty = 0;
  std::vector<int> per_class(size_t(nc), 0);
  const std::pair<const char*, int> splits[] = {{"train", 8}, {"valid", 2}, {"test", 2}};
  for (auto [split, count] : splits) {
    int n = 0;
    for (const auto& e : fs::directory_iterator(o.out / split / "images")) {
      ++n, ++images;
      cv::Mat im = cv::imread(e.path().string());
      ASSERT_FALSE(im.empty()) << e.path();
      EXPECT_EQ(im.cols, 160);
      EXPECT_EQ(im.rows, 96);
      fs::path lab = o.out / split / "labels" / (e.path().stem().string() + ".txt");
      ASSERT_TRUE(fs::exists(lab)) << lab;
      std::istringstream in(bytes(lab));
      std::string line;
      int k = 0;
      while (std::getline(in, line)) {
        ++k, ++lines;
        std::istringstream ls(line);
        int cls;
        double cx, cy, w, h;
        std::string extra;
        ASSERT_TRUE(bool(ls >> cls >> cx >> cy >> w >> h)) << lab << ":" << k << " '" << line << "'";
        EXPECT_FALSE(bool(ls >> extra)) << lab << ":" << k;
        EXPECT_EQ(line.size(), line.find(' ') + 4 * 9) << "6 decimals: " << line;
        ASSERT_GE(cls, 0);
        ASSERT_LT(cls, nc);
        ++per_class[size_t(cls)];
        EXPECT_GT(w, 0);
        EXPECT_GT(h, 0);
        EXPECT_GE(cx - w / 2, -1e-6) << line;
        EXPECT_GE(cy - h / 2, -1e-6) << line;
        EXPECT_LE(cx + w / 2, 1 + 1e-6) << line;
        EXPECT_LE(cy + h / 2, 1 + 1e-6) << line;
      }
      empty += k == 0;
    }
    EXPECT_EQ(n, count) << split;
  }
  EXPECT_EQ(images, rep.images);
  EXPECT_EQ(lines, rep.boxes);
  EXPECT_EQ(empty, rep.backgrounds);
  EXPECT_EQ(per_class, rep.per_class);
  EXPECT_GT(rep.boxes, rep.images);  // 0-6 signs per image, most images have some
}

TEST(Synth, SameSeedSameBytesWhateverTheThreads) {
  TempDir tmp("det");
  SynthOptions a = tiny(tmp.path / "a", 320, 192), b = a, c = a;
  a.threads = 1;
  b.out = tmp.path / "b";
  b.threads = 2;
  c.out = tmp.path / "c";
  c.seed = 8;
  synthesize(a);
  synthesize(b);
  synthesize(c);
  const auto ta = tree(a.out), tb = tree(b.out), tc = tree(c.out);
  ASSERT_EQ(ta.size(), 12u * 2 + 1);
  EXPECT_TRUE(ta == tb) << "threads=1 and threads=2 wrote different files";
  // The yaml names the seed; every image of another seed differs.
  int same = 0;
  for (const auto& [name, data] : ta)
    if (name.find(".jpg") != std::string::npos) same += tc.at(name) == data;
  EXPECT_EQ(same, 0);
  // Rewriting in place with fewer images leaves no stale files and the same bytes.
  a.train = 3;
  synthesize(a);
  EXPECT_EQ(tree(a.out).size(), (3u + 2 + 2) * 2 + 1);
  EXPECT_EQ(bytes(a.out / "train/images/000002.jpg"), tb.at("train/images/000002.jpg"));
}

TEST(Synth, EveryBoxCoversItsSign) {
  for (auto [w, h, set] : {std::tuple{320, 192, "zalo7"}, {160, 96, "qcvn"}}) {
    SynthOptions o;
    o.width = w, o.height = h, o.classes = set, o.seed = 3;
    SynthRenderer r(o);
    int boxes = 0, misplaced_caught = 0, tried = 0;
    for (int i = 0; i < 20; ++i) {
      SynthImage with = r.render(0, i), without = r.render(0, i, false);
      ASSERT_EQ(with.boxes.size(), without.boxes.size());
      cv::Mat changed = changed_mask(with.image, without.image);
      for (size_t k = 0; k < with.boxes.size(); ++k) {
        const BoxPx& b = with.boxes[k];
        std::vector<BoxPx> others = with.boxes;
        others.erase(others.begin() + long(k));
        EXPECT_EQ(box_problem(changed, b, others), "")
            << set << " image " << i << " box " << k << " (" << b.x1 << "," << b.y1 << ")-(" << b.x2 << ","
            << b.y2 << ")";
        ++boxes;
        // The check is sharp: the same box moved by 40% of its size, or grown/shrunk, fails.
        for (BoxPx bad :
             {BoxPx{b.cls, b.x1 + 0.4f * b.width(), b.y1, b.x2 + 0.4f * b.width(), b.y2},
              BoxPx{b.cls, b.x1, b.y1 - 0.4f * b.height(), b.x2, b.y2 - 0.4f * b.height()},
              BoxPx{b.cls, b.x1 - b.width(), b.y1 - b.height(), b.x2 + b.width(), b.y2 + b.height()},
              BoxPx{b.cls, b.x1 + 0.3f * b.width(), b.y1 + 0.3f * b.height(), b.x2 - 0.3f * b.width(),
                    b.y2 - 0.3f * b.height()}}) {
          // (At 6-11 px, 40% is within the blur; a box grown over a neighbour holds its pixels.)
          bool usable = bad.x1 >= 0 && bad.y1 >= 0 && bad.x2 <= w && bad.y2 <= h &&
                        std::min(b.width(), b.height()) >= 12;
          for (const auto& o : others) usable = usable && iou(grow(bad, 0.2f), o) == 0;
          if (!usable) continue;
          ++tried;
          misplaced_caught += box_problem(changed, bad, others) != "";
        }
      }
      // Pairwise overlap stays small.
      for (size_t p = 0; p < with.boxes.size(); ++p)
        for (size_t q = p + 1; q < with.boxes.size(); ++q) EXPECT_LT(iou(with.boxes[p], with.boxes[q]), 0.1f);
    }
    EXPECT_GE(boxes, 30) << set;
    EXPECT_GE(tried, 20) << set;
    EXPECT_GE(misplaced_caught, tried * 95 / 100) << set << ": misplaced boxes pass the check";
  }
}

TEST(Synth, SizesCountsAndEmptyImages) {
  SynthOptions o;
  o.width = 320, o.height = 192, o.seed = 11;
  SynthRenderer r(o);
  int empty = 0, boxes = 0, most = 0;
  float wmin = 1e9, wmax = 0;
  const int n = 60;
  for (int i = 0; i < n; ++i) {
    SynthImage s = r.render(1, i);
    empty += s.boxes.empty();
    boxes += int(s.boxes.size());
    most = std::max(most, int(s.boxes.size()));
    for (const auto& b : s.boxes) wmin = std::min(wmin, b.width()), wmax = std::max(wmax, b.width());
  }
  EXPECT_GE(empty, 1);
  EXPECT_LE(empty, n / 4);
  EXPECT_LE(most, 6);
  EXPECT_GE(most, 4);
  EXPECT_GT(boxes, 2 * n);
  // 8-80 px at 640 wide, scaled to 320: 6 (the floor) to 40, a little less when turned away.
  EXPECT_GE(wmin, 2.f);
  EXPECT_LE(wmin, 9.f);
  EXPECT_LE(wmax, 44.f);
  EXPECT_GE(wmax, 25.f);
}

TEST(Synth, PhotoBackgrounds) {
  TempDir tmp("photos");
  fs::path dir = tmp.path / "photos";
  fs::create_directories(dir);
  Rng rng(5);
  for (int i = 0; i < 2; ++i) {  // two fake "photos": smooth colour fields with blobs
    cv::Mat p(300 + 40 * i, 500, CV_8UC3,
              cv::Scalar(rng.uniform(0, 255), rng.uniform(0, 255), rng.uniform(0, 255)));
    for (int k = 0; k < 20; ++k)
      cv::circle(p, {int(rng.randint(500)), int(rng.randint(300))}, int(rng.randint(5, 60)),
                 cv::Scalar(rng.uniform(0, 255), rng.uniform(0, 255), rng.uniform(0, 255)), cv::FILLED);
    cv::imwrite((dir / fmt::format("p{}.jpg", i)).string(), p);
  }
  std::ofstream(dir / "notes.txt") << "not an image";
  SynthOptions o = tiny(tmp.path / "ds");
  o.backgrounds = dir;
  SynthRenderer r(o);
  int boxes = 0;
  for (int i = 0; i < 6; ++i) {
    SynthImage with = r.render(0, i), without = r.render(0, i, false);
    cv::Mat changed = changed_mask(with.image, without.image);
    for (size_t k = 0; k < with.boxes.size(); ++k, ++boxes) {
      std::vector<BoxPx> others = with.boxes;
      others.erase(others.begin() + long(k));
      EXPECT_EQ(box_problem(changed, with.boxes[k], others), "") << "image " << i << " box " << k;
    }
  }
  EXPECT_GT(boxes, 5);
  EXPECT_EQ(synthesize(o).images, 12);

  o.backgrounds = tmp.path / "missing";
  EXPECT_THROW(SynthRenderer{o}, UsageError);
  o.backgrounds = tmp.path / "ds" / "train" / "labels";  // a folder without images
  EXPECT_THROW(SynthRenderer{o}, UsageError);
}

TEST(Synth, RefusesToOverwriteAForeignDataSet) {
  TempDir tmp("foreign");
  fs::path out = tmp.path / "mine";
  fs::create_directories(out);
  std::ofstream(out / "dataset.yaml") << "path: .\ntrain: images\nnc: 1\nnames: [cat]\n";
  try {
    synthesize(tiny(out));
    FAIL() << "no error";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("not written by yoloqat synth"), std::string::npos) << e.what();
  }
  SynthOptions bad = tiny(tmp.path / "x");
  bad.train = bad.val = bad.test = 0;
  EXPECT_THROW(synthesize(bad), UsageError);
  bad = tiny(tmp.path / "x");
  bad.width = 16;
  EXPECT_THROW(synthesize(bad), UsageError);
}

TEST(SynthCommand, WritesSummaryAndConfig) {
  TempDir tmp("cmd");
  const std::string out = (tmp.path / "ds").string();
  cli::run_subcommand("synth", {"out=" + out, "train=3", "val=1", "test=1", "imgsz=160,96", "classes=qcvn",
                                "threads=1", "log=warn"});
  std::string json = bytes(fs::path(out) / "synth.json");
  EXPECT_NE(json.find("\"images\": 5"), std::string::npos) << json;
  EXPECT_NE(json.find("\"P.127-50\""), std::string::npos) << json;
  EXPECT_TRUE(fs::exists(fs::path(out) / "synth_args.yaml"));
  YAML::Node y = YAML::LoadFile(out + "/dataset.yaml");
  EXPECT_EQ(y["nc"].as<size_t>(), synth_class_names("qcvn").size());
  cv::Mat im = cv::imread(out + "/valid/images/000000.jpg");
  EXPECT_EQ(im.size(), cv::Size(160, 96));
  // A relative out= lands under project=.
  cli::run_subcommand("synth", {"project=" + tmp.path.string(), "out=rel", "train=1", "val=0", "test=0",
                                "imgsz=64,64", "log=warn"});
  EXPECT_TRUE(fs::exists(tmp.path / "rel" / "train" / "images" / "000000.jpg"));
  EXPECT_THROW(cli::run_subcommand("synth", {"out=" + out, "classes=gtsrb"}), UsageError);
  EXPECT_THROW(cli::run_subcommand("synth", {"out=" + out, "imgsz=320,192,96"}), UsageError);
}

}  // namespace
}  // namespace yq::data
