// Box types shared by the data pipeline (no LibTorch, no OpenCV).
#pragma once

#include <algorithm>
#include <vector>

namespace yq::data {

// One YOLO label: class and a box normalized to the image size (centre x, centre y, width, height).
struct Label {
  int cls = 0;
  float cx = 0, cy = 0, w = 0, h = 0;
};

// A box in pixels, corners (x1, y1) top-left and (x2, y2) bottom-right.
struct BoxPx {
  int cls = 0;
  float x1 = 0, y1 = 0, x2 = 0, y2 = 0;
  float width() const { return x2 - x1; }
  float height() const { return y2 - y1; }
  float area() const { return (x2 > x1 && y2 > y1) ? (x2 - x1) * (y2 - y1) : 0.f; }
};

inline BoxPx to_pixels(const Label& l, int w, int h) {
  return {l.cls, (l.cx - l.w / 2) * w, (l.cy - l.h / 2) * h, (l.cx + l.w / 2) * w, (l.cy + l.h / 2) * h};
}

inline Label to_normalized(const BoxPx& b, int w, int h) {
  return {b.cls, (b.x1 + b.x2) / 2 / w, (b.y1 + b.y2) / 2 / h, (b.x2 - b.x1) / w, (b.y2 - b.y1) / h};
}

inline float iou(const BoxPx& a, const BoxPx& b) {
  float ix = std::max(0.f, std::min(a.x2, b.x2) - std::max(a.x1, b.x1));
  float iy = std::max(0.f, std::min(a.y2, b.y2) - std::max(a.y1, b.y1));
  float inter = ix * iy, uni = a.area() + b.area() - inter;
  return uni > 0 ? inter / uni : 0.f;
}

}  // namespace yq::data
