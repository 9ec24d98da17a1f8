// Augmentation invariants: a rectangle drawn on the image before a transform lands on the transformed
// box. Scenes are black with filled rectangles of distinct pure colours (colour index = class), so each
// box can be found again in the output by its colour.
#include "data/augment.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <opencv2/core/utility.hpp>
#include <opencv2/imgproc.hpp>
#include <optional>

#include "core/error.h"

namespace yq::data {
namespace {

// Named tolerances (pixels) for comparing a box with the pixel bounding box of its colour.
constexpr float kTolCopy = 0.01f;     // pure copies and flips: integer boxes stay exact
constexpr float kTolResample = 1.0f;  // bilinear resize / translate+scale warps: edges blend over one pixel
constexpr float kTolRotated = 2.0f;   // rotated, sheared or perspective rectangles: corners are antialiased

// The 7 non-black BGR colours with channels in {0, 255}; colour k is drawn for class k.
const cv::Vec3b kColours[7] = {{255, 0, 0},   {0, 255, 0},   {0, 0, 255},    {255, 255, 0},
                               {255, 0, 255}, {0, 255, 255}, {255, 255, 255}};

// A black w x h image with each box (integer corners) filled with the colour of its class.
Annotated scene(int w, int h, const std::vector<BoxPx>& boxes) {
  Annotated a{cv::Mat(h, w, CV_8UC3, cv::Scalar::all(0)), boxes};
  for (const auto& b : boxes) {
    cv::Rect r(int(b.x1), int(b.y1), int(b.x2 - b.x1), int(b.y2 - b.y1));
    a.image(r & cv::Rect(0, 0, w, h)).setTo(cv::Scalar(kColours[b.cls]));
  }
  return a;
}

struct ColourRegion {
  BoxPx box;      // pixel bounding box in edge coordinates (pixel i covers [i, i + 1))
  int count = 0;  // number of pixels of the colour
};

// Pixels "of colour c" are within 100 of it on every channel (more than about half covered by it,
// whether blended with black or with the grey padding).
std::optional<ColourRegion> find_colour(const cv::Mat& img, int cls) {
  const cv::Vec3b c = kColours[cls];
  int x1 = img.cols, y1 = img.rows, x2 = -1, y2 = -1, count = 0;
  for (int y = 0; y < img.rows; ++y) {
    const auto* row = img.ptr<cv::Vec3b>(y);
    for (int x = 0; x < img.cols; ++x) {
      bool match = true;
      for (int ch = 0; ch < 3; ++ch) match = match && std::abs(int(row[x][ch]) - int(c[ch])) < 100;
      if (!match) continue;
      ++count;
      x1 = std::min(x1, x), y1 = std::min(y1, y), x2 = std::max(x2, x), y2 = std::max(y2, y);
    }
  }
  if (count == 0) return std::nullopt;
  return ColourRegion{BoxPx{cls, float(x1), float(y1), float(x2 + 1), float(y2 + 1)}, count};
}

std::string str(const BoxPx& b) {
  return "cls " + std::to_string(b.cls) + " [" + std::to_string(b.x1) + ", " + std::to_string(b.y1) + ", " +
         std::to_string(b.x2) + ", " + std::to_string(b.y2) + "]";
}

void expect_box_near(const BoxPx& got, const BoxPx& want, float tol, const std::string& what) {
  EXPECT_NEAR(got.x1, want.x1, tol) << what << ": got " << str(got) << " want " << str(want);
  EXPECT_NEAR(got.y1, want.y1, tol) << what << ": got " << str(got) << " want " << str(want);
  EXPECT_NEAR(got.x2, want.x2, tol) << what << ": got " << str(got) << " want " << str(want);
  EXPECT_NEAR(got.y2, want.y2, tol) << what << ": got " << str(got) << " want " << str(want);
}

// Every output box must sit on the pixels of its colour (tolerance tol). A colour whose box was dropped
// may only keep a sliver: thin, or at most `max_dropped_area` pixels.
void expect_boxes_on_colours(const Annotated& out, const std::vector<int>& classes, float tol,
                             double max_dropped_area, const std::string& what) {
  for (int cls : classes) {
    auto region = find_colour(out.image, cls);
    const BoxPx* box = nullptr;
    for (const auto& b : out.boxes)
      if (b.cls == cls) box = &b;
    const std::string w = what + ", class " + std::to_string(cls);
    if (box) {
      ASSERT_TRUE(region.has_value()) << w << ": box " << str(*box) << " has no pixels of its colour";
      expect_box_near(region->box, *box, tol, w);
    } else if (region) {
      const bool thin = region->box.width() <= 2 + 2 * tol || region->box.height() <= 2 + 2 * tol;
      EXPECT_TRUE(thin || region->count <= max_dropped_area)
          << w << ": dropped box still shows " << region->count << " pixels in " << str(region->box);
    }
  }
}

bool same_bytes(const cv::Mat& a, const cv::Mat& b) {
  return a.size() == b.size() && a.type() == b.type() && cv::norm(a, b, cv::NORM_INF) == 0;
}

// Seven separated rectangles on a 320 x 320 scene, one per colour.
Annotated seven_rect_scene() {
  return scene(320, 320,
               {{0, 20, 20, 80, 60},
                {1, 120, 30, 170, 110},
                {2, 220, 16, 300, 56},
                {3, 30, 140, 70, 230},
                {4, 130, 150, 200, 200},
                {5, 240, 120, 300, 260},
                {6, 60, 260, 220, 300}});
}

const std::vector<int> kAll7 = {0, 1, 2, 3, 4, 5, 6};

// ---------------------------------------------------------------------------------------------------------
// Letterbox

TEST(Letterbox, LandscapeToSquareHandComputed) {
  Annotated a = scene(640, 384, {{2, 100, 50, 300, 250}});
  LetterboxInfo info;
  cv::Mat out = letterbox(a.image, 320, 320, &info);
  // r = min(320 / 640, 320 / 384) = 0.5 -> 320 x 192, 128 rows of padding split 64 / 64.
  EXPECT_DOUBLE_EQ(info.ratio, 0.5);
  EXPECT_DOUBLE_EQ(info.pad_x, 0);
  EXPECT_DOUBLE_EQ(info.pad_y, 64);
  EXPECT_EQ(info.out_w, 320);
  EXPECT_EQ(info.out_h, 320);
  ASSERT_EQ(out.size(), cv::Size(320, 320));
  EXPECT_EQ(out.at<cv::Vec3b>(63, 10), cv::Vec3b(114, 114, 114));
  EXPECT_EQ(out.at<cv::Vec3b>(64, 10), cv::Vec3b(0, 0, 0));
  EXPECT_EQ(out.at<cv::Vec3b>(255, 10), cv::Vec3b(0, 0, 0));
  EXPECT_EQ(out.at<cv::Vec3b>(256, 10), cv::Vec3b(114, 114, 114));
  letterbox_boxes(a.boxes, info);
  expect_box_near(a.boxes[0], BoxPx{2, 50, 89, 150, 189}, 1e-4f, "letterboxed box");
  auto region = find_colour(out, 2);
  ASSERT_TRUE(region);
  expect_box_near(region->box, a.boxes[0], kTolResample, "drawn rectangle");
}

TEST(Letterbox, PortraitUpscaleNoScaleupOddPaddingAndCorner) {
  LetterboxInfo info;
  // Portrait 384 x 640 -> 320 x 320: 192 x 320, pad_x 64.
  letterbox(cv::Mat(640, 384, CV_8UC3, cv::Scalar::all(0)), 320, 320, &info);
  EXPECT_DOUBLE_EQ(info.ratio, 0.5);
  EXPECT_DOUBLE_EQ(info.pad_x, 64);
  EXPECT_DOUBLE_EQ(info.pad_y, 0);

  // Upscale 160 x 96 -> 320 x 320: r = 2, 320 x 192, pad_y 64.
  cv::Mat up = letterbox(cv::Mat(96, 160, CV_8UC3, cv::Scalar::all(0)), 320, 320, &info);
  EXPECT_DOUBLE_EQ(info.ratio, 2);
  EXPECT_DOUBLE_EQ(info.pad_y, 64);
  EXPECT_EQ(up.at<cv::Vec3b>(64, 0), cv::Vec3b(0, 0, 0));

  // scaleup = false never enlarges: 100 x 50 stays, padding 220 / 270 split 110 / 135.
  cv::Mat small = letterbox(cv::Mat(50, 100, CV_8UC3, cv::Scalar::all(0)), 320, 320, &info, false);
  EXPECT_DOUBLE_EQ(info.ratio, 1);
  EXPECT_DOUBLE_EQ(info.pad_x, 110);
  EXPECT_DOUBLE_EQ(info.pad_y, 135);
  EXPECT_EQ(small.at<cv::Vec3b>(135, 110), cv::Vec3b(0, 0, 0));
  EXPECT_EQ(small.at<cv::Vec3b>(134, 110), cv::Vec3b(114, 114, 114));
  EXPECT_EQ(small.at<cv::Vec3b>(184, 209), cv::Vec3b(0, 0, 0));
  EXPECT_EQ(small.at<cv::Vec3b>(185, 209), cv::Vec3b(114, 114, 114));

  // Odd padding: 100 x 51 in 128 x 128 (no scaleup): 28 columns -> 14 / 14, 77 rows -> 38 top / 39 bottom.
  cv::Mat odd = letterbox(cv::Mat(51, 100, CV_8UC3, cv::Scalar::all(0)), 128, 128, &info, false);
  EXPECT_DOUBLE_EQ(info.pad_x, 14);
  EXPECT_DOUBLE_EQ(info.pad_y, 38);
  EXPECT_EQ(odd.at<cv::Vec3b>(38, 14), cv::Vec3b(0, 0, 0));
  EXPECT_EQ(odd.at<cv::Vec3b>(88, 113), cv::Vec3b(0, 0, 0));
  EXPECT_EQ(odd.at<cv::Vec3b>(89, 113), cv::Vec3b(114, 114, 114));

  // center = false: everything at the top-left, padding right and bottom.
  cv::Mat corner = letterbox(cv::Mat(50, 100, CV_8UC3, cv::Scalar::all(0)), 128, 128, &info, false, false);
  EXPECT_DOUBLE_EQ(info.pad_x, 0);
  EXPECT_DOUBLE_EQ(info.pad_y, 0);
  EXPECT_EQ(corner.at<cv::Vec3b>(0, 0), cv::Vec3b(0, 0, 0));
  EXPECT_EQ(corner.at<cv::Vec3b>(49, 99), cv::Vec3b(0, 0, 0));
  EXPECT_EQ(corner.at<cv::Vec3b>(50, 99), cv::Vec3b(114, 114, 114));
  EXPECT_EQ(corner.at<cv::Vec3b>(0, 100), cv::Vec3b(114, 114, 114));
}

TEST(Letterbox, UnletterboxInvertsLetterboxAndClips) {
  Rng rng(7);
  const std::pair<int, int> targets[] = {{320, 320}, {512, 288}, {640, 640}, {100, 300}};
  for (auto [tw, th] : targets) {
    LetterboxInfo info;
    letterbox(cv::Mat(384, 640, CV_8UC3, cv::Scalar::all(0)), tw, th, &info);
    std::vector<BoxPx> boxes;
    for (int i = 0; i < 20; ++i) {
      float x1 = float(rng.uniform(0, 600)), y1 = float(rng.uniform(0, 350));
      boxes.push_back({i, x1, y1, x1 + float(rng.uniform(1, 40)), y1 + float(rng.uniform(1, 34))});
    }
    std::vector<BoxPx> back = boxes;
    letterbox_boxes(back, info);
    unletterbox_boxes(back, info, 640, 384);
    for (size_t i = 0; i < boxes.size(); ++i)
      expect_box_near(back[i], boxes[i], 1e-3f,
                      "round trip to " + std::to_string(tw) + "x" + std::to_string(th));
  }
  // A predicted box reaching into the padding is clipped to the original image.
  LetterboxInfo info;
  letterbox(cv::Mat(384, 640, CV_8UC3, cv::Scalar::all(0)), 320, 320, &info);
  std::vector<BoxPx> pred = {{0, -10, 20, 330, 300}};
  unletterbox_boxes(pred, info, 640, 384);
  expect_box_near(pred[0], BoxPx{0, 0, 0, 640, 384}, 1e-4f, "clipped prediction");
}

// ---------------------------------------------------------------------------------------------------------
// Resize to the long side

TEST(ResizeLongSide, BoxesFollowAndPixelsAreNotShared) {
  Annotated a = scene(640, 384, {{0, 100, 40, 180, 120}, {4, 400, 200, 560, 380}});
  Annotated r = resize_long_side(a, 320);
  ASSERT_EQ(r.image.size(), cv::Size(320, 192));
  expect_box_near(r.boxes[0], BoxPx{0, 50, 20, 90, 60}, 1e-4f, "halved box");
  expect_boxes_on_colours(r, {0, 4}, kTolResample, 0, "resize 640x384 -> 320");

  // A Zalo-sized 1622 x 626 frame: 640 x round(626 * 640 / 1622) = 640 x 247; per-axis exact factors.
  Annotated z = scene(1622, 626, {{1, 811, 313, 851, 353}});
  Annotated rz = resize_long_side(z, 640);
  ASSERT_EQ(rz.image.size(), cv::Size(640, 247));
  EXPECT_NEAR(rz.boxes[0].x1, 811 * 640.0 / 1622, 1e-3);
  EXPECT_NEAR(rz.boxes[0].y2, 353 * 247.0 / 626, 1e-3);
  expect_boxes_on_colours(rz, {1}, kTolResample, 0, "resize 1622x626 -> 640");

  // Already the right size: same pixels, but a separate buffer (later steps work in place).
  Annotated same = resize_long_side(r, 320);
  EXPECT_TRUE(same_bytes(same.image, r.image));
  EXPECT_NE(same.image.data, r.image.data);
}

// ---------------------------------------------------------------------------------------------------------
// Mosaic

std::array<Annotated, 4> mosaic_parts() {
  return {scene(320, 192, {{0, 10, 10, 90, 60}, {1, 200, 100, 300, 180}}),
          scene(192, 320, {{2, 20, 30, 100, 120}, {3, 120, 250, 180, 310}}),
          scene(320, 320, {{4, 5, 5, 150, 100}, {5, 200, 200, 310, 300}}),
          scene(256, 128, {{6, 100, 20, 250, 120}})};
}

TEST(Mosaic4, BoxesLandOnDrawnRectangles) {
  const auto parts = mosaic_parts();
  for (uint64_t seed = 1; seed <= 25; ++seed) {
    Rng rng(seed);
    Annotated m = mosaic4(parts, 320, rng);
    ASSERT_EQ(m.image.size(), cv::Size(640, 640));
    for (const auto& b : m.boxes) {
      EXPECT_GE(b.x1, 0);
      EXPECT_LE(b.x2, 640);
      EXPECT_GE(b.y1, 0);
      EXPECT_LE(b.y2, 640);
      EXPECT_GT(b.area(), 0);
    }
    // Pure copies: a box is exactly where its colour is, and a dropped box has no pixel left.
    expect_boxes_on_colours(m, kAll7, kTolCopy, 0, "mosaic seed " + std::to_string(seed));
  }
}

TEST(Mosaic4, CentreCoversItsRange) {
  // Part 0 is white: its bottom-right corner is the mosaic centre.
  std::array<Annotated, 4> parts = {scene(320, 320, {{6, 0, 0, 320, 320}}), scene(64, 64, {}),
                                    scene(64, 64, {}), scene(64, 64, {})};
  int lo = 1 << 30, hi = -1;
  for (uint64_t seed = 1; seed <= 200; ++seed) {
    Rng rng(seed);
    Annotated m = mosaic4(parts, 320, rng);
    ASSERT_EQ(m.boxes.size(), 1u);
    const int xc = int(m.boxes[0].x2), yc = int(m.boxes[0].y2);
    EXPECT_GE(xc, 160);
    EXPECT_LE(xc, 480);
    EXPECT_GE(yc, 160);
    EXPECT_LE(yc, 480);
    lo = std::min({lo, xc, yc});
    hi = std::max({hi, xc, yc});
  }
  EXPECT_LT(lo, 175);  // the draws spread over the whole range
  EXPECT_GT(hi, 465);
}

// ---------------------------------------------------------------------------------------------------------
// Warps

TEST(RandomAffine, MosaicCanvasCropDropsBoxesPushedOut) {
  // No randomness left: the 640 x 640 canvas is cropped to its centre 320 x 320 (x' = x - 160).
  AugmentOptions o;
  o.translate = 0;
  o.scale = 0;
  Annotated a = scene(640, 640,
                      {{0, 10, 10, 60, 60},        // entirely outside: dropped
                       {1, 150, 200, 200, 250},    // 40 of 50 columns inside: kept, clipped
                       {2, 100, 300, 165, 350},    // 5 of 65 columns inside (ratio 0.077): dropped
                       {3, 100, 400, 170, 440},    // 10 of 70 columns inside (ratio 0.14): kept
                       {4, 400, 300, 440, 302},    // 2 px tall: dropped
                       {5, 200, 200, 260, 240},    // inside
                       {6, 470, 300, 520, 350}});  // 10 of 50 columns (ratio 0.2) but 10 px wide: kept
  Rng rng(3);
  random_affine(a, o, 320, 320, rng);
  ASSERT_EQ(a.image.size(), cv::Size(320, 320));
  ASSERT_EQ(a.boxes.size(), 4u);
  expect_box_near(a.boxes[0], BoxPx{1, 0, 40, 40, 90}, 1e-4f, "clipped");
  expect_box_near(a.boxes[1], BoxPx{3, 0, 240, 10, 280}, 1e-4f, "mostly out but kept");
  expect_box_near(a.boxes[2], BoxPx{5, 40, 40, 100, 80}, 1e-4f, "inside");
  expect_box_near(a.boxes[3], BoxPx{6, 310, 140, 320, 190}, 1e-4f, "right edge");
  expect_boxes_on_colours(a, {1, 3, 5, 6}, kTolCopy, 0, "crop");
}

TEST(RandomAffine, ZeroStrengthIsIdentity) {
  AugmentOptions o;
  o.translate = 0;
  o.scale = 0;
  Annotated a = seven_rect_scene();
  const Annotated before{a.image.clone(), a.boxes};
  Rng rng(11);
  random_affine(a, o, 320, 320, rng);
  EXPECT_TRUE(same_bytes(a.image, before.image));
  EXPECT_NE(a.image.data, before.image.data);
  ASSERT_EQ(a.boxes.size(), before.boxes.size());
  for (size_t i = 0; i < a.boxes.size(); ++i) expect_box_near(a.boxes[i], before.boxes[i], 0, "identity");
}

TEST(WarpAnnotated, KnownMatricesAreExact) {
  // 90 degree rotation of a 320 x 200 image into 200 x 320: x' = 200 - y, y' = x. Pixel grid to pixel grid,
  // so the drawn rectangles land exactly on the mapped boxes (this fails by one pixel without the
  // half-pixel conjugation).
  Annotated a = scene(320, 200, {{0, 10, 20, 60, 50}, {3, 200, 100, 300, 190}});
  Annotated rot{a.image.clone(), a.boxes};
  warp_annotated(rot, cv::Matx33d(0, -1, 200, 1, 0, 0, 0, 0, 1), 200, 320);
  ASSERT_EQ(rot.image.size(), cv::Size(200, 320));
  expect_box_near(rot.boxes[0], BoxPx{0, 150, 10, 180, 60}, 1e-4f, "rotated box");
  expect_boxes_on_colours(rot, {0, 3}, kTolCopy, 0, "90 degree rotation");

  // Integer translation: exact copy of the pixels.
  Annotated shift{a.image.clone(), a.boxes};
  warp_annotated(shift, cv::Matx33d(1, 0, 7, 0, 1, -5, 0, 0, 1), 320, 200);
  expect_box_near(shift.boxes[0], BoxPx{0, 17, 15, 67, 45}, 1e-4f, "shifted box");
  expect_boxes_on_colours(shift, {0, 3}, kTolCopy, 0, "translation");

  // Zoom x2: edges blend over one pixel.
  Annotated zoom{a.image.clone(), a.boxes};
  warp_annotated(zoom, cv::Matx33d(2, 0, 0, 0, 2, 0, 0, 0, 1), 640, 400);
  expect_boxes_on_colours(zoom, {0, 3}, kTolResample, 0, "zoom");
}

TEST(RandomAffine, TranslateScaleBoxesLandOnDrawnRectangles) {
  AugmentOptions o;  // translate 0.1, scale 0.5
  const Annotated src = seven_rect_scene();
  int total_kept = 0, total_dropped = 0;
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    Annotated a{src.image.clone(), src.boxes};
    Rng rng(seed);
    random_affine(a, o, 320, 320, rng);
    ASSERT_EQ(a.image.size(), cv::Size(320, 320));
    total_kept += int(a.boxes.size());
    total_dropped += 7 - int(a.boxes.size());
    // A dropped box shows at most 10 % of its unclipped area, at most 1.5^2 times the largest drawn area.
    expect_boxes_on_colours(a, kAll7, kTolResample, 0.1 * 160 * 40 * 2.25 + 200,
                            "seed " + std::to_string(seed));
  }
  EXPECT_GT(total_kept, 100);  // most boxes survive the default strengths
}

// Rotation, shear or perspective: the box is the enclosing box of the warped rectangle. Where the warped
// rectangle is clipped, the enclosing box of the clipped polygon is only contained in the clipped box.
void check_enclosing(const AugmentOptions& o, const std::string& what) {
  const Annotated src = seven_rect_scene();
  int inside_checked = 0;
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    Annotated a{src.image.clone(), src.boxes};
    Rng rng(seed);
    random_affine(a, o, 320, 320, rng);
    const std::string w = what + " seed " + std::to_string(seed);
    for (const auto& b : a.boxes) {
      auto region = find_colour(a.image, b.cls);
      ASSERT_TRUE(region) << w << ": no pixels for " << str(b);
      const bool inside = b.x1 > 0 && b.y1 > 0 && b.x2 < 320 && b.y2 < 320;
      if (inside) {
        expect_box_near(region->box, b, kTolRotated, w);
        ++inside_checked;
      } else {
        EXPECT_GE(region->box.x1, b.x1 - kTolRotated) << w;
        EXPECT_GE(region->box.y1, b.y1 - kTolRotated) << w;
        EXPECT_LE(region->box.x2, b.x2 + kTolRotated) << w;
        EXPECT_LE(region->box.y2, b.y2 + kTolRotated) << w;
      }
    }
  }
  EXPECT_GT(inside_checked, 50) << what;
}

