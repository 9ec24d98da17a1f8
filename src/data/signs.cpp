#include "data/signs.h"

#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>
#include <functional>

#include "core/error.h"

namespace yq::data {
namespace {

constexpr int kShift = 4;  // sub-pixel bits for OpenCV drawing
constexpr double kSub = 1 << kShift;
const int kAA = cv::LINE_AA;

struct Pt {
  double x, y;
};

// A drawing surface in units of the sign's width: x in [0, 1], y in [0, aspect]. Everything is
// drawn into `bgr`; the sign's outline also goes into `alpha`.
struct Canvas {
  cv::Mat bgr, alpha;
  double px = 1;  // pixels per unit

  cv::Point p(Pt q) const { return {int(std::lround(q.x * px * kSub)), int(std::lround(q.y * px * kSub))}; }
  int thick(double t) const { return std::max(1, int(std::lround(t * px))); }
  int rad(double r) const { return std::max(1, int(std::lround(r * px * kSub))); }

  void disc(Pt c, double r, const cv::Scalar& col) {
    cv::circle(bgr, p(c), rad(r), col, cv::FILLED, kAA, kShift);
  }
  void ring(Pt c, double r, double t, const cv::Scalar& col) {
    cv::circle(bgr, p(c), rad(r), col, thick(t), kAA, kShift);
  }
  void poly(const std::vector<Pt>& pts, const cv::Scalar& col) {
    std::vector<cv::Point> v;
    for (const auto& q : pts) v.push_back(p(q));
    cv::fillPoly(bgr, std::vector<std::vector<cv::Point>>{v}, col, kAA, kShift);
  }
  void line(const std::vector<Pt>& pts, double t, const cv::Scalar& col) {
    std::vector<cv::Point> v;
    for (const auto& q : pts) v.push_back(p(q));
    cv::polylines(bgr, std::vector<std::vector<cv::Point>>{v}, false, col, thick(t), kAA, kShift);
  }
  void mask_disc(Pt c, double r) { cv::circle(alpha, p(c), rad(r), 255, cv::FILLED, kAA, kShift); }
  void mask_poly(const std::vector<Pt>& pts) {
    std::vector<cv::Point> v;
    for (const auto& q : pts) v.push_back(p(q));
    cv::fillPoly(alpha, std::vector<std::vector<cv::Point>>{v}, 255, kAA, kShift);
  }
};

// Maps a symbol's own coordinates (u, v in [-1, 1], v down) onto the canvas; `mx` = -1 mirrors it.
struct Frame {
  Canvas* c;
  Pt centre;
  double k;
  double mx = 1;
  Pt at(double u, double v) const { return {centre.x + mx * u * k, centre.y + v * k}; }
  std::vector<Pt> at(std::initializer_list<Pt> uv) const {
    std::vector<Pt> out;
    for (const auto& q : uv) out.push_back(at(q.x, q.y));
    return out;
  }
  void disc(double u, double v, double r, const cv::Scalar& col) const { c->disc(at(u, v), r * k, col); }
  void ring(double u, double v, double r, double t, const cv::Scalar& col) const {
    c->ring(at(u, v), r * k, t * k, col);
  }
  void poly(std::initializer_list<Pt> uv, const cv::Scalar& col) const { c->poly(at(uv), col); }
  void line(std::initializer_list<Pt> uv, double t, const cv::Scalar& col) const {
    c->line(at(uv), t * k, col);
  }
  void line(const std::vector<Pt>& uv, double t, const cv::Scalar& col) const {
    std::vector<Pt> v;
    for (const auto& q : uv) v.push_back(at(q.x, q.y));
    c->line(v, t * k, col);
  }
  // A shaft along `pts` ending in a triangular head at the last point.
  void arrow(std::vector<Pt> pts, double t, double head, const cv::Scalar& col) const {
    Pt tip = pts.back(), prev = pts[pts.size() - 2];
    double dx = tip.x - prev.x, dy = tip.y - prev.y, n = std::hypot(dx, dy);
    dx /= n, dy /= n;
    Pt base{tip.x - dx * head, tip.y - dy * head};
    pts.back() = {tip.x - dx * head * 0.6, tip.y - dy * head * 0.6};
    line(pts, t, col);
    double w = head * 0.75;
    c->poly({at(tip.x, tip.y), at(base.x - dy * w, base.y + dx * w), at(base.x + dy * w, base.y - dx * w)},
            col);
  }
};

struct Palette {
  cv::Scalar red, white, black, yellow, blue;
};

cv::Scalar jitter(Rng& rng, cv::Scalar c, double amount) {
  for (int i = 0; i < 3; ++i) c[i] = std::clamp(c[i] + rng.uniform(-amount, amount), 0.0, 255.0);
  return c;
}

// Sign colours with some spread between instances, and sun-faded signs now and then.
Palette make_palette(Rng& rng) {
  Palette p;
  p.red = jitter(rng, {40, 35, 200}, 18);
  p.white = jitter(rng, {238, 238, 236}, 10);
  p.black = jitter(rng, {30, 30, 30}, 10);
  p.yellow = jitter(rng, {25, 200, 245}, 15);
  p.blue = jitter(rng, {165, 85, 10}, 15);
  if (rng.chance(0.25)) {  // faded
    double f = rng.uniform(0.1, 0.35);
    for (cv::Scalar* c : {&p.red, &p.yellow, &p.blue, &p.black})
      for (int i = 0; i < 3; ++i) (*c)[i] = (*c)[i] * (1 - f) + 170 * f;
  }
  return p;
}

// --- symbols (black on white/yellow, white on blue) -------------------------------------------

void car(const Frame& f, const cv::Scalar& col, const cv::Scalar& bg) {
  f.poly({{-0.85, 0.15},
          {-0.8, -0.05},
          {-0.5, -0.12},
          {-0.3, -0.45},
          {0.35, -0.45},
          {0.55, -0.12},
          {0.82, -0.06},
          {0.85, 0.25},
          {-0.85, 0.25}},
         col);
  f.poly({{-0.22, -0.37}, {0.0, -0.37}, {0.0, -0.15}, {-0.36, -0.15}}, bg);
  f.poly({{0.07, -0.37}, {0.3, -0.37}, {0.44, -0.15}, {0.07, -0.15}}, bg);
  for (double u : {-0.47, 0.47}) {
    f.disc(u, 0.28, 0.19, col);
    f.disc(u, 0.28, 0.07, bg);
  }
}

void truck(const Frame& f, const cv::Scalar& col, const cv::Scalar& bg) {
  f.poly({{-0.9, -0.5}, {0.3, -0.5}, {0.3, 0.2}, {-0.9, 0.2}}, col);
  f.poly({{0.36, -0.25}, {0.65, -0.25}, {0.9, 0.0}, {0.9, 0.2}, {0.36, 0.2}}, col);
  f.poly({{0.45, -0.18}, {0.63, -0.18}, {0.78, -0.02}, {0.45, -0.02}}, bg);
  for (double u : {-0.62, -0.3, 0.62}) {
    f.disc(u, 0.3, 0.16, col);
    f.disc(u, 0.3, 0.06, bg);
  }
}

void motorbike(const Frame& f, const cv::Scalar& col) {
  for (double u : {-0.55, 0.55}) f.ring(u, 0.42, 0.24, 0.09, col);
  f.line({{-0.55, 0.42}, {-0.15, 0.08}, {0.3, 0.08}, {0.55, 0.42}}, 0.1, col);
  f.line({{0.3, 0.08}, {0.42, -0.28}, {0.56, -0.3}}, 0.09, col);
  f.line({{-0.35, 0.0}, {0.1, 0.0}}, 0.14, col);
  f.disc(0.02, -0.82, 0.14, col);
  f.line({{-0.02, -0.66}, {-0.12, -0.12}}, 0.15, col);
  f.line({{-0.02, -0.5}, {0.38, -0.3}}, 0.09, col);
  f.line({{-0.12, -0.12}, {0.15, 0.0}, {0.12, 0.22}}, 0.1, col);
}

void person(const Frame& f, const cv::Scalar& col, double du = 0, double dv = 0, double s = 1) {
  auto P = [&](double u, double v) { return Pt{du + u * s, dv + v * s}; };
  f.disc(P(0.1, -0.75).x, P(0.1, -0.75).y, 0.15 * s, col);
  f.line({P(0.05, -0.56), P(-0.05, 0.05)}, 0.2 * s, col);
  f.line({P(0.03, -0.45), P(0.28, -0.2), P(0.36, 0.02)}, 0.11 * s, col);
  f.line({P(0.03, -0.45), P(-0.22, -0.22), P(-0.3, 0.0)}, 0.11 * s, col);
  f.line({P(-0.05, 0.05), P(0.22, 0.42), P(0.3, 0.82)}, 0.13 * s, col);
  f.line({P(-0.05, 0.05), P(-0.18, 0.45), P(-0.4, 0.8)}, 0.13 * s, col);
}

void zebra(const Frame& f, const cv::Scalar& col, double v0, double v1) {
  for (double u = -0.8; u < 0.8; u += 0.32)
    f.poly({{u, v0}, {u + 0.18, v0}, {u + 0.1, v1}, {u - 0.08, v1}}, col);
}

// --- sign bodies ------------------------------------------------------------------------------

constexpr double kTri = 0.87;  // triangle height / width

// White disc with a red ring; returns the frame for the black symbol.
Frame prohibitory(Canvas& c, const Palette& p) {
  c.mask_disc({0.5, 0.5}, 0.5);
  c.disc({0.5, 0.5}, 0.5, p.white);
  c.disc({0.5, 0.5}, 0.48, p.red);
  c.disc({0.5, 0.5}, 0.385, p.white);
  return Frame{&c, {0.5, 0.5}, 0.27};
}

// The red diagonal bar of "no ..." signs, upper left to lower right, over the symbol.
void bar(Canvas& c, const Palette& p) {
  double r = 0.39 * std::sqrt(0.5);
  c.line({{0.5 - r, 0.5 - r}, {0.5 + r, 0.5 + r}}, 0.075, p.red);
}

Frame warning(Canvas& c, const Palette& p) {
  const Pt a{0.5, 0.005}, b{0.995, kTri - 0.005}, d{0.005, kTri - 0.005};
  const Pt in{0.5, b.y - (b.x - d.x) / (2 * std::sqrt(3.0))};  // incentre
  auto shrink = [&](double by) {
    double r = (b.y - in.y), s = (r - by) / r;
    std::vector<Pt> v;
    for (Pt q : {a, b, d}) v.push_back({in.x + (q.x - in.x) * s, in.y + (q.y - in.y) * s});
    return v;
  };
  c.mask_poly({a, b, d});
  c.poly({a, b, d}, p.white);
  c.poly(shrink(0.018), p.red);
  c.poly(shrink(0.09), p.yellow);
  return Frame{&c, {0.5, in.y + 0.04}, 0.2};
}

Frame mandatory(Canvas& c, const Palette& p) {
  c.mask_disc({0.5, 0.5}, 0.5);
  c.disc({0.5, 0.5}, 0.5, p.white);
  c.disc({0.5, 0.5}, 0.48, p.blue);
  return Frame{&c, {0.5, 0.5}, 0.3};
}

Frame indication(Canvas& c, const Palette& p, double aspect) {
  const double e = 0.005;
  c.mask_poly({{e, e}, {1 - e, e}, {1 - e, aspect - e}, {e, aspect - e}});
  c.poly({{e, e}, {1 - e, e}, {1 - e, aspect - e}, {e, aspect - e}}, p.white);
  c.poly({{0.03, 0.03}, {0.97, 0.03}, {0.97, aspect - 0.03}, {0.03, aspect - 0.03}}, p.blue);
  c.line({{0.08, 0.08}, {0.92, 0.08}, {0.92, aspect - 0.08}, {0.08, aspect - 0.08}, {0.08, 0.08}}, 0.02,
         p.white);
  return Frame{&c, {0.5, aspect / 2}, 0.36};
}

// Digits or words centred in a box of the canvas (cv::putText, fitted to width and height).
void text(Canvas& c, const std::string& s, Pt centre, double w, double h, const cv::Scalar& col,
          double weight) {
  const int font = cv::FONT_HERSHEY_SIMPLEX;
  int th = c.thick(weight);
  int base = 0;
  cv::Size sz = cv::getTextSize(s, font, 1.0, th, &base);
  double scale = std::min(w * c.px / sz.width, h * c.px / sz.height);
  sz = cv::getTextSize(s, font, scale, th, &base);
  cv::Point org(int(std::lround(centre.x * c.px - sz.width / 2.0)),
                int(std::lround(centre.y * c.px + sz.height / 2.0)));
  cv::putText(c.bgr, s, org, font, scale, col, th, kAA);
}

struct Entry {
  SignDesign design;
  double aspect;  // height / width
  std::function<void(Canvas&, const Palette&)> draw;
};

std::vector<Entry> build_catalogue() {
  using F = SignFamily;
  using M = SignMirror;
  std::vector<Entry> v;
  auto add = [&](std::string code, std::string meaning, F fam, M mk, std::string partner, double aspect,
                 std::function<void(Canvas&, const Palette&)> draw) {
    v.push_back(
        {{std::move(code), std::move(meaning), fam, mk, std::move(partner)}, aspect, std::move(draw)});
  };
  add("P.102", "no entry", F::Prohibitory, M::Self, "", 1, [](Canvas& c, const Palette& p) {
    c.mask_disc({0.5, 0.5}, 0.5);
    c.disc({0.5, 0.5}, 0.5, p.white);
    c.disc({0.5, 0.5}, 0.485, p.red);
    c.poly({{0.17, 0.42}, {0.83, 0.42}, {0.83, 0.58}, {0.17, 0.58}}, p.white);
  });
  add("P.103a", "no cars", F::Prohibitory, M::Self, "", 1, [](Canvas& c, const Palette& p) {
    car(prohibitory(c, p), p.black, p.white);
    bar(c, p);
  });
  add("P.104", "no motorcycles", F::Prohibitory, M::Self, "", 1, [](Canvas& c, const Palette& p) {
    motorbike(prohibitory(c, p), p.black);
    bar(c, p);
  });
  add("P.106a", "no trucks", F::Prohibitory, M::Self, "", 1, [](Canvas& c, const Palette& p) {
    truck(prohibitory(c, p), p.black, p.white);
    bar(c, p);
  });
  add("P.112", "no pedestrians", F::Prohibitory, M::Self, "", 1, [](Canvas& c, const Palette& p) {
    person(prohibitory(c, p), p.black);
    bar(c, p);
  });
  for (bool right : {false, true}) {
    add(right ? "P.123b" : "P.123a", right ? "no right turn" : "no left turn", F::Prohibitory, M::Partner,
        right ? "P.123a" : "P.123b", 1, [right](Canvas& c, const Palette& p) {
          Frame f = prohibitory(c, p);
          f.mx = right ? -1 : 1;
          f.arrow({{0.3, 0.95}, {0.3, -0.15}, {-0.85, -0.15}}, 0.32, 0.5, p.black);
          bar(c, p);
        });
  }
  add("P.124a", "no U-turn", F::Prohibitory, M::Forbidden, "", 1, [](Canvas& c, const Palette& p) {
    Frame f = prohibitory(c, p);
    std::vector<Pt> u{{0.45, 0.95}, {0.45, -0.2}};
    for (int i = 1; i < 12; ++i) {  // half circle over the top, towards the left
      double a = M_PI * i / 12;
      u.push_back({0.45 - 0.45 * (1 - std::cos(a)), -0.2 - 0.45 * std::sin(a)});
    }
    u.push_back({-0.45, -0.2});
    u.push_back({-0.45, 0.55});
    f.arrow(u, 0.26, 0.45, p.black);
    bar(c, p);
  });
  for (int kmh : {30, 40, 50, 60, 70, 80, 100}) {
    add("P.127-" + std::to_string(kmh), "speed limit " + std::to_string(kmh) + " km/h", F::Prohibitory,
        M::Forbidden, "", 1, [kmh](Canvas& c, const Palette& p) {
          prohibitory(c, p);
          std::string s = std::to_string(kmh);
          text(c, s, {0.5, 0.5}, s.size() > 2 ? 0.6 : 0.5, 0.34, p.black, 0.055);
        });
  }
  add("P.130", "no stopping or parking", F::Prohibitory, M::Self, "", 1, [](Canvas& c, const Palette& p) {
    c.mask_disc({0.5, 0.5}, 0.5);
    c.disc({0.5, 0.5}, 0.5, p.white);
    c.disc({0.5, 0.5}, 0.48, p.red);
    c.disc({0.5, 0.5}, 0.39, p.blue);
    double r = 0.39 * std::sqrt(0.5);
    c.line({{0.5 - r, 0.5 - r}, {0.5 + r, 0.5 + r}}, 0.09, p.red);
    c.line({{0.5 + r, 0.5 - r}, {0.5 - r, 0.5 + r}}, 0.09, p.red);
  });
  add("P.131a", "no parking", F::Prohibitory, M::Self, "", 1, [](Canvas& c, const Palette& p) {
    c.mask_disc({0.5, 0.5}, 0.5);
    c.disc({0.5, 0.5}, 0.5, p.white);
    c.disc({0.5, 0.5}, 0.48, p.red);
    c.disc({0.5, 0.5}, 0.39, p.blue);
    double r = 0.39 * std::sqrt(0.5);
    c.line({{0.5 - r, 0.5 - r}, {0.5 + r, 0.5 + r}}, 0.09, p.red);
  });
  for (bool right : {false, true}) {
    add(right ? "W.201b" : "W.201a", right ? "dangerous bend to the right" : "dangerous bend to the left",
        F::Warning, M::Partner, right ? "W.201a" : "W.201b", kTri, [right](Canvas& c, const Palette& p) {
          Frame f = warning(c, p);
          f.mx = right ? -1 : 1;
          std::vector<Pt> u;
          for (int i = 0; i <= 10; ++i) {  // straight up, then bending left
            double t = i / 10.0;
            u.push_back({0.35 - 0.9 * t * t * t, 0.9 - 1.7 * t});
          }
          f.arrow(u, 0.3, 0.5, p.black);
        });
  }
  add("W.207a", "crossroads with a minor road", F::Warning, M::Self, "", kTri,
      [](Canvas& c, const Palette& p) {
        Frame f = warning(c, p);
        f.line({{0, 0.95}, {0, -0.95}}, 0.38, p.black);
        f.line({{-0.75, 0.05}, {0.75, 0.05}}, 0.2, p.black);
      });
  add("W.224", "pedestrian crossing", F::Warning, M::Self, "", kTri, [](Canvas& c, const Palette& p) {
    Frame f = warning(c, p);
    person(f, p.black, 0, -0.12, 0.95);
    zebra(f, p.black, 0.82, 1.0);
  });
  add("W.225", "children", F::Warning, M::Self, "", kTri, [](Canvas& c, const Palette& p) {
    Frame f = warning(c, p);
    person(f, p.black, -0.35, 0.0, 0.95);
    person(f, p.black, 0.4, 0.25, 0.7);
  });
  add("W.233", "other danger", F::Warning, M::Self, "", kTri, [](Canvas& c, const Palette& p) {
    Frame f = warning(c, p);
    f.poly({{-0.14, -0.85}, {0.14, -0.85}, {0.07, 0.4}, {-0.07, 0.4}}, p.black);
    f.disc(0, 0.72, 0.15, p.black);
  });
  add("W.245a", "go slow", F::Warning, M::Forbidden, "", kTri, [](Canvas& c, const Palette& p) {
    Frame f = warning(c, p);
    Pt a = f.at(0, -0.2), b = f.at(0, 0.38);
    text(c, "DI", a, 0.16, 0.1, p.black, 0.028);
    text(c, "CHAM", b, 0.36, 0.1, p.black, 0.028);
  });
  add("R.301a", "straight ahead only", F::Mandatory, M::Self, "", 1, [](Canvas& c, const Palette& p) {
    mandatory(c, p).arrow({{0, 0.95}, {0, -0.95}}, 0.34, 0.65, p.white);
  });
  for (bool left : {false, true}) {
    add(left ? "R.302b" : "R.302a", left ? "keep left" : "keep right", F::Mandatory, M::Partner,
        left ? "R.302a" : "R.302b", 1, [left](Canvas& c, const Palette& p) {
          Frame f = mandatory(c, p);
          f.mx = left ? -1 : 1;
          f.arrow({{-0.65, -0.65}, {0.7, 0.7}}, 0.34, 0.65, p.white);
        });
  }
  add("R.303", "roundabout", F::Mandatory, M::Forbidden, "", 1, [](Canvas& c, const Palette& p) {
    Frame f = mandatory(c, p);
    for (int k = 0; k < 3; ++k) {  // three arrows turning anticlockwise (right-hand traffic)
      std::vector<Pt> u;
      double a0 = 2 * M_PI * k / 3 + 0.35;
      for (int i = 0; i <= 6; ++i) {
        double a = a0 + 1.35 * i / 6;
        u.push_back({0.62 * std::cos(a), -0.62 * std::sin(a)});
      }
      f.arrow(u, 0.2, 0.42, p.white);
    }
  });
  add("R.407a", "one-way road", F::Indication, M::Self, "", 1.25, [](Canvas& c, const Palette& p) {
    Frame f = indication(c, p, 1.25);
    f.arrow({{0, 1.2}, {0, -1.3}}, 0.36, 0.7, p.white);
  });
  add("I.423b", "pedestrian crossing", F::Indication, M::Self, "", 1, [](Canvas& c, const Palette& p) {
    Frame f = indication(c, p, 1);
    f.poly({{0, -1.05}, {1.05, 0.9}, {-1.05, 0.9}}, p.white);
    person(f, p.black, 0, 0.05, 0.55);
    zebra(Frame{&c, f.at(0, 0.78), f.k * 0.55}, p.black, -0.1, 0.15);
  });
  return v;
}

const std::vector<Entry>& entries() {
  static const std::vector<Entry> e = build_catalogue();
  return e;
}

cv::Mat finish(Canvas& c, int width, double aspect) {
  int height = std::max(1, int(std::lround(width * aspect)));
  cv::Mat bgra, out;
  cv::merge(std::vector<cv::Mat>{c.bgr, c.alpha}, bgra);
  cv::resize(bgra, out, {width, height}, 0, 0, cv::INTER_AREA);
  return out;
}

Canvas make_canvas(int width, double aspect) {
  int T = std::clamp(3 * width, 48, 256);
  Canvas c;
  c.px = T;
  int h = std::max(1, int(std::lround(T * aspect)));
  c.bgr = cv::Mat(h, T, CV_8UC3, cv::Scalar(0, 0, 0));
  c.alpha = cv::Mat(h, T, CV_8UC1, cv::Scalar(0));
  return c;
}

}  // namespace

const std::vector<SignDesign>& sign_catalogue() {
  static const std::vector<SignDesign> d = [] {
    std::vector<SignDesign> v;
    for (const auto& e : entries()) v.push_back(e.design);
    return v;
  }();
  return d;
}

int find_sign(const std::string& code) {
  const auto& d = sign_catalogue();
  for (size_t i = 0; i < d.size(); ++i)
    if (d[i].code == code) return int(i);
  return -1;
}

cv::Mat render_sign(int design, int width, Rng& rng) {
  YQ_ASSERT(design >= 0 && design < int(entries().size()) && width >= 1);
  const Entry& e = entries()[size_t(design)];
  Palette p = make_palette(rng);
  Canvas c = make_canvas(width, e.aspect);
  e.draw(c, p);
  return finish(c, width, e.aspect);
}

cv::Mat render_distractor(int width, Rng& rng) {
  YQ_ASSERT(width >= 1);
  Palette p = make_palette(rng);
  const int kind = int(rng.randint(5));
  const double aspect = kind == 4 ? 2.6 : 1.0;
  if (kind == 4) width = std::max(1, width / 2);  // a traffic light: half as wide, 1.3 times as tall
  Canvas c = make_canvas(width, aspect);
  switch (kind) {
    case 0:  // plain red disc (a shop's logo, a reflector)
    case 1:  // plain blue disc
      c.mask_disc({0.5, 0.5}, 0.5);
      if (rng.chance(0.5)) c.disc({0.5, 0.5}, 0.5, p.white);
      c.disc({0.5, 0.5}, 0.47, kind == 0 ? p.red : p.blue);
      break;
    case 2: {  // circular logo: coloured disc, ring, letters
      cv::Scalar fill(rng.uniform(0, 255), rng.uniform(0, 255), rng.uniform(0, 255));
      cv::Scalar ring(rng.uniform(0, 255), rng.uniform(0, 255), rng.uniform(0, 255));
      c.mask_disc({0.5, 0.5}, 0.5);
      c.disc({0.5, 0.5}, 0.5, ring);
      c.disc({0.5, 0.5}, 0.42, fill);
      std::string s;
      for (int i = 0, n = int(rng.randint(1, 3)); i < n; ++i) s += char('A' + rng.randint(26));
      double lum = 0.114 * fill[0] + 0.587 * fill[1] + 0.299 * fill[2];
      text(c, s, {0.5, 0.5}, 0.6, 0.3, lum > 128 ? p.black : p.white, 0.05);
      break;
    }
    case 3: {  // convex traffic mirror: orange rim, grey reflection
      c.mask_disc({0.5, 0.5}, 0.5);
      c.disc({0.5, 0.5}, 0.5, jitter(rng, {20, 110, 240}, 20));
      c.disc({0.5, 0.5}, 0.4, jitter(rng, {150, 150, 145}, 30));
      c.disc({0.42, 0.4}, 0.18, jitter(rng, {205, 205, 200}, 20));
      c.disc({0.6, 0.65}, 0.12, jitter(rng, {90, 95, 90}, 20));
      break;
    }
    default: {  // traffic light: dark housing, one lamp lit
      c.mask_poly({{0.02, 0.02}, {0.98, 0.02}, {0.98, 2.58}, {0.02, 2.58}});
      c.poly({{0.02, 0.02}, {0.98, 0.02}, {0.98, 2.58}, {0.02, 2.58}}, jitter(rng, {35, 35, 35}, 10));
      const int lit = int(rng.randint(3));
      const cv::Scalar on[3] = {{40, 40, 255}, {20, 200, 255}, {120, 230, 60}};
      for (int i = 0; i < 3; ++i)
        c.disc({0.5, 0.45 + 0.85 * i}, 0.32, i == lit ? on[i] : cv::Scalar(60, 60, 60));
      break;
    }
  }
  return finish(c, width, aspect);
}

}  // namespace yq::data
