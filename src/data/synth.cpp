#include "data/synth.h"

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cmath>
#include <exception>
#include <mutex>
#include <thread>

#include "core/error.h"
#include "core/log.h"
#include "core/rng.h"
#include "data/signs.h"

namespace yq::data {
namespace {

const char* const kSplitDirs[3] = {"train", "valid", "test"};
const char* const kMarker = "# written by yoloqat synth";

// --- class sets ---------------------------------------------------------------------------------

struct ClassSet {
  std::vector<std::string> names;
  std::vector<std::vector<std::string>> designs;  // per class: QCVN codes drawn for it
  std::vector<std::string> extra;                 // real signs drawn unlabelled
  std::vector<int> flip;
};

ClassSet zalo7() {
  ClassSet s;
  // The 7 Zalo AI 2020 groups. Each group is closed under mirroring (P.123a/b, W.201a/b, R.302a/b
  // are both in their group; a mirrored speed limit or roundabout is still in its group), so the
  // flip map is the identity. Rectangular indication signs are not among the groups: they appear
  // unlabelled, as in the Zalo data.
  s.names = {"no_entry", "no_parking_stopping", "no_turning", "speed_limit", "other_prohibition", "warning",
             "mandatory"};
  s.designs = {{"P.102"},
               {"P.130", "P.131a"},
               {"P.123a", "P.123b", "P.124a"},
               {"P.127-30", "P.127-40", "P.127-50", "P.127-60", "P.127-70", "P.127-80", "P.127-100"},
               {"P.103a", "P.104", "P.106a", "P.112"},
               {"W.201a", "W.201b", "W.207a", "W.224", "W.225", "W.233", "W.245a"},
               {"R.301a", "R.302a", "R.302b", "R.303"}};
  s.extra = {"R.407a", "I.423b"};
  for (int i = 0; i < 7; ++i) s.flip.push_back(i);
  return s;
}

ClassSet qcvn() {
  ClassSet s;
  for (const char* code :
       {"P.102",    "P.103a",   "P.104",    "P.106a", "P.112",  "P.123a", "P.123b", "P.124a", "P.127-40",
        "P.127-50", "P.127-60", "P.127-80", "P.130",  "P.131a", "W.201a", "W.201b", "W.207a", "W.224",
        "W.225",    "W.233",    "W.245a",   "R.301a", "R.302a", "R.302b", "R.303",  "R.407a", "I.423b"}) {
    s.names.push_back(code);
    s.designs.push_back({code});
  }
  const auto& cat = sign_catalogue();
  for (const auto& name : s.names) {
    const SignDesign& d = cat[size_t(find_sign(name))];
    int f = -1;
    if (d.mirror_kind == SignMirror::Self) {
      f = int(&name - s.names.data());
    } else if (d.mirror_kind == SignMirror::Partner) {
      auto it = std::find(s.names.begin(), s.names.end(), d.mirror);
      f = it == s.names.end() ? -1 : int(it - s.names.begin());
    }
    s.flip.push_back(f);
  }
  return s;
}

ClassSet class_set(const std::string& set) {
  if (set == "zalo7") return zalo7();
  if (set == "qcvn") return qcvn();
  throw UsageError(fmt::format("unknown class set '{}' (known: zalo7, qcvn)", set));
}

std::vector<int> design_indices(const std::vector<std::string>& codes) {
  std::vector<int> v;
  for (const auto& c : codes) {
    int i = find_sign(c);
    YQ_ASSERT(i >= 0);
    v.push_back(i);
  }
  return v;
}

// --- scene helpers --------------------------------------------------------------------------------

using Quad = std::vector<cv::Point2d>;

void fill(cv::Mat& img, const Quad& q, const cv::Scalar& col) {
  std::vector<cv::Point> v;
  for (const auto& p : q) v.emplace_back(int(std::lround(p.x * 16)), int(std::lround(p.y * 16)));
  cv::fillPoly(img, std::vector<std::vector<cv::Point>>{v}, col, cv::LINE_AA, 4);
}

cv::Point sp(double x, double y) {
  return {int(std::lround(x * 16)), int(std::lround(y * 16))};
}

void disc(cv::Mat& img, double x, double y, double r, const cv::Scalar& col) {
  cv::circle(img, sp(x, y), std::max(1, int(std::lround(r * 16))), col, cv::FILLED, cv::LINE_AA, 4);
}

void rect(cv::Mat& img, double x1, double y1, double x2, double y2, const cv::Scalar& col) {
  fill(img, {{x1, y1}, {x2, y1}, {x2, y2}, {x1, y2}}, col);
}

cv::Scalar rgb_jitter(Rng& rng, cv::Scalar c, double a) {
  for (int i = 0; i < 3; ++i) c[i] = std::clamp(c[i] + rng.uniform(-a, a), 0.0, 255.0);
  return c;
}

cv::Scalar scaled(cv::Scalar c, double f) {
  for (int i = 0; i < 3; ++i) c[i] = std::clamp(c[i] * f, 0.0, 255.0);
  return c;
}

// A street in one-point perspective: vanishing point (vx, hz); the road's half width at the image
// bottom is R pixels, i.e. 5 metres. At depth t (0 = horizon, 1 = bottom row) one metre is R*t/5 px.
struct Street {
  double W, H, hz, vx, R;
  double y_at(double t) const { return hz + t * (H - hz); }
  double x_at(double t, double f) const { return vx + f * R * t; }  // f = -1 left road edge, +1 right
  double metre(double t) const { return R * t / 5; }
};

void draw_sky(cv::Mat& img, const Street& st, Rng& rng) {
  cv::Scalar top, bottom;
  const int kind = int(rng.randint(3));
  if (kind == 0) {  // clear
    top = rgb_jitter(rng, {210, 150, 95}, 20);
    bottom = rgb_jitter(rng, {235, 220, 205}, 15);
  } else if (kind == 1) {  // overcast
    double g = rng.uniform(170, 220);
    top = rgb_jitter(rng, {g, g, g - 5}, 8);
    bottom = rgb_jitter(rng, {g + 15, g + 15, g + 12}, 8);
  } else {  // hazy, warm
    top = rgb_jitter(rng, {200, 185, 170}, 15);
    bottom = rgb_jitter(rng, {195, 215, 235}, 15);
  }
  const int hz = std::max(1, int(st.hz));
  for (int y = 0; y < std::min(hz + 1, img.rows); ++y) {
    double t = double(y) / hz;
    img.row(y).setTo(top * (1 - t) + bottom * t);
  }
  if (kind == 0)
    for (int i = 0, n = int(rng.randint(0, 4)); i < n; ++i) {
      double cx = rng.uniform(0, st.W), cy = rng.uniform(0, st.hz * 0.7), r = rng.uniform(0.03, 0.08) * st.W;
      cv::Scalar c = rgb_jitter(rng, {240, 240, 238}, 8);
      for (int k = 0; k < 4; ++k)
        cv::ellipse(img, sp(cx + rng.uniform(-r, r), cy + rng.uniform(-r, r) * 0.3),
                    cv::Size(int(r * 16), int(r * 0.4 * 16)), 0, 0, 360, c, cv::FILLED, cv::LINE_AA, 4);
    }
}

// Shophouse facades along one side (side = -1 left, +1 right), with windows and shop boards.
void draw_facades(cv::Mat& img, const Street& st, double side, double kerb, Rng& rng) {
  static const cv::Scalar kColours[] = {{120, 200, 235}, {200, 200, 195}, {170, 190, 230}, {230, 220, 200},
                                        {150, 170, 160}, {190, 170, 230}, {210, 190, 150}, {110, 140, 190}};
  static const cv::Scalar kBoards[] = {
      {40, 40, 200}, {160, 70, 20}, {30, 190, 240}, {60, 140, 40}, {230, 230, 230}};
  const double edge = side < 0 ? 0 : st.W;
  const double span = std::abs(edge - st.vx);
  if (span < 4) return;
  const double top0 = rng.uniform(-0.6, 0.3) * st.hz;  // facade top at the image edge
  // Kerb line: x = vx + side * kerb * R * t  ->  t(x); the facade base follows it.
  auto base_y = [&](double x) { return st.y_at(std::abs(x - st.vx) / (kerb * st.R)); };
  double x = edge;
  while (std::abs(x - st.vx) > 3) {
    double d = std::abs(x - st.vx);
    double w = std::max(2.0, d * rng.uniform(0.12, 0.3));
    double x2 = x - side * std::min(w, d - 1);
    double h = rng.uniform(0.6, 1.3);
    auto top_y = [&](double xx) { return st.hz - (st.hz - top0) * h * std::abs(xx - st.vx) / span; };
    Quad q{{x, top_y(x)}, {x2, top_y(x2)}, {x2, base_y(x2)}, {x, base_y(x)}};
    cv::Scalar col = rgb_jitter(rng, kColours[rng.randint(8)], 18);
    fill(img, q, col);
    // Bilinear point in the facade: a along it (0 at x, 1 at x2), b up from the base (0) to the top (1).
    auto at = [&](double a, double b) {
      cv::Point2d lo = q[3] + (q[2] - q[3]) * a, hi = q[0] + (q[1] - q[0]) * a;
      return lo + (hi - lo) * b;
    };
    if (d > 12) {
      cv::Scalar win = rng.chance(0.5) ? scaled(col, 0.45) : rgb_jitter(rng, {120, 100, 80}, 20);
      int cols = int(rng.randint(1, 3)), rows = int(rng.randint(2, 5));
      for (int r = 0; r < rows; ++r)
        for (int c = 0; c < cols; ++c) {
          double a0 = (c + 0.25) / cols, a1 = (c + 0.75) / cols;
          double b0 = 0.3 + 0.65 * (r + 0.2) / rows, b1 = 0.3 + 0.65 * (r + 0.75) / rows;
          fill(img, {at(a0, b0), at(a1, b0), at(a1, b1), at(a0, b1)}, win);
        }
      if (rng.chance(0.7))  // shop board over the ground floor
        fill(img, {at(0.02, 0.18), at(0.98, 0.18), at(0.98, 0.28), at(0.02, 0.28)},
             rgb_jitter(rng, kBoards[rng.randint(5)], 25));
      fill(img, {at(0.1, 0.0), at(0.9, 0.0), at(0.9, 0.16), at(0.1, 0.16)}, scaled(col, 0.35));  // shop front
    }
    x = x2;
  }
}

void draw_tree(cv::Mat& img, const Street& st, double t, double x, Rng& rng) {
  const double m = st.metre(t), y = st.y_at(t);
  const double h = rng.uniform(5, 9) * m;
  cv::line(img, sp(x, y), sp(x, y - h * 0.6), rgb_jitter(rng, {40, 60, 80}, 15), std::max(1, int(0.35 * m)),
           cv::LINE_AA, 4);
  cv::Scalar g = rgb_jitter(rng, {50, 120, 60}, 25);
  for (int i = 0, n = int(rng.randint(4, 7)); i < n; ++i)
    disc(img, x + rng.uniform(-1.8, 1.8) * m, y - h * rng.uniform(0.6, 1.0), rng.uniform(1.2, 2.2) * m,
         scaled(g, rng.uniform(0.7, 1.25)));
}

void draw_vehicle(cv::Mat& img, const Street& st, double t, double f, Rng& rng) {
  static const cv::Scalar kPaint[] = {{235, 235, 235}, {180, 180, 175}, {30, 30, 30},   {40, 40, 170},
                                      {140, 80, 30},   {60, 60, 60},    {200, 200, 210}};
  const double m = st.metre(t), cx = st.x_at(t, f), yb = st.y_at(t);
  const double r = rng.uniform();
  const double shadow = r < 0.6 ? 0.5 : r > 0.9 ? 1.4 : 1.05;  // half width in metres
  cv::ellipse(img, sp(cx, yb), cv::Size(int(m * shadow * 16), int(m * 0.2 * 16)), 0, 0, 360,
              cv::Scalar(30, 30, 30), cv::FILLED, cv::LINE_AA, 4);
  if (r < 0.6) {  // motorbike and rider, seen from behind
    const double w = 0.7 * m;
    rect(img, cx - 0.08 * m, yb - 0.6 * m, cx + 0.08 * m, yb, cv::Scalar(20, 20, 20));  // wheel
    rect(img, cx - w / 2, yb - 1.0 * m, cx + w / 2, yb - 0.55 * m, rgb_jitter(rng, {40, 40, 45}, 15));
    rect(img, cx - 0.15 * m, yb - 0.85 * m, cx - 0.05 * m, yb - 0.75 * m, cv::Scalar(40, 40, 220));
    cv::Scalar shirt = rgb_jitter(rng, kPaint[rng.randint(7)], 40);
    fill(img,
         {{cx - w * 0.4, yb - 1.0 * m},
          {cx + w * 0.4, yb - 1.0 * m},
          {cx + w * 0.3, yb - 1.65 * m},
          {cx - w * 0.3, yb - 1.65 * m}},
         shirt);
    disc(img, cx, yb - 1.8 * m, 0.17 * m, rgb_jitter(rng, kPaint[rng.randint(7)], 40));  // helmet
  } else {  // car or bus, seen from behind
    const bool bus = r > 0.9;
    const double w = (bus ? 2.5 : 1.8) * m, h = (bus ? 3.0 : 1.45) * m;
    cv::Scalar paint = rgb_jitter(rng, kPaint[rng.randint(7)], 20);
    rect(img, cx - w / 2 + 0.1 * m, yb - 0.3 * m, cx - w / 2 + 0.4 * m, yb, cv::Scalar(20, 20, 20));
    rect(img, cx + w / 2 - 0.4 * m, yb - 0.3 * m, cx + w / 2 - 0.1 * m, yb, cv::Scalar(20, 20, 20));
    rect(img, cx - w / 2, yb - h, cx + w / 2, yb - 0.2 * m, paint);
    double g0 = bus ? 0.15 : 0.1, g1 = bus ? 0.55 : 0.45;  // rear window, as a fraction of the height
    fill(img,
         {{cx - w * 0.38, yb - h + g0 * h},
          {cx + w * 0.38, yb - h + g0 * h},
          {cx + w * 0.45, yb - h + g1 * h},
          {cx - w * 0.45, yb - h + g1 * h}},
         rgb_jitter(rng, {70, 60, 50}, 15));
    for (double s : {-1.0, 1.0})
      rect(img, cx + s * w * 0.45 - 0.12 * m, yb - 0.75 * m, cx + s * w * 0.45 + 0.12 * m, yb - 0.55 * m,
           cv::Scalar(40, 30, 200));
    rect(img, cx - 0.25 * m, yb - 0.55 * m, cx + 0.25 * m, yb - 0.4 * m, cv::Scalar(230, 230, 230));  // plate
  }
}

void draw_street(cv::Mat& img, Street& st, Rng& rng) {
  st.hz = st.H * rng.uniform(0.3, 0.48);
  st.vx = st.W * rng.uniform(0.35, 0.65);
  st.R = st.W * rng.uniform(0.45, 0.8);
  draw_sky(img, st, rng);
  const double kerb = rng.uniform(1.25, 1.6);  // sidewalk outer line, in road half widths
  cv::Scalar ground = rgb_jitter(rng, {90, 130, 120}, 25);
  rect(img, 0, st.hz, st.W, st.H + 1, ground);
  const double far = 0.004;  // road half width at the horizon (in R), avoids a degenerate polygon
  cv::Scalar walk =
      rgb_jitter(rng, rng.chance(0.5) ? cv::Scalar(150, 155, 160) : cv::Scalar(110, 120, 170), 20);
  fill(img,
       {{st.vx - far * st.R, st.hz},
        {st.vx + far * st.R, st.hz},
        {st.x_at(1, kerb), st.H},
        {st.x_at(1, -kerb), st.H}},
       walk);
  cv::Scalar asphalt = rgb_jitter(rng, {100, 100, 102}, 15);
  fill(img,
       {{st.vx - far * st.R, st.hz},
        {st.vx + far * st.R, st.hz},
        {st.x_at(1, 1), st.H},
        {st.x_at(1, -1), st.H}},
       asphalt);
  // Asphalt texture: patches of repair and wear, flattened by the perspective.
  for (int i = 0, n = int(rng.randint(2, 8)); i < n; ++i) {
    double t = rng.uniform(0.1, 1.0), m = st.metre(t), r = rng.uniform(0.5, 2.5) * m;
    cv::ellipse(img, sp(st.x_at(t, rng.uniform(-0.9, 0.9)), st.y_at(t)),
                cv::Size(int(r * 16), int(r * 0.25 * 16)), 0, 0, 360, scaled(asphalt, rng.uniform(0.8, 1.12)),
                cv::FILLED, cv::LINE_AA, 4);
  }
  // Lane lines: dashes equally spaced in depth (z = 1/t), solid edge lines.
  const int lanes = int(rng.randint(2, 4));
  const double period = rng.uniform(0.8, 1.6), phase = rng.uniform(0, period);
  auto stripe = [&](double f0, double f1, double t0, double t1, const cv::Scalar& c) {
    fill(img,
         {{st.x_at(t0, f0), st.y_at(t0)},
          {st.x_at(t0, f1), st.y_at(t0)},
          {st.x_at(t1, f1), st.y_at(t1)},
          {st.x_at(t1, f0), st.y_at(t1)}},
         c);
  };
  const double lw = 0.012;  // line width in road half widths
  cv::Scalar paint = rgb_jitter(rng, {215, 220, 220}, 15);
  for (int j = 1; j < lanes; ++j) {
    double f = -1 + 2.0 * j / lanes;
    if (lanes % 2 == 0 && j == lanes / 2) {
      stripe(f - 1.5 * lw, f - 0.5 * lw, 0.01, 1.05, cv::Scalar(40, 180, 230));
      stripe(f + 0.5 * lw, f + 1.5 * lw, 0.01, 1.05, cv::Scalar(40, 180, 230));
      continue;
    }
    for (double z = 1 + phase; z < 60; z += period)
      stripe(f - lw, f + lw, 1 / (z + period * 0.45), 1 / z, paint);
    stripe(f - lw, f + lw, 1 / (1 + phase), 1.05, paint);
  }
  for (double f : {-0.97, 0.97}) stripe(f - lw, f + lw, 0.01, 1.05, paint);
  if (rng.chance(0.2)) {  // zebra crossing
    double t0 = rng.uniform(0.3, 0.75), t1 = t0 * 1.12;
    for (double f = -0.9; f < 0.9; f += 0.14) stripe(f, f + 0.07, t0, t1, paint);
  }
  // Sides: facades, or open ground with trees.
  for (double side : {-1.0, 1.0}) {
    if (rng.chance(0.75)) draw_facades(img, st, side, kerb, rng);
    for (int i = 0, n = int(rng.randint(0, 4)); i < n; ++i) {
      double t = rng.uniform(0.1, 1.0);
      draw_tree(img, st, t, st.x_at(t, side * rng.uniform(1.05, kerb)), rng);
    }
  }
  // Electric poles and wires.
  std::vector<cv::Point2d> tops;
  for (int i = 0, n = int(rng.randint(0, 3)); i < n; ++i) {
    double t = rng.uniform(0.15, 1.0), side = rng.chance(0.5) ? -1 : 1;
    double x = st.x_at(t, side * rng.uniform(1.05, kerb)), y = st.y_at(t), m = st.metre(t);
    cv::line(img, sp(x, y), sp(x, y - 9 * m), rgb_jitter(rng, {160, 165, 165}, 15), std::max(1, int(0.3 * m)),
             cv::LINE_AA, 4);
    tops.emplace_back(x, y - 8.5 * m);
  }
  for (size_t i = 0; i < tops.size(); ++i) {
    cv::Point2d a = tops[i], b = i + 1 < tops.size() ? tops[i + 1] : cv::Point2d(st.vx, st.hz * 0.9);
    cv::line(img, sp(a.x, a.y), sp(b.x, b.y), cv::Scalar(40, 40, 40), 1, cv::LINE_AA, 4);
  }
  // Traffic, far to near.
  std::vector<std::pair<double, double>> cars;
  for (int i = 0, n = int(rng.randint(0, 6)); i < n; ++i)
    cars.emplace_back(rng.uniform(0.12, 0.9), rng.uniform(-0.85, 0.85));
  std::sort(cars.begin(), cars.end());
  for (const auto& c : cars) draw_vehicle(img, st, c.first, c.second, rng);
}

// A random crop of a photo, resized to the image size and maybe mirrored.
cv::Mat photo_scene(const fs::path& file, int W, int H, Rng& rng) {
  cv::Mat photo = cv::imread(file.string(), cv::IMREAD_COLOR);
  YQ_CHECK(!photo.empty(), "cannot decode background photo {}", file.string());
  double aspect = double(W) / H;
  double cw = std::min<double>(photo.cols, photo.rows * aspect), ch = cw / aspect;
  double s = rng.uniform(0.5, 1.0);
  cw *= s, ch *= s;
  int x = int(rng.uniform(0, photo.cols - cw)), y = int(rng.uniform(0, photo.rows - ch));
  cv::Rect r(x, y, std::max(1, int(cw)), std::max(1, int(ch)));
  r &= cv::Rect(0, 0, photo.cols, photo.rows);
  cv::Mat out;
  cv::resize(photo(r), out, {W, H}, 0, 0, cv::INTER_AREA);
  if (rng.chance(0.5)) cv::flip(out, out, 1);
  return out;
}

// --- signs ----------------------------------------------------------------------------------------

// A sprite warped into the image: its region, the warped BGRA pixels and the visible box.
struct Warped {
  cv::Rect roi;
  cv::Mat bgra;
  BoxPx box;
  bool ok = false;
};

// Places `sprite` centred at (cx, cy) with a yaw (turned away from the camera: narrower, the far
// edge shorter) and a roll, both in radians. The box is the extent of coverage >= 96/255.
Warped warp_sprite(const cv::Mat& sprite, double cx, double cy, double yaw, double roll, cv::Size image) {
  const double w = sprite.cols, h = sprite.rows;
  const double hw = w / 2 * std::cos(yaw), k = 0.18 * std::sin(yaw);
  cv::Point2d local[4] = {
      {-hw, -h / 2 * (1 + k)}, {hw, -h / 2 * (1 - k)}, {hw, h / 2 * (1 - k)}, {-hw, h / 2 * (1 + k)}};
  cv::Point2f src[4] = {{0, 0}, {float(w), 0}, {float(w), float(h)}, {0, float(h)}}, dst[4];
  double x0 = 1e9, y0 = 1e9, x1 = -1e9, y1 = -1e9;
  for (int i = 0; i < 4; ++i) {
    double x = cx + local[i].x * std::cos(roll) - local[i].y * std::sin(roll);
    double y = cy + local[i].x * std::sin(roll) + local[i].y * std::cos(roll);
    dst[i] = cv::Point2f(float(x), float(y));
    x0 = std::min(x0, x), y0 = std::min(y0, y), x1 = std::max(x1, x), y1 = std::max(y1, y);
  }
  Warped out;
  out.roi = cv::Rect(int(std::floor(x0)) - 1, int(std::floor(y0)) - 1, 0, 0);
  out.roi.width = int(std::ceil(x1)) + 2 - out.roi.x;
  out.roi.height = int(std::ceil(y1)) + 2 - out.roi.y;
  out.roi &= cv::Rect(0, 0, image.width, image.height);
  if (out.roi.width < 2 || out.roi.height < 2) return out;
  cv::Matx33d Hm = cv::getPerspectiveTransform(src, dst);
  cv::Matx33d shift(1, 0, -out.roi.x, 0, 1, -out.roi.y, 0, 0, 1);
  cv::warpPerspective(sprite, out.bgra, cv::Mat(shift * Hm), out.roi.size(), cv::INTER_LINEAR,
                      cv::BORDER_CONSTANT, cv::Scalar(0, 0, 0, 0));
  int bx0 = INT32_MAX, by0 = INT32_MAX, bx1 = -1, by1 = -1;
  for (int y = 0; y < out.bgra.rows; ++y) {
    const cv::Vec4b* row = out.bgra.ptr<cv::Vec4b>(y);
    for (int x = 0; x < out.bgra.cols; ++x)
      if (row[x][3] >= 96)
        bx0 = std::min(bx0, x), bx1 = std::max(bx1, x), by0 = std::min(by0, y), by1 = std::max(by1, y);
  }
  if (bx1 < 0) return out;
  out.box = {0, float(out.roi.x + bx0), float(out.roi.y + by0), float(out.roi.x + bx1 + 1),
             float(out.roi.y + by1 + 1)};
  out.ok = true;
  return out;
}

void blend(cv::Mat& img, const Warped& w, double gain) {
  for (int y = 0; y < w.roi.height; ++y) {
    const cv::Vec4b* s = w.bgra.ptr<cv::Vec4b>(y);
    cv::Vec3b* d = img.ptr<cv::Vec3b>(w.roi.y + y) + w.roi.x;
    for (int x = 0; x < w.roi.width; ++x) {
      const int a = s[x][3];
      if (a == 0) continue;
      for (int c = 0; c < 3; ++c) {
        double v = std::min(255.0, s[x][c] * gain);
        d[x][c] = cv::saturate_cast<uchar>((v * a + d[x][c] * (255 - a)) / 255.0);
      }
    }
  }
}

struct Placement {
  int design = 0, cls = -1;  // cls -1 = unlabelled (distractor or a sign outside the class set)
  double cx = 0, cy = 0;
  int width = 0;
  bool pole = false;
  double gain = 1;
  Warped warped;
};

BoxPx grow(const BoxPx& b, float f) {
  float dx = b.width() * f, dy = b.height() * f;
  return {b.cls, b.x1 - dx, b.y1 - dy, b.x2 + dx, b.y2 + dy};
}

bool intersect(const BoxPx& a, const BoxPx& b) {
  return std::min(a.x2, b.x2) > std::max(a.x1, b.x1) && std::min(a.y2, b.y2) > std::max(a.y1, b.y1);
}

// Signs never overlap (real signs do not stand in front of each other); this is stricter than the
// IoU < 0.1 the data set promises.
bool touches(const BoxPx& b, const std::vector<Placement>& placed, float margin) {
  for (const auto& p : placed)
    if (p.warped.ok && intersect(grow(b, margin), p.warped.box)) return true;
  return false;
}

void draw_pole(cv::Mat& img, const BoxPx& b, double len, Rng& rng) {
  const double x = (b.x1 + b.x2) / 2, w = std::max(1.0, b.width() * 0.08);
  cv::Scalar c = rng.chance(0.7) ? rgb_jitter(rng, {150, 150, 150}, 25) : rgb_jitter(rng, {60, 60, 60}, 15);
  rect(img, x - w / 2, (b.y1 + b.y2) / 2, x + w / 2, std::min<double>(img.rows + 1, b.y2 + len), c);
}

// Something in front of part of a sign: leaves or a post from one side, or an object from below.
// Its reach into the box is at most a quarter of the box's width or height.
void occlude(cv::Mat& img, const BoxPx& b, const std::vector<Placement>& signs, Rng& rng) {
  const double w = b.width(), h = b.height(), f = rng.uniform(0.08, 0.25);
  const int side = int(rng.randint(3));
  cv::Rect2d clip = side == 0   ? cv::Rect2d(b.x1 - 0.6 * w, b.y1, 0.6 * w + f * w, h)
                    : side == 1 ? cv::Rect2d(b.x2 - f * w, b.y1, f * w + 0.6 * w, h)
                                : cv::Rect2d(b.x1, b.y2 - f * h, w, f * h + 0.6 * h);
  cv::Rect r(int(std::ceil(clip.x)), int(std::ceil(clip.y)), 0, 0);
  r.width = int(std::floor(clip.x + clip.width)) - r.x;
  r.height = int(std::floor(clip.y + clip.height)) - r.y;
  r &= cv::Rect(0, 0, img.cols, img.rows);
  if (r.width < 1 || r.height < 1) return;
  BoxPx rb{0, float(r.x), float(r.y), float(r.x + r.width), float(r.y + r.height)};
  for (const auto& s : signs)  // never reach into another sign
    if (s.warped.ok && &s.warped.box != &b && intersect(rb, s.warped.box)) return;
  cv::Mat sub = img(r);
  const double ox = r.x, oy = r.y;
  if (side < 2 && rng.chance(0.4)) {  // a post
    double x = side == 0 ? b.x1 + f * w - 0.12 * w : b.x2 - f * w;
    rect(sub, x - ox, -1, x + 0.12 * w - ox, r.height + 1, rgb_jitter(rng, {120, 125, 125}, 30));
  } else if (side < 2) {  // leaves
    cv::Scalar g = rgb_jitter(rng, {45, 115, 55}, 25);
    double edge = side == 0 ? b.x1 + f * w : b.x2 - f * w;
    for (int i = 0; i < 6; ++i) {
      double rr = rng.uniform(0.12, 0.25) * h;
      double cx = edge + (side == 0 ? -rr : rr) + rng.uniform(-0.05, 0.05) * w;
      disc(sub, cx - ox, rng.uniform(b.y1, b.y2) - oy, rr, scaled(g, rng.uniform(0.7, 1.2)));
    }
  } else {  // something from below: a rounded dark object (a truck roof, a rider's helmet)
    cv::Scalar c = rgb_jitter(rng, {70, 70, 75}, 40);
    cv::ellipse(sub, sp((b.x1 + b.x2) / 2 + rng.uniform(-0.3, 0.3) * w - ox, b.y2 + 0.5 * h - oy),
                cv::Size(int(rng.uniform(0.3, 0.6) * w * 16), int((0.5 + f) * h * 16)), 0, 0, 360, c,
                cv::FILLED, cv::LINE_AA, 4);
  }
}

// Global lighting (gain, gamma, colour cast) through a lookup table.
void lighting(cv::Mat& img, Rng& rng) {
  const double gain = rng.uniform(0.7, 1.2), gamma = rng.uniform(0.8, 1.25);
  double cast[3];
  for (double& c : cast) c = rng.uniform(0.94, 1.06);
  cv::Mat lut(1, 256, CV_8UC3);
  for (int v = 0; v < 256; ++v)
    for (int c = 0; c < 3; ++c)
      lut.at<cv::Vec3b>(0, v)[c] =
          cv::saturate_cast<uchar>(255 * std::pow(v / 255.0, gamma) * gain * cast[c]);
  cv::LUT(img, lut, img);
}

// Triangular sensor noise in [-amp, amp] per byte, from the image's own Rng.
void noise(cv::Mat& img, Rng& rng) {
  const int amp = int(rng.randint(2, 8));
  for (int y = 0; y < img.rows; ++y) {
    uchar* p = img.ptr<uchar>(y);
    const int n = img.cols * img.channels();
    for (int x = 0; x < n; x += 4) {
      uint64_t r = rng.next();
      for (int k = 0; k < 4 && x + k < n; ++k, r >>= 16) {
        int d = (int(r & 0xff) + int((r >> 8) & 0xff) - 255) * amp / 255;
        p[x + k] = cv::saturate_cast<uchar>(p[x + k] + d);
      }
    }
  }
}

std::string label_text(const std::vector<BoxPx>& boxes, int W, int H) {
  std::string s;
  for (const auto& b : boxes) {
    Label l = to_normalized(b, W, H);
    s += fmt::format("{} {:.6f} {:.6f} {:.6f} {:.6f}\n", l.cls, l.cx, l.cy, l.w, l.h);
  }
  return s;
}

std::string yaml_list(const std::vector<std::string>& v, bool quote) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + (quote ? "'" + v[i] + "'" : v[i]);
  return s + "]";
}

}  // namespace