TEST(RandomAffine, RotationAndShearGiveTheEnclosingBox) {
  AugmentOptions o;
  o.degrees = 30;
  o.shear = 8;
  o.scale = 0.3;
  check_enclosing(o, "rotation+shear");
}

TEST(RandomAffine, PerspectiveGivesTheEnclosingBox) {
  AugmentOptions o;
  o.degrees = 10;
  o.perspective = 0.0008;
  o.scale = 0.2;
  check_enclosing(o, "perspective");
}

// ---------------------------------------------------------------------------------------------------------
// Flips

TEST(Flip, LeftRightMirrorsBoxesAndSwapsMirrorClasses) {
  // Classes 0 and 1 are mirrors of each other (turn left / turn right); 2 is symmetric.
  Annotated a = scene(200, 100, {{0, 10, 10, 50, 40}, {1, 120, 50, 190, 90}, {2, 60, 20, 80, 95}});
  const Annotated before{a.image.clone(), a.boxes};
  ASSERT_TRUE(flip_lr(a, {1, 0, 2}));
  ASSERT_EQ(a.boxes.size(), 3u);
  const int want_cls[3] = {1, 0, 2};
  for (int i = 0; i < 3; ++i) {
    const BoxPx& b = before.boxes[i];
    expect_box_near(a.boxes[i], BoxPx{want_cls[i], 200 - b.x2, b.y1, 200 - b.x1, b.y2}, 1e-4f, "mirrored");
    // The pixels of the original colour sit on the mirrored box.
    auto region = find_colour(a.image, b.cls);
    ASSERT_TRUE(region);
    expect_box_near(region->box, BoxPx{b.cls, a.boxes[i].x1, a.boxes[i].y1, a.boxes[i].x2, a.boxes[i].y2},
                    kTolCopy, "mirrored pixels");
  }
  // Flipping twice restores everything.
  ASSERT_TRUE(flip_lr(a, {1, 0, 2}));
  EXPECT_TRUE(same_bytes(a.image, before.image));
  for (int i = 0; i < 3; ++i) expect_box_near(a.boxes[i], before.boxes[i], 1e-4f, "double flip");
}

