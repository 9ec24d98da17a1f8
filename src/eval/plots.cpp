#include "eval/plots.h"

#include <fmt/format.h>
#include <opencv2/imgproc.hpp>

#include <algorithm>

#include "eval/visualize.h"

namespace yq::eval {

namespace {
const cv::Scalar kBlack(0, 0, 0), kGrey(200, 200, 200), kWhite(255, 255, 255);

void text(cv::Mat& img, const std::string& s, cv::Point p, double scale = 0.45, cv::Scalar c = kBlack,
          bool centred = false) {
  int base = 0;
  cv::Size ts = cv::getTextSize(s, cv::FONT_HERSHEY_SIMPLEX, scale, 1, &base);
  if (centred) p.x -= ts.width / 2;
  cv::putText(img, s, p, cv::FONT_HERSHEY_SIMPLEX, scale, c, 1, cv::LINE_AA);
}
}  // namespace

cv::Mat line_chart(const std::vector<Series>& series, const std::string& title, const std::string& xlabel,
                   const std::string& ylabel, int width, int height) {
  cv::Mat img(height, width, CV_8UC3, kWhite);
  const int left = 70, right = 230, top = 40, bottom = 60;
  const int pw = width - left - right, ph = height - top - bottom;
  auto to_px = [&](double x, double y) {
    return cv::Point(left + int(std::clamp(x, 0.0, 1.0) * pw), top + ph - int(std::clamp(y, 0.0, 1.0) * ph));
  };
  for (int k = 0; k <= 10; ++k) {
    double v = k / 10.0;
    cv::line(img, to_px(v, 0), to_px(v, 1), kGrey, 1);
    cv::line(img, to_px(0, v), to_px(1, v), kGrey, 1);
    if (k % 2 == 0) {
      text(img, fmt::format("{:.1f}", v), to_px(v, 0) + cv::Point(0, 18), 0.4, kBlack, true);
      text(img, fmt::format("{:.1f}", v), to_px(0, v) + cv::Point(-32, 4), 0.4);
    }
  }
  cv::rectangle(img, to_px(0, 1), to_px(1, 0), kBlack, 1);
  text(img, title, cv::Point(left + pw / 2, 25), 0.6, kBlack, true);
  text(img, xlabel, cv::Point(left + pw / 2, height - 18), 0.5, kBlack, true);
  // Vertical y label: draw into a strip and rotate.
  {
    cv::Mat strip(24, ph, CV_8UC3, kWhite);
    text(strip, ylabel, cv::Point(ph / 2, 17), 0.5, kBlack, true);
    cv::Mat rot;
    cv::rotate(strip, rot, cv::ROTATE_90_COUNTERCLOCKWISE);
    rot.copyTo(img(cv::Rect(8, top, rot.cols, rot.rows)));
  }
  int ly = top + 10;
  for (const auto& s : series) {
    std::vector<cv::Point> pts;
    for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) pts.push_back(to_px(s.x[i], s.y[i]));
    if (pts.size() > 1) cv::polylines(img, pts, false, s.color, s.thickness, cv::LINE_AA);
    cv::line(img, cv::Point(left + pw + 15, ly), cv::Point(left + pw + 40, ly), s.color,
             std::max(2, s.thickness));
    text(img, s.label, cv::Point(left + pw + 46, ly + 5), 0.4);
    ly += 18;
  }
  return img;
}

cv::Mat pr_curve_plot(const DetectionMetrics& m, const std::vector<std::string>& names) {
  const ApResult& r = m.result();
  std::vector<Series> series;
  std::vector<double> x;
  if (!r.recall_grid.defined() || r.recall_grid.numel() == 0)
    return line_chart({}, "Precision-recall (no detections)", "recall", "precision");
  auto rg = r.recall_grid.contiguous().to(torch::kFloat64);
  x.assign(rg.data_ptr<double>(), rg.data_ptr<double>() + rg.numel());
  for (size_t u = 0; u < r.classes.size(); ++u) {
    auto row = r.pr_curve[int64_t(u)].contiguous().to(torch::kFloat64);
    std::vector<double> y(row.data_ptr<double>(), row.data_ptr<double>() + row.numel());
    int c = r.classes[u];
    std::string name = c < int(names.size()) ? names[size_t(c)] : std::to_string(c);
    double ap50 = r.ap[int64_t(u)][0].item<double>();
    series.push_back({fmt::format("{} {:.3f}", name, ap50), x, y, class_color(c), 1});
  }
  auto mean = r.mean_pr_curve.contiguous().to(torch::kFloat64);
  series.push_back({fmt::format("all {:.3f} mAP50", m.map50()), x,
                    std::vector<double>(mean.data_ptr<double>(), mean.data_ptr<double>() + mean.numel()),
                    cv::Scalar(180, 80, 0), 3});
  return line_chart(series, "Precision-recall curve (IoU 0.5)", "recall", "precision");
}

cv::Mat confusion_matrix_plot(const ConfusionMatrix& cm, const std::vector<std::string>& names) {
  const int n = cm.nc() + 1;
  const int cell = std::max(28, std::min(70, 900 / n));
  const int margin = 150;
  cv::Mat img(margin + n * cell + 40, margin + n * cell + 20, CV_8UC3, kWhite);
  auto norm = cm.normalized().contiguous().to(torch::kFloat64);
  auto a = norm.accessor<double, 2>();
  auto label = [&](int i) {
    std::string s =
        i == cm.nc() ? "background" : (i < int(names.size()) ? names[size_t(i)] : std::to_string(i));
    return s.size() > 18 ? s.substr(0, 17) + "." : s;
  };
  for (int r = 0; r < n; ++r) {
    for (int c = 0; c < n; ++c) {
      double v = a[r][c];
      // White (0) to dark blue (1).
      cv::Scalar col(255 - 135 * v, 255 - 200 * v, 255 - 230 * v);
      cv::Rect rect(margin + c * cell, margin + r * cell, cell, cell);
      cv::rectangle(img, rect, col, cv::FILLED);
      cv::rectangle(img, rect, kGrey, 1);
      if (v > 0.005)
        text(img, fmt::format("{:.2f}", v), cv::Point(rect.x + cell / 2, rect.y + cell / 2 + 4), 0.35,
             v > 0.5 ? kWhite : kBlack, true);
    }
    text(img, label(r), cv::Point(6, margin + r * cell + cell / 2 + 4), 0.4);
    cv::Mat strip(20, margin - 10, CV_8UC3, kWhite);
    text(strip, label(r), cv::Point(2, 14), 0.4);
    cv::Mat rot;
    cv::rotate(strip, rot, cv::ROTATE_90_COUNTERCLOCKWISE);
    rot.copyTo(img(cv::Rect(margin + r * cell + (cell - 20) / 2, 5, rot.cols, rot.rows)));
  }
  text(img, "columns: true class, rows: predicted (normalized per column)",
       cv::Point(margin, margin + n * cell + 28), 0.45);
  return img;
}

}  // namespace yq::eval