std::vector<std::string> synth_class_names(const std::string& set) {
  return class_set(set).names;
}

std::vector<int> synth_flip_map(const std::string& set) {
  return class_set(set).flip;
}

SynthRenderer::SynthRenderer(const SynthOptions& opt) : opt_(opt) {
  YQ_CHECK_USAGE(opt.width >= 32 && opt.height >= 32 && opt.width <= 8192 && opt.height <= 8192,
                 "imgsz={},{}: width and height must be in [32, 8192]", opt.width, opt.height);
  ClassSet cs = class_set(opt.classes);
  names_ = cs.names;
  for (const auto& d : cs.designs) class_designs_.push_back(design_indices(d));
  extra_designs_ = design_indices(cs.extra);
  if (!opt.backgrounds.empty()) {
    YQ_CHECK_USAGE(fs::is_directory(opt.backgrounds), "backgrounds={}: not a folder",
                   opt.backgrounds.string());
    for (const auto& e : fs::directory_iterator(opt.backgrounds))
      if (e.is_regular_file() && is_image_file(e.path())) photos_.push_back(e.path());
    std::sort(photos_.begin(), photos_.end());
    YQ_CHECK_USAGE(!photos_.empty(), "backgrounds={}: no images (jpg, png, ...) in this folder",
                   opt.backgrounds.string());
  }
}