TEST(Flip, MinusOneForbidsTheFlip) {
  const std::vector<int> map = {0, -1, 2};
  Annotated a = scene(200, 100, {{0, 10, 10, 50, 40}, {1, 120, 50, 190, 90}});
  const Annotated before{a.image.clone(), a.boxes};
  EXPECT_FALSE(flip_lr(a, map));
  EXPECT_TRUE(same_bytes(a.image, before.image));
  for (int i = 0; i < 2; ++i) expect_box_near(a.boxes[i], before.boxes[i], 0, "not flipped");

  // Without the forbidden class the image flips; a background image always flips.
  Annotated b = scene(200, 100, {{2, 10, 10, 50, 40}});
  EXPECT_TRUE(flip_lr(b, map));
  expect_box_near(b.boxes[0], BoxPx{2, 150, 10, 190, 40}, 1e-4f, "flipped");
  Annotated bg = scene(200, 100, {});
  bg.image.at<cv::Vec3b>(0, 0) = cv::Vec3b(1, 2, 3);
  EXPECT_TRUE(flip_lr(bg, map));
  EXPECT_EQ(bg.image.at<cv::Vec3b>(0, 199), cv::Vec3b(1, 2, 3));
}

TEST(Flip, EmptyMapIsIdentityAndOutOfRangeClassThrows) {
  Annotated a = scene(200, 100, {{0, 10, 10, 50, 40}, {5, 120, 50, 190, 90}});
  ASSERT_TRUE(flip_lr(a, {}));
  EXPECT_EQ(a.boxes[0].cls, 0);
  EXPECT_EQ(a.boxes[1].cls, 5);
  expect_boxes_on_colours(a, {0, 5}, kTolCopy, 0, "identity map");
  EXPECT_THROW(flip_lr(a, {0, 1}), UsageError);  // class 5 has no entry
}

