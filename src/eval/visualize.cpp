#include "eval/visualize.h"

#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>

namespace yq::eval {

cv::Scalar class_color(int cls) {
  // A fixed palette of well separated colours (BGR), cycled for large class counts.
  static const cv::Scalar palette[] = {{56, 56, 255},  {151, 157, 255}, {31, 112, 255},  {29, 178, 255},
                                       {49, 210, 207}, {10, 249, 72},   {23, 204, 146},  {134, 219, 61},
                                       {52, 147, 26},  {187, 212, 0},   {168, 153, 44},  {255, 194, 0},
                                       {147, 69, 52},  {255, 115, 100}, {236, 24, 0},    {255, 56, 132},
                                       {133, 0, 82},   {255, 56, 203},  {200, 149, 255}, {199, 55, 255}};
  const int n = int(sizeof(palette) / sizeof(palette[0]));
  return palette[((cls % n) + n) % n];
}

void draw_boxes(cv::Mat& img, const std::vector<data::BoxPx>& boxes, const std::vector<std::string>& names,
                const std::vector<float>& scores) {
  const int lw = std::max(1, int(std::lround((img.rows + img.cols) / 2.0 * 0.003)));
  const double font = std::max(0.3, lw / 3.0);
  for (size_t i = 0; i < boxes.size(); ++i) {
    const auto& b = boxes[i];
    cv::Scalar c = class_color(b.cls);
    cv::Point p1(int(std::lround(b.x1)), int(std::lround(b.y1))),
        p2(int(std::lround(b.x2)), int(std::lround(b.y2)));
    cv::rectangle(img, p1, p2, c, lw, cv::LINE_AA);
    std::string tag =
        (b.cls >= 0 && b.cls < int(names.size())) ? names[size_t(b.cls)] : std::to_string(b.cls);
    if (i < scores.size()) tag += cv::format(" %.2f", scores[i]);
    int base = 0;
    cv::Size ts = cv::getTextSize(tag, cv::FONT_HERSHEY_SIMPLEX, font, 1, &base);
    bool above = p1.y - ts.height - 3 >= 0;
    cv::Point t1(p1.x, above ? p1.y - ts.height - 3 : p1.y),
        t2(p1.x + ts.width, above ? p1.y : p1.y + ts.height + 3);
    cv::rectangle(img, t1, t2, c, cv::FILLED, cv::LINE_AA);
    cv::putText(img, tag, cv::Point(t1.x, t2.y - 2), cv::FONT_HERSHEY_SIMPLEX, font,
                cv::Scalar(255, 255, 255), 1, cv::LINE_AA);
  }
}

cv::Mat tile_mosaic(const std::vector<cv::Mat>& tiles, int cols, int tile_w, int tile_h) {
  cols = std::max(1, std::min<int>(cols, std::max<int>(1, int(tiles.size()))));
  int rows = std::max(1, int((tiles.size() + size_t(cols) - 1) / size_t(cols)));
  cv::Mat canvas(rows * tile_h, cols * tile_w, CV_8UC3, cv::Scalar(114, 114, 114));
  for (size_t i = 0; i < tiles.size(); ++i) {
    const cv::Mat& t = tiles[i];
    if (t.empty()) continue;
    double r = std::min(double(tile_w) / t.cols, double(tile_h) / t.rows);
    cv::Mat resized;
    cv::resize(t, resized, cv::Size(std::max(1, int(t.cols * r)), std::max(1, int(t.rows * r))), 0, 0,
               r < 1 ? cv::INTER_AREA : cv::INTER_LINEAR);
    int x = int(i % size_t(cols)) * tile_w + (tile_w - resized.cols) / 2;
    int y = int(i / size_t(cols)) * tile_h + (tile_h - resized.rows) / 2;
    resized.copyTo(canvas(cv::Rect(x, y, resized.cols, resized.rows)));
  }
  return canvas;
}

}  // namespace yq::eval