SynthImage SynthRenderer::render(int split, int index, bool draw_signs) const {
  YQ_ASSERT(split >= 0 && split < 3 && index >= 0);
  Rng rng(mix_seed(opt_.seed, uint64_t(split), uint64_t(index)));
  const int W = opt_.width, H = opt_.height;
  const double ws = W / 640.0;
  Street st{double(W), double(H), H * 0.4, W * 0.5, W * 0.6};
  cv::Mat img(H, W, CV_8UC3, cv::Scalar(0, 0, 0));
  const bool photo = !photos_.empty();
  if (photo) {
    img = photo_scene(photos_[size_t(rng.randint(int64_t(photos_.size())))], W, H, rng);
  } else {
    draw_street(img, st, rng);
  }

  // Sizes: log-uniform between 8 and 80 px on a 640-wide image (most signs small, as in Zalo).
  const double smin = std::max(6.0, 8 * ws), smax = std::max(smin + 4, 80 * ws);
  auto sample_width = [&] { return int(std::lround(smin * std::pow(smax / smin, rng.uniform()))); };

  // Plan the signs: design, size, position (roadside on a pole where the street allows), pose.
  std::vector<Placement> signs;
  const int want = rng.chance(0.1) ? 0 : int(rng.randint(1, 6));
  for (int tries = 0; int(signs.size()) < want && tries < want * 12; ++tries) {
    Placement p;
    p.cls = int(rng.randint(int64_t(class_designs_.size())));
    const auto& ds = class_designs_[size_t(p.cls)];
    p.design = ds[size_t(rng.randint(int64_t(ds.size())))];
    p.width = sample_width();
    const bool stacked = !signs.empty() && signs.back().pole && rng.chance(0.25);
    if (stacked) {  // a second sign under the previous one, on the same pole
      const Placement& up = signs.back();
      p.width = up.width;
      p.cx = (up.warped.box.x1 + up.warped.box.x2) / 2;
      p.cy = up.warped.box.y2 + 0.62 * p.width;
      p.pole = false;
    } else {
      const double t = p.width / (0.14 * st.R);  // depth at which a 0.7 m sign is this wide
      const double side = rng.chance(0.5) ? -1 : 1;
      if (!photo && t <= 1.1 && rng.chance(0.7)) {
        p.cx = st.x_at(t, side * rng.uniform(1.02, 1.5));
        p.cy = st.y_at(t) - rng.uniform(2.2, 3.2) * st.metre(t);
      } else {
        p.cx = rng.uniform(0, W);
        p.cy = rng.uniform(0.05, photo ? 0.8 : 0.7) * H;
      }
      p.pole = rng.chance(0.8);
    }
    const double yaw = rng.uniform(-0.6, 0.6), roll = rng.uniform(-0.09, 0.09);
    p.gain =
        rng.chance(0.1) && p.width >= 2 * smin ? rng.uniform(0.45, 0.65) : rng.uniform(0.7, 1.15);  // backlit
    cv::Mat sprite = render_sign(p.design, p.width, rng);
    if (p.cx - p.width / 2.0 < 1 || p.cx + p.width / 2.0 > W - 1 || p.cy - sprite.rows / 2.0 < 1 ||
        p.cy + sprite.rows / 2.0 > H - 1)
      continue;  // signs stay wholly inside the image
    p.warped = warp_sprite(sprite, p.cx, p.cy, yaw, roll, img.size());
    if (!p.warped.ok || touches(p.warped.box, signs, 0.04f)) continue;
    p.warped.box.cls = p.cls;
    signs.push_back(std::move(p));
  }

  // Distractors: sign-like things that are not labelled, kept clear of the signs.
  std::vector<Placement> others;
  for (int i = 0, n = int(rng.randint(0, 3)); i < n; ++i) {
    Placement p;
    p.width = sample_width();
    const bool real = !extra_designs_.empty() && rng.chance(0.3);
    cv::Mat sprite =
        real ? render_sign(extra_designs_[size_t(rng.randint(int64_t(extra_designs_.size())))], p.width, rng)
             : render_distractor(p.width, rng);
    p.cx = rng.uniform(p.width, W - p.width);
    p.cy = rng.uniform(0.05, 0.8) * H;
    p.pole = rng.chance(0.5);
    p.warped = warp_sprite(sprite, p.cx, p.cy, rng.uniform(-0.5, 0.5), rng.uniform(-0.08, 0.08), img.size());
    if (!p.warped.ok) continue;
    bool clear = true;
    for (const auto& s : signs) {
      BoxPx g = grow(s.warped.box, 0.15f), d = p.warped.box;
      if (std::min(g.x2, d.x2) > std::max(g.x1, d.x1) && std::min(g.y2, d.y2) > std::max(g.y1, d.y1))
        clear = false;
    }
    if (clear) others.push_back(std::move(p));
  }

  // Draw: poles (behind everything mounted on them), distractors, signs, occluders.
  for (auto* group : {&others, &signs})
    for (const auto& p : *group)
      if (p.pole) draw_pole(img, p.warped.box, rng.uniform(1.5, 4.0) * p.warped.box.height(), rng);
  for (const auto& p : others) blend(img, p.warped, rng.uniform(0.7, 1.1));
  if (draw_signs)
    for (const auto& p : signs) blend(img, p.warped, p.gain);
  for (const auto& p : signs)
    if (rng.chance(0.15)) occlude(img, p.warped.box, signs, rng);

  // Camera: blur, lighting, noise.
  if (rng.chance(0.4)) cv::GaussianBlur(img, img, {0, 0}, rng.uniform(0.4, 1.0) * std::max(1.0, ws));
  lighting(img, rng);
  noise(img, rng);

  SynthImage out;
  out.image = img;
  for (const auto& p : signs) out.boxes.push_back(p.warped.box);
  return out;
}