TEST(Flip, UpDownMirrorsBoxes) {
  Annotated a = scene(200, 100, {{3, 10, 10, 50, 40}, {4, 120, 50, 190, 90}});
  flip_ud(a);
  expect_box_near(a.boxes[0], BoxPx{3, 10, 60, 50, 90}, 1e-4f, "up-down");
  EXPECT_EQ(a.boxes[1].cls, 4);
  expect_boxes_on_colours(a, {3, 4}, kTolCopy, 0, "up-down");
}

// ---------------------------------------------------------------------------------------------------------
// HSV

cv::Mat noise_image(int w, int h, uint64_t seed) {
  cv::Mat img(h, w, CV_8UC3);
  Rng rng(seed);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < 3; ++c) img.at<cv::Vec3b>(y, x)[c] = uchar(rng.randint(256));
  return img;
}

TEST(Hsv, ZeroGainsAreTheIdentity) {
  cv::Mat img = noise_image(64, 48, 5);
  const cv::Mat before = img.clone();
  Rng rng(9), fresh(9);
  augment_hsv(img, 0, 0, 0, rng);
  EXPECT_TRUE(same_bytes(img, before));
  EXPECT_EQ(rng.next(), fresh.next());  // nothing drawn
}

TEST(Hsv, GreysKeepTheirHueAndValueGainScalesThem) {
  cv::Mat greys(16, 16, CV_8UC3);
  for (int i = 0; i < 256; ++i) greys.at<cv::Vec3b>(i / 16, i % 16) = cv::Vec3b::all(uchar(i));
  // Hue and saturation do nothing to greys (saturation 0).
  for (uint64_t seed = 1; seed <= 5; ++seed) {
    cv::Mat g = greys.clone();
    Rng rng(seed);
    augment_hsv(g, 0.5, 0.9, 0, rng);
    EXPECT_TRUE(same_bytes(g, greys)) << "seed " << seed;
  }
  // Value: every grey v becomes min(255, trunc(v * f)) with f = 1 + v_gain * u, u the third draw in [-1, 1).
  for (uint64_t seed = 1; seed <= 5; ++seed) {
    cv::Mat g = greys.clone();
    Rng rng(seed), replay(seed);
    augment_hsv(g, 0, 0, 0.4, rng);
    replay.uniform();
    replay.uniform();
    const double f = replay.uniform(-1, 1) * 0.4 + 1;
    for (int i = 0; i < 256; ++i) {
      const int want = std::min(255, int(i * f));
      ASSERT_EQ(g.at<cv::Vec3b>(i / 16, i % 16), cv::Vec3b::all(uchar(want))) << "grey " << i << " f " << f;
    }
  }
}

