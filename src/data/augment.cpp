#include "data/augment.h"

#include <algorithm>
#include <cmath>
#include <opencv2/imgproc.hpp>

#include "core/error.h"

namespace yq::data {
namespace {

constexpr double kPi = 3.14159265358979323846;

// Box filter of warp_annotated (the reference's box_candidates thresholds).
constexpr float kMinSidePx = 2.f;      // kept boxes are wider and taller than this
constexpr float kMinAreaRatio = 0.1f;  // clipped area / unclipped area must exceed this
constexpr float kMaxAspectRatio = 100.f;

void check_image(const cv::Mat& img, const char* where) {
  YQ_CHECK(!img.empty(), "{}: empty image", where);
  YQ_CHECK(img.type() == CV_8UC3, "{}: expected a BGR uint8 image (CV_8UC3), got type {} with {} channels",
           where, img.type(), img.channels());
}

float clampf(float v, float lo, float hi) {
  return std::min(std::max(v, lo), hi);
}

// Resized to long side imgsz; shares pixels with `a` when no resize is needed.
Annotated resized_or_shared(const Annotated& a, int imgsz) {
  check_image(a.image, "resize_long_side");
  YQ_CHECK(imgsz > 0, "resize_long_side: imgsz must be positive, got {}", imgsz);
  const int w = a.image.cols, h = a.image.rows;
  const double r = double(imgsz) / std::max(w, h);
  const int nw = std::max(1, int(std::lround(w * r))), nh = std::max(1, int(std::lround(h * r)));
  if (nw == w && nh == h) return a;
  Annotated out;
  cv::resize(a.image, out.image, cv::Size(nw, nh), 0, 0, cv::INTER_LINEAR);
  // cv::resize maps continuous edge coordinates by the exact per-axis factor of the rounded size.
  const float fx = float(nw) / w, fy = float(nh) / h;
  out.boxes = a.boxes;
  for (auto& b : out.boxes) {
    b.x1 *= fx;
    b.x2 *= fx;
    b.y1 *= fy;
    b.y2 *= fy;
  }
  return out;
}

cv::Matx33d translation(double tx, double ty) {
  return {1, 0, tx, 0, 1, ty, 0, 0, 1};
}

bool is_perspective(const cv::Matx33d& M) {
  return M(2, 0) != 0 || M(2, 1) != 0 || M(2, 2) != 1;
}

}  // namespace

cv::Mat letterbox(const cv::Mat& img, int out_w, int out_h, LetterboxInfo* info, bool scaleup, bool center) {
  check_image(img, "letterbox");
  YQ_CHECK(out_w > 0 && out_h > 0, "letterbox: output size must be positive, got {}x{}", out_w, out_h);
  const int w = img.cols, h = img.rows;
  double r = std::min(double(out_w) / w, double(out_h) / h);
  if (!scaleup) r = std::min(r, 1.0);
  const int nw = std::clamp(int(std::lround(w * r)), 1, out_w);
  const int nh = std::clamp(int(std::lround(h * r)), 1, out_h);
  const int left = center ? (out_w - nw) / 2 : 0;
  const int top = center ? (out_h - nh) / 2 : 0;

  cv::Mat out(out_h, out_w, CV_8UC3, cv::Scalar::all(kPadGrey));
  cv::Mat roi = out(cv::Rect(left, top, nw, nh));
  if (nw == w && nh == h) {
    img.copyTo(roi);
  } else {
    cv::resize(img, roi, roi.size(), 0, 0, cv::INTER_LINEAR);  // writes into the ROI (same size and type)
  }
  if (info) *info = LetterboxInfo{r, double(left), double(top), out_w, out_h};
  return out;
}

void letterbox_boxes(std::vector<BoxPx>& boxes, const LetterboxInfo& info) {
  const float r = float(info.ratio), px = float(info.pad_x), py = float(info.pad_y);
  for (auto& b : boxes) {
    b.x1 = b.x1 * r + px;
    b.x2 = b.x2 * r + px;
    b.y1 = b.y1 * r + py;
    b.y2 = b.y2 * r + py;
  }
}

void unletterbox_boxes(std::vector<BoxPx>& boxes, const LetterboxInfo& info, int orig_w, int orig_h) {
  YQ_CHECK(info.ratio > 0, "unletterbox_boxes: ratio must be positive, got {}", info.ratio);
  const double r = info.ratio;
  const float W = float(orig_w), H = float(orig_h);
  for (auto& b : boxes) {
    b.x1 = clampf(float((b.x1 - info.pad_x) / r), 0.f, W);
    b.x2 = clampf(float((b.x2 - info.pad_x) / r), 0.f, W);
    b.y1 = clampf(float((b.y1 - info.pad_y) / r), 0.f, H);
    b.y2 = clampf(float((b.y2 - info.pad_y) / r), 0.f, H);
  }
}

Annotated resize_long_side(const Annotated& a, int imgsz) {
  Annotated out = resized_or_shared(a, imgsz);
  if (out.image.data == a.image.data) out.image = a.image.clone();
  return out;
}

Annotated mosaic4(const std::array<Annotated, 4>& parts, int imgsz, Rng& rng) {
  YQ_CHECK(imgsz > 0, "mosaic4: imgsz must be positive, got {}", imgsz);
  for (const auto& p : parts) check_image(p.image, "mosaic4");
  const int S = 2 * imgsz;
  const int xc = int(rng.randint(imgsz / 2, (3 * imgsz) / 2));
  const int yc = int(rng.randint(imgsz / 2, (3 * imgsz) / 2));

  Annotated out;
  out.image = cv::Mat(S, S, CV_8UC3, cv::Scalar::all(kPadGrey));
  for (int i = 0; i < 4; ++i) {
    const cv::Mat& img = parts[i].image;
    const int w = img.cols, h = img.rows;
    // Canvas rectangle [xa1, xa2) x [ya1, ya2) and the part's matching rectangle starting at (xb1, yb1).
    int xa1, ya1, xa2, ya2, xb1, yb1;
    if (i == 0) {  // top-left: bottom-right corner at the centre
      xa1 = std::max(xc - w, 0), ya1 = std::max(yc - h, 0), xa2 = xc, ya2 = yc;
      xb1 = w - (xa2 - xa1), yb1 = h - (ya2 - ya1);
    } else if (i == 1) {  // top-right: bottom-left corner at the centre
      xa1 = xc, ya1 = std::max(yc - h, 0), xa2 = std::min(xc + w, S), ya2 = yc;
      xb1 = 0, yb1 = h - (ya2 - ya1);
    } else if (i == 2) {  // bottom-left: top-right corner at the centre
      xa1 = std::max(xc - w, 0), ya1 = yc, xa2 = xc, ya2 = std::min(yc + h, S);
      xb1 = w - (xa2 - xa1), yb1 = 0;
    } else {  // bottom-right: top-left corner at the centre
      xa1 = xc, ya1 = yc, xa2 = std::min(xc + w, S), ya2 = std::min(yc + h, S);
      xb1 = 0, yb1 = 0;
    }
    const int cw = xa2 - xa1, ch = ya2 - ya1;
    if (cw > 0 && ch > 0) img(cv::Rect(xb1, yb1, cw, ch)).copyTo(out.image(cv::Rect(xa1, ya1, cw, ch)));
    const float dx = float(xa1 - xb1), dy = float(ya1 - yb1);
    for (BoxPx b : parts[i].boxes) {
      // The quadrants do not overlap and a part is only cropped by the canvas, so clipping to the canvas
      // is exact.
      b.x1 = clampf(b.x1 + dx, 0.f, float(S));
      b.x2 = clampf(b.x2 + dx, 0.f, float(S));
      b.y1 = clampf(b.y1 + dy, 0.f, float(S));
      b.y2 = clampf(b.y2 + dy, 0.f, float(S));
      if (b.x2 > b.x1 && b.y2 > b.y1) out.boxes.push_back(b);
    }
  }
  return out;
}

cv::Matx33d random_affine_matrix(const AugmentOptions& o, int in_w, int in_h, int out_w, int out_h,
                                 Rng& rng) {
  // Every draw is made whatever the options, so the stream is the same shape for any setting.
  const double px = rng.uniform(-o.perspective, o.perspective);
  const double py = rng.uniform(-o.perspective, o.perspective);
  const double angle = rng.uniform(-o.degrees, o.degrees) * kPi / 180;
  const double s = rng.uniform(1 - o.scale, 1 + o.scale);
  const double shx = std::tan(rng.uniform(-o.shear, o.shear) * kPi / 180);
  const double shy = std::tan(rng.uniform(-o.shear, o.shear) * kPi / 180);
  const double tx = rng.uniform(0.5 - o.translate, 0.5 + o.translate) * out_w;
  const double ty = rng.uniform(0.5 - o.translate, 0.5 + o.translate) * out_h;

  const cv::Matx33d C = translation(-in_w / 2.0, -in_h / 2.0);
  const cv::Matx33d P(1, 0, 0, 0, 1, 0, px, py, 1);
  const double a = s * std::cos(angle), b = s * std::sin(angle);
  const cv::Matx33d R(a, b, 0, -b, a, 0, 0, 0, 1);
  const cv::Matx33d Sh(1, shx, 0, shy, 1, 0, 0, 0, 1);
  const cv::Matx33d T = translation(tx, ty);
  return T * Sh * R * P * C;
}

void warp_annotated(Annotated& a, const cv::Matx33d& M, int out_w, int out_h) {
  check_image(a.image, "warp_annotated");
  YQ_CHECK(out_w > 0 && out_h > 0, "warp_annotated: output size must be positive, got {}x{}", out_w, out_h);
  const bool persp = is_perspective(M);

  // OpenCV maps pixel indices (pixel centres at integers); M maps edge coordinates (centres at i + 0.5).
  const cv::Matx33d Mcv = translation(-0.5, -0.5) * M * translation(0.5, 0.5);
  cv::Mat out;
  const cv::Size dsize(out_w, out_h);
  const cv::Scalar grey = cv::Scalar::all(kPadGrey);
  if (persp) {
    cv::warpPerspective(a.image, out, cv::Mat(Mcv), dsize, cv::INTER_LINEAR, cv::BORDER_CONSTANT, grey);
  } else if (M == cv::Matx33d::eye() && dsize == a.image.size()) {
    out = a.image.clone();
  } else {
    const cv::Matx23d A(Mcv(0, 0), Mcv(0, 1), Mcv(0, 2), Mcv(1, 0), Mcv(1, 1), Mcv(1, 2));
    cv::warpAffine(a.image, out, cv::Mat(A), dsize, cv::INTER_LINEAR, cv::BORDER_CONSTANT, grey);
  }
  a.image = out;

  std::vector<BoxPx> kept;
  kept.reserve(a.boxes.size());
  const float W = float(out_w), H = float(out_h);
  for (const BoxPx& b : a.boxes) {
    const double xs[4] = {b.x1, b.x2, b.x1, b.x2}, ys[4] = {b.y1, b.y1, b.y2, b.y2};
    double x1 = HUGE_VAL, y1 = HUGE_VAL, x2 = -HUGE_VAL, y2 = -HUGE_VAL;
    bool behind = false;
    for (int k = 0; k < 4; ++k) {
      double x = M(0, 0) * xs[k] + M(0, 1) * ys[k] + M(0, 2);
      double y = M(1, 0) * xs[k] + M(1, 1) * ys[k] + M(1, 2);
      if (persp) {
        const double z = M(2, 0) * xs[k] + M(2, 1) * ys[k] + M(2, 2);
        if (z <= 1e-12) {
          behind = true;
          break;
        }
        x /= z;
        y /= z;
      }
      x1 = std::min(x1, x), x2 = std::max(x2, x), y1 = std::min(y1, y), y2 = std::max(y2, y);
    }
    if (behind) continue;
    const double full_area = (x2 - x1) * (y2 - y1);
    BoxPx c = b;
    c.x1 = clampf(float(x1), 0.f, W);
    c.x2 = clampf(float(x2), 0.f, W);
    c.y1 = clampf(float(y1), 0.f, H);
    c.y2 = clampf(float(y2), 0.f, H);
    const float w = c.width(), h = c.height();
    if (!(w > kMinSidePx && h > kMinSidePx)) continue;
    if (!(double(w) * h > kMinAreaRatio * full_area)) continue;
    if (std::max(w / h, h / w) >= kMaxAspectRatio) continue;
    kept.push_back(c);
  }
  a.boxes = std::move(kept);
}

void random_affine(Annotated& a, const AugmentOptions& o, int out_w, int out_h, Rng& rng) {
  check_image(a.image, "random_affine");
  const cv::Matx33d M = random_affine_matrix(o, a.image.cols, a.image.rows, out_w, out_h, rng);
  warp_annotated(a, M, out_w, out_h);
}

void augment_hsv(cv::Mat& bgr, double h_gain, double s_gain, double v_gain, Rng& rng) {
  if (h_gain == 0 && s_gain == 0 && v_gain == 0) return;
  check_image(bgr, "augment_hsv");
  const double rh = rng.uniform(-1, 1) * h_gain + 1;
  const double rs = rng.uniform(-1, 1) * s_gain + 1;
  const double rv = rng.uniform(-1, 1) * v_gain + 1;
  cv::Mat lut(1, 256, CV_8UC3);
  auto* t = lut.ptr<cv::Vec3b>();
  for (int x = 0; x < 256; ++x) {
    double hue = std::fmod(x * rh, 180.0);
    if (hue < 0) hue += 180;
    t[x][0] = cv::saturate_cast<uchar>(int(hue));  // truncation, as the reference's astype(uint8)
    t[x][1] = cv::saturate_cast<uchar>(int(std::clamp(x * rs, 0.0, 255.0)));
    t[x][2] = cv::saturate_cast<uchar>(int(std::clamp(x * rv, 0.0, 255.0)));
  }
  cv::Mat hsv;
  cv::cvtColor(bgr, hsv, cv::COLOR_BGR2HSV);  // 8-bit: H in [0, 180)
  cv::LUT(hsv, lut, hsv);
  cv::cvtColor(hsv, bgr, cv::COLOR_HSV2BGR);  // same size and type: writes into bgr's buffer
}

bool flip_lr(Annotated& a, const std::vector<int>& flip_map) {
  check_image(a.image, "flip_lr");
  if (!flip_map.empty()) {
    for (const auto& b : a.boxes) {
      YQ_CHECK_USAGE(b.cls >= 0 && b.cls < int(flip_map.size()),
                     "flip map has {} entries but a box has class {} (the map needs one entry per class)",
                     flip_map.size(), b.cls);
      if (flip_map[b.cls] < 0) return false;
    }
  }
  cv::flip(a.image, a.image, 1);
  const float W = float(a.image.cols);
  for (auto& b : a.boxes) {
    const float x1 = W - b.x2, x2 = W - b.x1;
    b.x1 = x1;
    b.x2 = x2;
    if (!flip_map.empty()) b.cls = flip_map[b.cls];
  }
  return true;
}

void flip_ud(Annotated& a) {
  check_image(a.image, "flip_ud");
  cv::flip(a.image, a.image, 0);
  const float H = float(a.image.rows);
  for (auto& b : a.boxes) {
    const float y1 = H - b.y2, y2 = H - b.y1;
    b.y1 = y1;
    b.y2 = y2;
  }
}

Annotated augment_sample(int index, int n, const std::function<Annotated(int)>& load, int imgsz,
                         const AugmentOptions& o, const std::vector<int>& flip_map, Rng& rng) {
  YQ_CHECK(n > 0 && index >= 0 && index < n, "augment_sample: index {} outside [0, {})", index, n);
  YQ_CHECK(imgsz > 0, "augment_sample: imgsz must be positive, got {}", imgsz);
  Annotated a;
  if (rng.chance(o.mosaic)) {
    std::array<int, 4> idx{index, 0, 0, 0};
    for (int k = 1; k < 4; ++k) idx[k] = int(rng.randint(n));
    std::array<Annotated, 4> parts;
    // The parts may share pixels with what load() returned: mosaic4 only reads them.
    for (int k = 0; k < 4; ++k) parts[k] = resized_or_shared(load(idx[k]), imgsz);
    a = mosaic4(parts, imgsz, rng);
  } else {
    Annotated r = resized_or_shared(load(index), imgsz);
    LetterboxInfo info;
    a.image = letterbox(r.image, imgsz, imgsz, &info);  // a new image: never the loader's pixels
    a.boxes = std::move(r.boxes);
    letterbox_boxes(a.boxes, info);
  }
  random_affine(a, o, imgsz, imgsz, rng);  // crops the 2*imgsz mosaic canvas around its centre
  augment_hsv(a.image, o.hsv_h, o.hsv_s, o.hsv_v, rng);
  if (rng.chance(o.flipud)) flip_ud(a);
  if (rng.chance(o.fliplr)) flip_lr(a, flip_map);
  return a;
}

}  // namespace yq::data
