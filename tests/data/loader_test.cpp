#include "data/loader.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <opencv2/imgproc.hpp>

#include "test_util.h"

namespace yq::data {
namespace {

using yq::testing::TempDir;

// n images of assorted sizes, each with one or two filled rectangles and their labels.
std::vector<Sample> make_samples(const fs::path& dir, int n) {
  std::vector<Sample> out;
  for (int i = 0; i < n; ++i) {
    int w = 96 + 16 * (i % 4), h = 64 + 24 * (i % 3);
    cv::Mat img(h, w, CV_8UC3, cv::Scalar(40, 40, 40));
    Sample s;
    s.image = (dir / "images" / fmt::format("{:03d}.png", i)).string();
    s.width = w, s.height = h;
    int k = 1 + i % 2;
    for (int j = 0; j < k; ++j) {
      int x1 = 8 + j * 40, y1 = 8 + (i % 3) * 4, x2 = x1 + 24 + i % 5, y2 = y1 + 20;
      cv::rectangle(img, cv::Point(x1, y1), cv::Point(x2 - 1, y2 - 1), cv::Scalar(0, 0, 255), cv::FILLED);
      s.labels.push_back(to_normalized(BoxPx{j, float(x1), float(y1), float(x2), float(y2)}, w, h));
    }
    fs::create_directories(dir / "images");
    cv::imwrite(s.image, img);
    out.push_back(s);
  }
  return out;
}

std::vector<Batch> run_epoch(DataLoader& dl, int epoch) {
  dl.start_epoch(epoch);
  std::vector<Batch> out;
  Batch b;
  while (dl.next(b)) out.push_back(b);
  return out;
}

TEST(Loader, DeterministicWhateverTheWorkerCount) {
  TempDir t("loader");
  auto samples = make_samples(t.path(), 11);
  LoaderOptions o;
  o.imgsz = 96, o.batch = 4, o.seed = 7;
  std::vector<std::vector<Batch>> runs;
  for (int workers : {0, 1, 3}) {
    o.workers = workers;
    DataLoader dl(samples, {}, o);
    EXPECT_EQ(dl.num_batches(), 3);
    runs.push_back(run_epoch(dl, 2));
  }
  for (size_t r = 1; r < runs.size(); ++r) {
    ASSERT_EQ(runs[r].size(), runs[0].size());
    for (size_t b = 0; b < runs[0].size(); ++b) {
      EXPECT_TRUE(torch::equal(runs[r][b].images, runs[0][b].images)) << "run " << r << " batch " << b;
      EXPECT_TRUE(torch::equal(runs[r][b].targets, runs[0][b].targets)) << "run " << r << " batch " << b;
      EXPECT_EQ(runs[r][b].paths, runs[0][b].paths);
    }
  }
  // Another epoch gives another order and other augmentations.
  o.workers = 2;
  DataLoader dl(samples, {}, o);
  auto e3 = run_epoch(dl, 3);
  EXPECT_FALSE(torch::equal(e3[0].images, runs[0][0].images));
  // The last batch holds the remainder.
  EXPECT_EQ(runs[0].back().images.size(0), 3);
  EXPECT_EQ(runs[0][0].images.sizes(), (std::vector<int64_t>{4, 3, 96, 96}));
}

TEST(Loader, ValidationBatchesMapBackToTheOriginalBoxes) {
  TempDir t("loaderval");
  auto samples = make_samples(t.path(), 6);
  LoaderOptions o;
  o.imgsz = 128, o.batch = 3, o.augment = false, o.shuffle = false, o.rect = true, o.workers = 2;
  DataLoader dl(samples, {}, o);
  auto batches = run_epoch(dl, 0);
  ASSERT_EQ(batches.size(), 2u);
  int seen = 0;
  for (const auto& b : batches) {
    EXPECT_EQ(b.images.size(2) % 32, 0);
    EXPECT_EQ(b.images.size(3) % 32, 0);
    EXPECT_LE(std::max(b.images.size(2), b.images.size(3)), 128 + 32);
    for (size_t i = 0; i < b.paths.size(); ++i) {
      const Sample* s = nullptr;
      for (const auto& c : samples)
        if (c.image == b.paths[i]) s = &c;
      ASSERT_NE(s, nullptr);
      EXPECT_EQ(b.orig_hw[i], std::make_pair(s->height, s->width));
      // Each target, letterboxed then mapped back, equals the original label within half a pixel.
      auto rows = b.targets.index({b.targets.select(1, 0) == double(i)});
      ASSERT_EQ(rows.size(0), int64_t(s->labels.size()));
      const auto& lb = b.letterbox[i];
      for (int64_t k = 0; k < rows.size(0); ++k) {
        BoxPx px =
            to_pixels(Label{int(rows[k][1].item<float>()), rows[k][2].item<float>(), rows[k][3].item<float>(),
                            rows[k][4].item<float>(), rows[k][5].item<float>()},
                      int(b.images.size(3)), int(b.images.size(2)));
        std::vector<BoxPx> v{px};
        unletterbox_boxes(v, lb, s->width, s->height);
        BoxPx want = to_pixels(s->labels[size_t(k)], s->width, s->height);
        EXPECT_NEAR(v[0].x1, want.x1, 0.75) << b.paths[i];
        EXPECT_NEAR(v[0].y2, want.y2, 0.75) << b.paths[i];
        // The pixels under the letterboxed box are the drawn red rectangle (RGB order in the tensor).
        int cx = int((px.x1 + px.x2) / 2), cy = int((px.y1 + px.y2) / 2);
        EXPECT_GT(b.images[int64_t(i)][0][cy][cx].item<uint8_t>(), 200);
        EXPECT_LT(b.images[int64_t(i)][2][cy][cx].item<uint8_t>(), 60);
        ++seen;
      }
    }
  }
  EXPECT_EQ(seen, 9);
}

TEST(Loader, MosaicCanBeSwitchedOff) {
  TempDir t("loadermosaic");
  auto samples = make_samples(t.path(), 8);
  LoaderOptions o;
  o.imgsz = 64, o.batch = 8, o.workers = 1;
  o.aug.mosaic = 1.0;
  DataLoader dl(samples, {}, o);
  auto with = run_epoch(dl, 0);
  dl.set_mosaic(0.0);
  auto without = run_epoch(dl, 0);
  // Mosaic puts boxes of 4 images into each sample; without it each sample has at most 2 boxes.
  EXPECT_GT(with[0].targets.size(0), without[0].targets.size(0));
  auto counts = torch::bincount(without[0].targets.select(1, 0).to(torch::kLong));
  EXPECT_LE(counts.max().item<int64_t>(), 2);
}

}  // namespace
}  // namespace yq::data