TEST(Hsv, SameSeedSameBytesAndColoursChange) {
  const cv::Mat img = noise_image(64, 48, 6);
  cv::Mat a = img.clone(), b = img.clone(), c = img.clone();
  Rng r1(21), r2(21), r3(22);
  augment_hsv(a, 0.015, 0.7, 0.4, r1);
  augment_hsv(b, 0.015, 0.7, 0.4, r2);
  augment_hsv(c, 0.015, 0.7, 0.4, r3);
  EXPECT_TRUE(same_bytes(a, b));
  EXPECT_FALSE(same_bytes(a, c));
  EXPECT_FALSE(same_bytes(a, img));
}

// ---------------------------------------------------------------------------------------------------------
// The whole chain

// A loader over `n` 640 x 384 scenes. Each call draws fresh colours (call k gets classes 2k and 2k + 1,
// modulo 7), so every colour is unique within one mosaic even when an index repeats.
struct SceneLoader {
  int calls = 0;
  std::vector<int> indices;
  Annotated operator()(int k) {
    indices.push_back(k);
    const int c0 = (2 * calls) % 7, c1 = (2 * calls + 1) % 7;
    ++calls;
    const int dx = 37 * k % 200, dy = 23 * k % 100;
    std::vector<BoxPx> boxes = {{c0, float(60 + dx), float(40 + dy), float(220 + dx), float(180 + dy)}};
    if (calls <= 3)
      boxes.push_back({c1, float(400 - dx / 2), float(200 + dy), float(600 - dx / 2), float(340)});
    return scene(640, 384, boxes);
  }
};