SynthReport synthesize(const SynthOptions& opt) {
  const auto t0 = std::chrono::steady_clock::now();
  const int counts[3] = {opt.train, opt.val, opt.test};
  for (int s = 0; s < 3; ++s)
    YQ_CHECK_USAGE(counts[s] >= 0, "{}={}: image counts cannot be negative",
                   s == 0   ? "train"
                   : s == 1 ? "val"
                            : "test",
                   counts[s]);
  YQ_CHECK_USAGE(opt.train + opt.val + opt.test > 0, "train, val and test are all 0: nothing to synthesize");
  SynthRenderer renderer(opt);
  const ClassSet cs = class_set(opt.classes);
  const fs::path yaml = opt.out / "dataset.yaml";
  if (fs::exists(yaml))
    YQ_CHECK_USAGE(
        read_text(yaml).find(kMarker) != std::string::npos,
        "out={}: holds a data set not written by yoloqat synth; choose another out=", opt.out.string());

  // Folders, and files left over from an earlier, larger run of synth.
  for (int s = 0; s < 3; ++s)
    for (const char* sub : {"images", "labels"}) {
      fs::path dir = opt.out / kSplitDirs[s] / sub;
      fs::create_directories(dir);
      for (const auto& e : fs::directory_iterator(dir)) {
        const std::string stem = e.path().stem().string(), ext = lower_ext(e.path());
        if (stem.size() == 6 &&
            std::all_of(stem.begin(), stem.end(), [](unsigned char ch) { return std::isdigit(ch) != 0; }) &&
            (ext == "jpg" || ext == "txt") && std::stoi(stem) >= counts[s])
          fs::remove(e.path());
      }
    }

  std::vector<std::pair<int, int>> jobs;
  for (int s = 0; s < 3; ++s)
    for (int i = 0; i < counts[s]; ++i) jobs.emplace_back(s, i);
  const int nthreads =
      std::max(1, std::min<int>(opt.threads > 0 ? opt.threads : int(std::thread::hardware_concurrency()),
                                int(jobs.size())));

  SynthReport rep;
  rep.per_class.assign(cs.names.size(), 0);
  std::mutex mu;
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::exception_ptr error;
  auto worker = [&] {
    std::vector<int> per_class(cs.names.size(), 0);
    int boxes = 0, empty = 0;
    try {
      for (size_t j; !failed && (j = next++) < jobs.size();) {
        const auto [s, i] = jobs[j];
        const std::string stem = fmt::format("{:06d}", i);
        const fs::path img_path = opt.out / kSplitDirs[s] / "images" / (stem + ".jpg");
        with_context("while writing " + img_path.string(), [&] {
          SynthImage im = renderer.render(s, i);
          std::vector<uchar> buf;
          YQ_CHECK(cv::imencode(".jpg", im.image, buf, {cv::IMWRITE_JPEG_QUALITY, 90}),
                   "JPEG encoding failed");
          atomic_write(img_path, std::string(buf.begin(), buf.end()));
          atomic_write(opt.out / kSplitDirs[s] / "labels" / (stem + ".txt"),
                       label_text(im.boxes, opt.width, opt.height));
          for (const auto& b : im.boxes) ++per_class[size_t(b.cls)];
          boxes += int(im.boxes.size());
          empty += im.boxes.empty();
        });
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(mu);
      if (!error) error = std::current_exception();
      failed = true;
    }
    std::lock_guard<std::mutex> lock(mu);
    rep.boxes += boxes;
    rep.backgrounds += empty;
    for (size_t c = 0; c < per_class.size(); ++c) rep.per_class[c] += per_class[c];
  };
  std::vector<std::thread> pool;
  for (int t = 0; t < nthreads; ++t) pool.emplace_back(worker);
  for (auto& t : pool) t.join();
  if (error) std::rethrow_exception(error);
  rep.images = int(jobs.size());

  std::vector<std::string> flip;
  for (int f : cs.flip) flip.push_back(std::to_string(f));
  std::string y = fmt::format(
      "{} (seed {}, {}x{}, classes={}{})\n"
      "# Synthetic look-alike of the Vietnamese traffic-sign data sets (QCVN 41 signs); regenerate with\n"
      "# the same options for the same bytes.\n"
      "path: .\ntrain: train/images\nval: valid/images\ntest: test/images\n"
      "nc: {}\nnames: {}\n"
      "# per class: the class it becomes when the image is mirrored; -1 = never flip an image holding it\n"
      "flip_idx: {}\n",
      kMarker, opt.seed, opt.width, opt.height, opt.classes,
      opt.backgrounds.empty() ? "" : ", backgrounds=" + opt.backgrounds.string(), cs.names.size(),
      yaml_list(cs.names, true), yaml_list(flip, false));
  atomic_write(yaml, y);
  rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return rep;
}

}  // namespace yq::data
