// PNG plots drawn with OpenCV: precision-recall curves and the confusion matrix (`val`).
#pragma once

#include <opencv2/core.hpp>

#include <string>
#include <vector>

#include "eval/metrics.h"

namespace yq::eval {

struct Series {
  std::string label;
  std::vector<double> x, y;
  cv::Scalar color;
  int thickness = 1;
};

// A line chart with axes from 0 to 1, ticks, a title, axis names and a legend.
cv::Mat line_chart(const std::vector<Series>& series, const std::string& title, const std::string& xlabel,
                   const std::string& ylabel, int width = 800, int height = 600);

// PR curves of every class (thin) and their mean (thick), from computed metrics.
cv::Mat pr_curve_plot(const DetectionMetrics& m, const std::vector<std::string>& names);

// The column-normalized confusion matrix as a heat map with class names and values.
cv::Mat confusion_matrix_plot(const ConfusionMatrix& cm, const std::vector<std::string>& names);

}  // namespace yq::eval