TEST(AugmentSample, OutputSizeAndBoxesInsideBothPaths) {
  AugmentOptions o;
  for (double mosaic : {1.0, 0.0}) {
    o.mosaic = mosaic;
    for (uint64_t seed = 1; seed <= 12; ++seed) {
      SceneLoader loader;
      Rng rng(seed);
      Annotated s = augment_sample(2, 5, std::ref(loader), 320, o, {}, rng);
      ASSERT_EQ(s.image.size(), cv::Size(320, 320));
      ASSERT_EQ(s.image.type(), CV_8UC3);
      ASSERT_EQ(loader.calls, mosaic > 0 ? 4 : 1);
      EXPECT_EQ(loader.indices[0], 2);
      for (int k : loader.indices) {
        EXPECT_GE(k, 0);
        EXPECT_LT(k, 5);
      }
      for (const auto& b : s.boxes) {
        EXPECT_GE(b.x1, 0);
        EXPECT_GE(b.y1, 0);
        EXPECT_LE(b.x2, 320);
        EXPECT_LE(b.y2, 320);
        EXPECT_GT(b.width(), 2);
        EXPECT_GT(b.height(), 2);
      }
    }
  }
}

TEST(AugmentSample, BoxesLandOnDrawnRectanglesThroughTheChain) {
  // HSV off so colours stay recognizable; flips on (identity map), mosaic on and off.
  AugmentOptions o;
  o.hsv_h = o.hsv_s = o.hsv_v = 0;
  o.flipud = 0.5;
  int boxes_seen = 0;
  for (double mosaic : {1.0, 0.0}) {
    o.mosaic = mosaic;
    for (uint64_t seed = 1; seed <= 10; ++seed) {
      SceneLoader loader;
      Rng rng(seed);
      Annotated s = augment_sample(1, 4, std::ref(loader), 320, o, {}, rng);
      boxes_seen += int(s.boxes.size());
      // Largest drawn box 160 x 140, halved by the resize, scaled up to 1.5x by the affine.
      expect_boxes_on_colours(s, kAll7, kTolResample, 0.1 * 80 * 70 * 2.25 + 100,
                              "mosaic " + std::to_string(mosaic) + " seed " + std::to_string(seed));
    }
  }
  EXPECT_GT(boxes_seen, 40);
}

TEST(AugmentSample, SameSeedSameBytes) {
  AugmentOptions o;
  o.degrees = 5;  // every random step in play
  o.shear = 2;
  o.flipud = 0.5;
  auto run = [&](uint64_t seed) {
    SceneLoader loader;
    Rng rng(seed);
    return augment_sample(3, 6, std::ref(loader), 256, o, {}, rng);
  };
  Annotated a = run(42), b = run(42), c = run(43);
  EXPECT_TRUE(same_bytes(a.image, b.image));
  ASSERT_EQ(a.boxes.size(), b.boxes.size());
  for (size_t i = 0; i < a.boxes.size(); ++i) expect_box_near(a.boxes[i], b.boxes[i], 0, "same seed");
  EXPECT_FALSE(same_bytes(a.image, c.image));
}

TEST(AugmentSample, DoesNotModifyTheLoadersPixels) {
  // load() may hand out cached images; the chain must leave them untouched (mosaic off: the path that
  // could alias them).
  const Annotated cached = scene(320, 192, {{0, 10, 10, 90, 60}});
  const cv::Mat before = cached.image.clone();
  AugmentOptions o;
  o.mosaic = 0;
  o.fliplr = 1;
  o.translate = o.scale = 0;
  for (uint64_t seed = 1; seed <= 3; ++seed) {
    Rng rng(seed);
    augment_sample(
        0, 1, [&](int) { return cached; }, 320, o, {}, rng);
    EXPECT_TRUE(same_bytes(cached.image, before));
  }
}

// Throughput of the training chain at imgsz 640 with mosaic on, 640 x 384 inputs, one thread.
// Run with --gtest_also_run_disabled_tests --gtest_filter='*Throughput*'.
TEST(AugmentSample, DISABLED_Throughput) {
  const int prev_threads = cv::getNumThreads();
  cv::setNumThreads(1);
  std::vector<Annotated> data;
  for (int i = 0; i < 8; ++i) {
    Annotated a{noise_image(640, 384, 100 + i), {}};
    for (int k = 0; k < 5; ++k)
      a.boxes.push_back({k, 50.f + 100 * k, 50.f + 30 * k, 90.f + 100 * k, 90.f + 30 * k});
    data.push_back(a);
  }
  auto load = [&](int k) { return data[k]; };
  const AugmentOptions o;
  Rng rng(1);
  size_t boxes = 0;
  for (int i = 0; i < 10; ++i) boxes += augment_sample(i % 8, 8, load, 640, o, {}, rng).boxes.size();
  std::vector<double> rates;
  for (int run = 0; run < 5; ++run) {
    const int n = 60;
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < n; ++i) {
      Annotated s = augment_sample(i % 8, 8, load, 640, o, {}, rng);
      ASSERT_EQ(s.image.size(), cv::Size(640, 640));
      boxes += s.boxes.size();
    }
    rates.push_back(n / std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(rates.begin(), rates.end());
  std::printf(
      "augment_sample imgsz 640 mosaic 1.0, 640x384 inputs, 1 thread: median %.1f images/s "
      "(min %.1f, max %.1f over 5 runs of 60)\n",
      rates[2], rates[0], rates[4]);
  EXPECT_GT(boxes, 0u);
  cv::setNumThreads(prev_threads);
}

}  // namespace
}  // namespace yq::data
