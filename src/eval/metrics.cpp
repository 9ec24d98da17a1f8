#include "eval/metrics.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace yq::eval {
namespace {

constexpr int64_t kCurvePoints = 1000;  // points of the P, R, F1 and PR curves
constexpr int64_t kApPoints = 101;      // recall points of the AP integral
constexpr double kF1Eps = 1e-16;        // as the reference's F1

// numpy.linspace(0, 1, n): k * (1 / (n - 1)), the last point exactly 1.
std::vector<double> linspace01(int64_t n) {
  std::vector<double> x(static_cast<size_t>(n));
  const double step = 1.0 / double(n - 1);
  for (int64_t k = 0; k < n; ++k) x[size_t(k)] = double(k) * step;
  x.back() = 1.0;
  return x;
}

// Rows of a [rows, >= cols] tensor; an undefined or empty tensor has none.
int64_t rows_of(const torch::Tensor& t, int64_t cols, const char* what) {
  if (!t.defined() || t.numel() == 0) return 0;
  YQ_CHECK(t.dim() == 2 && t.size(1) >= cols, "{}: expected [n, {}], got {}", what, cols,
           c10::str(t.sizes()));
  return t.size(0);
}

torch::Tensor cpu_float(const torch::Tensor& t) {
  return t.detach().to(torch::kCPU, torch::kFloat32).contiguous();
}

// Class id stored in a float column; must be an integer in [0, nc) (nc <= 0: no upper bound).
int32_t class_id(float v, int nc, const char* what) {
  YQ_CHECK(std::isfinite(v) && v == std::round(v) && v >= 0 && (nc <= 0 || v < float(nc)),
           "{}: class id {} is not a class index in [0, {})", what, v, nc);
  return int32_t(v);
}

double box_area(float x1, float y1, float x2, float y2) {
  return double(x2 - x1) * double(y2 - y1);
}

// A (detection, label) pair of the greedy matching.
struct Pair {
  float iou;
  int32_t det, label;
};

bool pair_before(const Pair& a, const Pair& b) {
  if (a.iou != b.iou) return a.iou > b.iou;
  if (a.det != b.det) return a.det < b.det;
  return a.label < b.label;
}

// Recall/precision padded and turned into the envelope (mrec, mpre), as compute_ap in the reference.
void envelope(const std::vector<double>& recall, const std::vector<double>& precision,
              std::vector<double>& mrec, std::vector<double>& mpre) {
  mrec.assign(1, 0.0);
  mrec.insert(mrec.end(), recall.begin(), recall.end());
  mrec.push_back(1.0);
  mpre.assign(1, 1.0);
  mpre.insert(mpre.end(), precision.begin(), precision.end());
  mpre.push_back(0.0);
  for (size_t i = mpre.size() - 1; i-- > 0;) mpre[i] = std::max(mpre[i], mpre[i + 1]);
}

double trapezoid_ap(const std::vector<double>& mrec, const std::vector<double>& mpre) {
  static const std::vector<double> x = linspace01(kApPoints);
  double prev = np_interp(x[0], mrec, mpre, mpre.front(), mpre.back()), sum = 0;
  for (size_t k = 1; k < x.size(); ++k) {
    double y = np_interp(x[k], mrec, mpre, mpre.front(), mpre.back());
    sum += (x[k] - x[k - 1]) * (y + prev) / 2.0;
    prev = y;
  }
  return sum;
}

// The reference's smooth(y, f): box filter of nf = round(2 f len) // 2 + 1 points, edges padded with the
// end values.
std::vector<double> smooth(const std::vector<double>& y, double f) {
  const int64_t n = int64_t(y.size());
  const int64_t nf = int64_t(std::nearbyint(double(n) * f * 2)) / 2 + 1, half = nf / 2;
  std::vector<double> padded(size_t(half), y.front());
  padded.insert(padded.end(), y.begin(), y.end());
  padded.insert(padded.end(), size_t(half), y.back());
  const double w = 1.0 / double(nf);
  std::vector<double> out(static_cast<size_t>(n));
  for (int64_t k = 0; k < n; ++k) {
    double s = 0;
    for (int64_t j = 0; j < nf; ++j) s += padded[size_t(k + j)] * w;
    out[size_t(k)] = s;
  }
  return out;
}

torch::Tensor to_tensor(const std::vector<double>& v) {
  return torch::from_blob(const_cast<double*>(v.data()), {int64_t(v.size())}, torch::kFloat64).clone();
}

torch::Tensor to_tensor(const std::vector<std::vector<double>>& rows, int64_t cols) {
  auto t = torch::zeros({int64_t(rows.size()), cols}, torch::kFloat64);
  auto acc = t.accessor<double, 2>();
  for (size_t i = 0; i < rows.size(); ++i)
    for (int64_t j = 0; j < cols && j < int64_t(rows[i].size()); ++j) acc[int64_t(i)][j] = rows[i][size_t(j)];
  return t;
}

// The core of ap_per_class on plain arrays: correct [N, T] row-major. With `include` ([N, T], may be
// null) detection i takes part at threshold t only where include[i * T + t] is set.
ApResult compute_ap(const std::vector<uint8_t>& correct, int64_t T, const std::vector<float>& conf,
                    const std::vector<int32_t>& pred_cls, const std::vector<int32_t>& target_cls,
                    const std::vector<uint8_t>* include = nullptr) {
  const int64_t N = int64_t(conf.size());
  YQ_ASSERT(int64_t(correct.size()) == N * T && int64_t(pred_cls.size()) == N);
  YQ_ASSERT(!include || int64_t(include->size()) == N * T);
  for (float c : conf)
    YQ_CHECK(std::isfinite(c), "ap_per_class: a detection has a non-finite confidence {}", c);

  ApResult res;
  std::map<int32_t, int64_t> counts;
  for (int32_t c : target_cls) ++counts[c];
  std::map<int32_t, size_t> row;
  for (auto [c, n] : counts) {
    row[c] = res.classes.size();
    res.classes.push_back(c);
    res.labels.push_back(n);
  }
  const size_t U = res.classes.size();
  bool any_tp = false;
  for (size_t k = 0; k < correct.size() && !any_tp; ++k) any_tp = correct[k] && (!include || (*include)[k]);

  // Detections by descending confidence (stable), split by class.
  std::vector<int64_t> order(static_cast<size_t>(N));
  for (int64_t i = 0; i < N; ++i) order[size_t(i)] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return conf[size_t(a)] > conf[size_t(b)]; });
  std::vector<std::vector<int64_t>> of_class(U);
  for (int64_t i : order) {
    auto it = row.find(pred_cls[size_t(i)]);
    if (it != row.end()) of_class[it->second].push_back(i);
  }

  const std::vector<double> px = linspace01(kCurvePoints);
  std::vector<std::vector<double>> ap(U, std::vector<double>(size_t(T), 0.0));
  std::vector<std::vector<double>> pc(U, std::vector<double>(size_t(kCurvePoints), 0.0)), rc = pc, f1c = pc,
                                                                                          prc = pc;
  std::vector<double> mean_pr(size_t(kCurvePoints), 0.0);
  int64_t with_dets = 0;
  std::vector<double> mrec, mpre;
  std::vector<int64_t> kept;
  for (size_t u = 0; u < U; ++u) {
    const double nl = double(res.labels[u]);
    bool counted = false;
    for (int64_t t = 0; t < T; ++t) {
      const std::vector<int64_t>* sel = &of_class[u];
      if (include) {
        kept.clear();
        for (int64_t i : of_class[u])
          if ((*include)[size_t(i * T + t)]) kept.push_back(i);
        sel = &kept;
      }
      const auto& idx = *sel;
      const size_t np = idx.size();
      if (np == 0) continue;  // AP 0 (and at t = 0: P 0, R 0)
      std::vector<double> recall(np), precision(np);
      double tp = 0, fp = 0;
      for (size_t i = 0; i < np; ++i) {
        if (correct[size_t(idx[i] * T + t)])
          tp += 1;
        else
          fp += 1;
        recall[i] = tp / nl;
        precision[i] = tp / (tp + fp);
      }
      envelope(recall, precision, mrec, mpre);
      ap[u][size_t(t)] = trapezoid_ap(mrec, mpre);
      if (t == 0) {
        std::vector<double> neg_conf(np);
        for (size_t i = 0; i < np; ++i) neg_conf[i] = -double(conf[size_t(idx[i])]);
        counted = true;
        for (int64_t k = 0; k < kCurvePoints; ++k) {
          const double x = px[size_t(k)];
          rc[u][size_t(k)] = np_interp(-x, neg_conf, recall, 0.0, recall.back());
          pc[u][size_t(k)] = np_interp(-x, neg_conf, precision, 1.0, precision.back());
          prc[u][size_t(k)] = np_interp(x, mrec, mpre, mpre.front(), mpre.back());
          mean_pr[size_t(k)] += prc[u][size_t(k)];
        }
      }
    }
    with_dets += counted;
  }
  if (with_dets > 0)
    for (double& v : mean_pr) v /= double(with_dets);

  std::vector<double> mean_f1(size_t(kCurvePoints), 0.0);
  for (size_t u = 0; u < U; ++u)
    for (int64_t k = 0; k < kCurvePoints; ++k) {
      double p = pc[u][size_t(k)], r = rc[u][size_t(k)];
      f1c[u][size_t(k)] = 2 * p * r / (p + r + kF1Eps);
      mean_f1[size_t(k)] += f1c[u][size_t(k)];
    }
  for (double& v : mean_f1) v /= double(std::max<size_t>(U, 1));
  auto smoothed = smooth(mean_f1, 0.1);
  const size_t best = size_t(std::max_element(smoothed.begin(), smoothed.end()) - smoothed.begin());

  std::vector<double> p(U, 0.0), r(U, 0.0), f1(U, 0.0);
  if (any_tp) {
    res.best_conf = px[best];
    for (size_t u = 0; u < U; ++u) p[u] = pc[u][best], r[u] = rc[u][best], f1[u] = f1c[u][best];
  } else {
    for (auto& a : ap) std::fill(a.begin(), a.end(), 0.0);
  }
  res.ap = to_tensor(ap, T);
  res.p = to_tensor(p);
  res.r = to_tensor(r);
  res.f1 = to_tensor(f1);
  res.conf_grid = to_tensor(px);
  res.recall_grid = to_tensor(px);
  res.p_curve = to_tensor(pc, kCurvePoints);
  res.r_curve = to_tensor(rc, kCurvePoints);
  res.f1_curve = to_tensor(f1c, kCurvePoints);
  res.pr_curve = to_tensor(prc, kCurvePoints);
  res.mean_pr_curve = to_tensor(mean_pr);
  return res;
}

double mean_of(const torch::Tensor& t) {
  return t.defined() && t.numel() > 0 ? t.mean().item<double>() : 0.0;
}

}  // namespace

std::vector<double> iou_thresholds() {
  std::vector<double> v;
  for (int i = 0; i < 10; ++i) v.push_back(double(50 + 5 * i) / 100.0);
  return v;
}

torch::Tensor box_iou(const torch::Tensor& a, const torch::Tensor& b) {
  YQ_CHECK(a.dim() == 2 && a.size(1) == 4 && b.dim() == 2 && b.size(1) == 4,
           "box_iou: expected boxes [N, 4] and [M, 4], got {} and {}", c10::str(a.sizes()),
           c10::str(b.sizes()));
  auto a1 = a.slice(1, 0, 2).unsqueeze(1), a2 = a.slice(1, 2, 4).unsqueeze(1);  // [N, 1, 2]
  auto b1 = b.slice(1, 0, 2).unsqueeze(0), b2 = b.slice(1, 2, 4).unsqueeze(0);  // [1, M, 2]
  auto inter = (torch::min(a2, b2) - torch::max(a1, b1)).clamp_min(0).prod(2);  // [N, M]
  return inter / ((a2 - a1).prod(2) + (b2 - b1).prod(2) - inter + 1e-7);
}

MatchRule parse_match_rule(const std::string& name) {
  if (name == "reference") return MatchRule::reference;
  if (name == "greedy") return MatchRule::greedy;
  throw UsageError(fmt::format("unknown match rule '{}' (known: reference, greedy)", name));
}

const char* match_rule_name(MatchRule rule) {
  return rule == MatchRule::greedy ? "greedy" : "reference";
}

AreaRange area_range(double area) {
  if (area < 32.0 * 32.0) return AreaRange::small;
  return area <= 96.0 * 96.0 ? AreaRange::medium : AreaRange::large;
}

const char* area_range_name(AreaRange r) {
  switch (r) {
    case AreaRange::small:
      return "small";
    case AreaRange::medium:
      return "medium";
    case AreaRange::large:
      return "large";
  }
  return "?";
}

namespace {

// The label each detection is matched to at each threshold: [n, T] row-major, -1 = none. d [n, >= 6] and
// l [m, 5] are CPU float32; class ids are checked to be integers >= 0.
std::vector<int32_t> match_labels(const torch::Tensor& d, const torch::Tensor& l,
                                  const std::vector<double>& iouv, MatchRule rule) {
  const int64_t n = d.size(0), m = l.size(0), T = int64_t(iouv.size());
  std::vector<int32_t> matched(size_t(n * T), -1);
  auto da = d.accessor<float, 2>();
  auto la = l.accessor<float, 2>();
  std::vector<int32_t> dc(static_cast<size_t>(n)), lc(static_cast<size_t>(m));
  for (int64_t j = 0; j < n; ++j) dc[size_t(j)] = class_id(da[j][5], 0, "match_predictions: detections");
  for (int64_t i = 0; i < m; ++i) lc[size_t(i)] = class_id(la[i][0], 0, "match_predictions: labels");
  if (n == 0 || m == 0 || T == 0) return matched;

  auto iou = box_iou(l.slice(1, 1, 5), d.slice(1, 0, 4)).contiguous();  // [m, n]
  auto ia = iou.accessor<float, 2>();
  std::vector<float> thr(static_cast<size_t>(T));
  for (int64_t t = 0; t < T; ++t) thr[size_t(t)] = static_cast<float>(iouv[size_t(t)]);

  if (rule == MatchRule::reference) {
    // (1) + (2): a detection's first pair in the stable descending order is its best label (lower label
    // index on equal IoUs); it has a pair at threshold t iff that IoU >= t.
    std::vector<int32_t> best(static_cast<size_t>(n), -1);
    std::vector<float> best_iou(static_cast<size_t>(n), 0.f);
    for (int64_t j = 0; j < n; ++j)
      for (int64_t i = 0; i < m; ++i) {
        const float v = ia[i][j];
        if (lc[size_t(i)] != dc[size_t(j)] || std::isnan(v)) continue;
        if (best[size_t(j)] < 0 || v > best_iou[size_t(j)])
          best[size_t(j)] = int32_t(i), best_iou[size_t(j)] = v;
      }
    // (3): the pairs in detection order; each label goes to the first detection naming it.
    std::vector<char> label_used(static_cast<size_t>(m));
    for (int64_t t = 0; t < T; ++t) {
      std::fill(label_used.begin(), label_used.end(), 0);
      for (int64_t j = 0; j < n; ++j) {
        const int32_t i = best[size_t(j)];
        if (i < 0 || !(best_iou[size_t(j)] >= thr[size_t(t)]) || label_used[size_t(i)]) continue;
        label_used[size_t(i)] = 1;
        matched[size_t(j * T + t)] = i;
      }
    }
    return matched;
  }

  const float lowest = *std::min_element(thr.begin(), thr.end());
  std::vector<Pair> pairs;
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j)
      if (lc[size_t(i)] == dc[size_t(j)] && ia[i][j] >= lowest)
        pairs.push_back({ia[i][j], int32_t(j), int32_t(i)});
  std::sort(pairs.begin(), pairs.end(), pair_before);
  std::vector<char> det_used(static_cast<size_t>(n)), label_used(static_cast<size_t>(m));
  for (int64_t t = 0; t < T; ++t) {
    std::fill(det_used.begin(), det_used.end(), 0);
    std::fill(label_used.begin(), label_used.end(), 0);
    for (const Pair& p : pairs) {
      if (!(p.iou >= thr[size_t(t)])) break;  // pairs are in descending IoU
      if (det_used[size_t(p.det)] || label_used[size_t(p.label)]) continue;
      det_used[size_t(p.det)] = label_used[size_t(p.label)] = 1;
      matched[size_t(p.det * T + t)] = p.label;
    }
  }
  return matched;
}

}  // namespace

torch::Tensor match_predictions(const torch::Tensor& dets, const torch::Tensor& labels,
                                const std::vector<double>& iouv, MatchRule rule) {
  const int64_t n = rows_of(dets, 6, "match_predictions: detections");
  const int64_t m = rows_of(labels, 5, "match_predictions: labels");
  const int64_t T = int64_t(iouv.size());
  auto correct = torch::zeros({n, T}, torch::kBool);
  if (n == 0 || m == 0 || T == 0) return correct;
  const auto matched = match_labels(cpu_float(dets), cpu_float(labels), iouv, rule);
  auto ca = correct.accessor<bool, 2>();
  for (int64_t j = 0; j < n; ++j)
    for (int64_t t = 0; t < T; ++t) ca[j][t] = matched[size_t(j * T + t)] >= 0;
  return correct;
}

double np_interp(double x, const std::vector<double>& xp, const std::vector<double>& fp, double left,
                 double right) {
  YQ_ASSERT(!xp.empty() && xp.size() == fp.size());
  const size_t n = xp.size();
  if (x < xp.front()) return left;
  if (x > xp.back()) return right;
  // Last j with xp[j] <= x.
  const size_t j = size_t(std::upper_bound(xp.begin(), xp.end(), x) - xp.begin()) - 1;
  if (j == n - 1 || xp[j] == x) return fp[j];
  const double slope = (fp[j + 1] - fp[j]) / (xp[j + 1] - xp[j]);
  return slope * (x - xp[j]) + fp[j];
}

double average_precision(const std::vector<double>& recall, const std::vector<double>& precision) {
  YQ_ASSERT(recall.size() == precision.size());
  std::vector<double> mrec, mpre;
  envelope(recall, precision, mrec, mpre);
  return trapezoid_ap(mrec, mpre);
}

ApResult ap_per_class(const torch::Tensor& correct, const torch::Tensor& conf, const torch::Tensor& pred_cls,
                      const torch::Tensor& target_cls) {
  const int64_t N = conf.defined() ? conf.numel() : 0;
  YQ_CHECK(correct.defined() && correct.dim() == 2 && correct.size(0) == N,
           "ap_per_class: expected correct [{}, T], got {}", N,
           correct.defined() ? c10::str(correct.sizes()) : std::string("an undefined tensor"));
  YQ_CHECK(pred_cls.defined() && pred_cls.numel() == N, "ap_per_class: expected {} predicted classes", N);
  const int64_t T = correct.size(1);
  auto c = correct.to(torch::kCPU, torch::kUInt8).contiguous();
  std::vector<uint8_t> cv(c.data_ptr<uint8_t>(), c.data_ptr<uint8_t>() + N * T);
  auto cf = cpu_float(conf.reshape({-1}));
  std::vector<float> confv(cf.data_ptr<float>(), cf.data_ptr<float>() + N);
  auto pc = cpu_float(pred_cls.reshape({-1}));
  std::vector<int32_t> pcv(static_cast<size_t>(N));
  for (int64_t i = 0; i < N; ++i)
    pcv[size_t(i)] = class_id(pc.data_ptr<float>()[i], 0, "ap_per_class: detections");
  std::vector<int32_t> tcv;
  if (target_cls.defined() && target_cls.numel() > 0) {
    auto tc = cpu_float(target_cls.reshape({-1}));
    for (int64_t i = 0; i < tc.numel(); ++i)
      tcv.push_back(class_id(tc.data_ptr<float>()[i], 0, "ap_per_class: labels"));
  }
  return compute_ap(cv, T, confv, pcv, tcv);
}

// ---------------------------------------------------------------------------------------------------
// DetectionMetrics

DetectionMetrics::DetectionMetrics(int nc, std::vector<double> iouv, MatchRule match)
    : nc_(nc), iouv_(std::move(iouv)), match_(match) {
  YQ_CHECK(nc >= 1, "DetectionMetrics: nc must be at least 1, got {}", nc);
  YQ_CHECK(!iouv_.empty(), "DetectionMetrics: no IoU thresholds");
  reset();
}

void DetectionMetrics::reset() {
  images_ = 0;
  correct_.clear();
  area_.clear();
  target_area_.clear();
  labels_area_.fill(0);
  map_area_.fill(-1.0);
  conf_.clear();
  pred_cls_.clear();
  target_cls_.clear();
  labels_per_class_.assign(size_t(nc_), 0);
  images_per_class_.assign(size_t(nc_), 0);
  computed_ = false;
  result_ = ApResult{};
  row_.assign(size_t(nc_), -1);
}

void DetectionMetrics::add(const torch::Tensor& dets, const torch::Tensor& labels) {
  const int64_t n = rows_of(dets, 6, "DetectionMetrics: detections");
  const int64_t m = rows_of(labels, 5, "DetectionMetrics: labels");
  const int64_t T = int64_t(iouv_.size());
  // Everything is checked and computed before any state changes, so a bad image leaves no trace.
  std::vector<int32_t> lc, dc;
  std::vector<uint8_t> la_range, correct, area;
  std::vector<float> conf;
  torch::Tensor l = m > 0 ? cpu_float(labels) : torch::zeros({0, 5});
  if (m > 0) {
    auto la = l.accessor<float, 2>();
    for (int64_t i = 0; i < m; ++i) {
      lc.push_back(class_id(la[i][0], nc_, "DetectionMetrics: labels"));
      la_range.push_back(uint8_t(area_range(box_area(la[i][1], la[i][2], la[i][3], la[i][4]))));
    }
  }
  if (n > 0) {
    auto d = cpu_float(dets);
    bool sorted = true;
    {
      auto da = d.accessor<float, 2>();
      for (int64_t j = 0; j < n; ++j) {
        YQ_CHECK(std::isfinite(da[j][4]), "DetectionMetrics: detection {} has a non-finite confidence", j);
        sorted = sorted && (j == 0 || da[j][4] <= da[j - 1][4]);
      }
    }
    if (!sorted)
      d = d.index_select(0,
                         std::get<1>(torch::sort(d.select(1, 4), /*stable=*/true, 0, /*descending=*/true)));
    auto da = d.accessor<float, 2>();
    for (int64_t j = 0; j < n; ++j) {
      dc.push_back(class_id(da[j][5], nc_, "DetectionMetrics: detections"));
      conf.push_back(da[j][4]);
    }
    const auto matched = match_labels(d, l, iouv_, match_);
    correct.resize(size_t(n * T));
    area.resize(size_t(n * T));
    for (int64_t j = 0; j < n; ++j) {
      const uint8_t own = uint8_t(area_range(box_area(da[j][0], da[j][1], da[j][2], da[j][3])));
      for (int64_t t = 0; t < T; ++t) {
        const int32_t i = matched[size_t(j * T + t)];
        correct[size_t(j * T + t)] = i >= 0;
        area[size_t(j * T + t)] = i >= 0 ? la_range[size_t(i)] : own;
      }
    }
  }

  std::vector<char> present(size_t(nc_), 0);
  for (size_t i = 0; i < lc.size(); ++i) {
    target_cls_.push_back(lc[i]);
    target_area_.push_back(la_range[i]);
    ++labels_per_class_[size_t(lc[i])];
    ++labels_area_[la_range[i]];
    present[size_t(lc[i])] = 1;
  }
  for (int c = 0; c < nc_; ++c) images_per_class_[size_t(c)] += present[size_t(c)];
  pred_cls_.insert(pred_cls_.end(), dc.begin(), dc.end());
  conf_.insert(conf_.end(), conf.begin(), conf.end());
  correct_.insert(correct_.end(), correct.begin(), correct.end());
  area_.insert(area_.end(), area.begin(), area.end());
  ++images_;
  computed_ = false;
}

void DetectionMetrics::compute() {
  const int64_t T = int64_t(iouv_.size());
  result_ = compute_ap(correct_, T, conf_, pred_cls_, target_cls_);
  row_.assign(size_t(nc_), -1);
  for (size_t u = 0; u < result_.classes.size(); ++u) row_[size_t(result_.classes[u])] = int(u);
  std::vector<uint8_t> include(area_.size());
  std::vector<int32_t> targets;
  for (int r = 0; r < kAreaRanges; ++r) {
    map_area_[size_t(r)] = -1.0;
    if (labels_area_[size_t(r)] == 0) continue;
    targets.clear();
    for (size_t i = 0; i < target_cls_.size(); ++i)
      if (target_area_[i] == r) targets.push_back(target_cls_[i]);
    for (size_t k = 0; k < area_.size(); ++k) include[k] = area_[k] == r;
    map_area_[size_t(r)] = mean_of(compute_ap(correct_, T, conf_, pred_cls_, targets, &include).ap);
  }
  computed_ = true;
}

void DetectionMetrics::check_computed() const {
  YQ_CHECK(computed_, "DetectionMetrics: call compute() after the last add() before reading the metrics");
}

int DetectionMetrics::row_of(int c) const {
  YQ_CHECK(c >= 0 && c < nc_, "DetectionMetrics: class {} out of range [0, {})", c, nc_);
  check_computed();
  return row_[size_t(c)];
}

const ApResult& DetectionMetrics::result() const {
  check_computed();
  return result_;
}

double DetectionMetrics::map50() const {
  check_computed();
  return result_.classes.empty() ? 0.0 : mean_of(result_.ap.select(1, 0));
}

double DetectionMetrics::map75() const {
  check_computed();
  for (size_t t = 0; t < iouv_.size(); ++t)
    if (std::abs(iouv_[t] - 0.75) < 1e-9)
      return result_.classes.empty() ? 0.0 : mean_of(result_.ap.select(1, int64_t(t)));
  throw Error("DetectionMetrics: mAP75 needs 0.75 among the IoU thresholds");
}

double DetectionMetrics::map() const {
  check_computed();
  return result_.classes.empty() ? 0.0 : mean_of(result_.ap);
}

double DetectionMetrics::precision() const {
  check_computed();
  return mean_of(result_.p);
}

double DetectionMetrics::recall() const {
  check_computed();
  return mean_of(result_.r);
}

double DetectionMetrics::fitness() const {
  return 0.1 * map50() + 0.9 * map();
}

double DetectionMetrics::map_area(AreaRange r) const {
  check_computed();
  return map_area_[size_t(r)];
}

int64_t DetectionMetrics::n_labels_area(AreaRange r) const {
  return labels_area_[size_t(r)];
}

bool DetectionMetrics::has_labels(int c) const {
  YQ_CHECK(c >= 0 && c < nc_, "DetectionMetrics: class {} out of range [0, {})", c, nc_);
  return labels_per_class_[size_t(c)] > 0;
}

double DetectionMetrics::ap50(int c) const {
  int u = row_of(c);
  return u < 0 ? 0.0 : result_.ap[u][0].item<double>();
}

double DetectionMetrics::ap(int c) const {
  int u = row_of(c);
  return u < 0 ? 0.0 : result_.ap[u].mean().item<double>();
}

double DetectionMetrics::p(int c) const {
  int u = row_of(c);
  return u < 0 ? 0.0 : result_.p[u].item<double>();
}

double DetectionMetrics::r(int c) const {
  int u = row_of(c);
  return u < 0 ? 0.0 : result_.r[u].item<double>();
}

int64_t DetectionMetrics::n_labels(int c) const {
  YQ_CHECK(c >= 0 && c < nc_, "DetectionMetrics: class {} out of range [0, {})", c, nc_);
  return labels_per_class_[size_t(c)];
}

int64_t DetectionMetrics::n_images(int c) const {
  YQ_CHECK(c >= 0 && c < nc_, "DetectionMetrics: class {} out of range [0, {})", c, nc_);
  return images_per_class_[size_t(c)];
}

nlohmann::json DetectionMetrics::to_json(const std::vector<std::string>& names) const {
  check_computed();
  nlohmann::json j;
  j["images"] = images_;
  j["instances"] = instances();
  j["detections"] = detections();
  j["precision"] = precision();
  j["recall"] = recall();
  j["mAP50"] = map50();
  bool has75 = std::any_of(iouv_.begin(), iouv_.end(), [](double v) { return std::abs(v - 0.75) < 1e-9; });
  j["mAP75"] = has75 ? nlohmann::json(map75()) : nlohmann::json(nullptr);
  j["mAP50-95"] = map();
  j["fitness"] = fitness();
  nlohmann::json by_area;
  for (int r = 0; r < kAreaRanges; ++r) {
    const auto range = AreaRange(r);
    const double v = map_area(range);
    j[std::string("mAP_") + area_range_name(range)] = v < 0 ? nlohmann::json(nullptr) : nlohmann::json(v);
    by_area[area_range_name(range)] = n_labels_area(range);
  }
  j["instances_by_area"] = std::move(by_area);
  j["match"] = match_rule_name(match_);
  j["best_f1_conf"] = result_.best_conf;
  j["iou_thresholds"] = iouv_;
  auto classes = nlohmann::json::array();
  for (int c = 0; c < nc_; ++c) {
    nlohmann::json e;
    e["id"] = c;
    e["name"] = size_t(c) < names.size() ? names[size_t(c)] : std::to_string(c);
    e["images"] = n_images(c);
    e["instances"] = n_labels(c);
    int u = row_[size_t(c)];
    if (u < 0) {
      for (const char* k : {"precision", "recall", "ap50", "ap50-95", "ap"}) e[k] = nullptr;
    } else {
      e["precision"] = p(c);
      e["recall"] = r(c);
      e["ap50"] = ap50(c);
      e["ap50-95"] = ap(c);
      std::vector<double> per(iouv_.size());
      for (size_t t = 0; t < per.size(); ++t) per[t] = result_.ap[u][int64_t(t)].item<double>();
      e["ap"] = per;
    }
    classes.push_back(std::move(e));
  }
  j["classes"] = std::move(classes);
  return j;
}

// ---------------------------------------------------------------------------------------------------
// ConfusionMatrix

ConfusionMatrix::ConfusionMatrix(int nc, double conf, double iou) : nc_(nc), conf_(conf), iou_(iou) {
  YQ_CHECK(nc >= 1, "ConfusionMatrix: nc must be at least 1, got {}", nc);
  reset();
}

void ConfusionMatrix::reset() {
  m_.assign(size_t((nc_ + 1) * (nc_ + 1)), 0);
}

void ConfusionMatrix::add(const torch::Tensor& dets, const torch::Tensor& labels) {
  const int64_t n_all = rows_of(dets, 6, "ConfusionMatrix: detections");
  const int64_t m = rows_of(labels, 5, "ConfusionMatrix: labels");
  const int64_t W = nc_ + 1;
  // Detections above the confidence threshold (compared in float32 as the reference).
  std::vector<int32_t> dc;
  std::vector<int64_t> keep;
  torch::Tensor d;
  if (n_all > 0) {
    d = cpu_float(dets);
    auto da = d.accessor<float, 2>();
    const float conf = static_cast<float>(conf_);
    for (int64_t j = 0; j < n_all; ++j)
      if (da[j][4] > conf) {
        keep.push_back(j);
        dc.push_back(class_id(da[j][5], nc_, "ConfusionMatrix: detections"));
      }
  }
  const int64_t n = int64_t(keep.size());
  std::vector<int32_t> lc(static_cast<size_t>(m));
  torch::Tensor l;
  if (m > 0) {
    l = cpu_float(labels);
    auto la = l.accessor<float, 2>();
    for (int64_t i = 0; i < m; ++i) lc[size_t(i)] = class_id(la[i][0], nc_, "ConfusionMatrix: labels");
  }

  std::vector<int32_t> label_to_det(size_t(m), -1);
  std::vector<char> det_used(size_t(n), 0);
  if (n > 0 && m > 0) {
    auto db = d.index_select(0, torch::tensor(keep, torch::kInt64)).slice(1, 0, 4);
    auto iou = box_iou(l.slice(1, 1, 5), db).contiguous();  // [m, n]
    auto ia = iou.accessor<float, 2>();
    const float thr = static_cast<float>(iou_);
    std::vector<Pair> pairs;
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j)
        if (ia[i][j] > thr) pairs.push_back({ia[i][j], int32_t(j), int32_t(i)});
    std::sort(pairs.begin(), pairs.end(), pair_before);
    for (const Pair& p : pairs) {
      if (det_used[size_t(p.det)] || label_to_det[size_t(p.label)] >= 0) continue;
      det_used[size_t(p.det)] = 1;
      label_to_det[size_t(p.label)] = p.det;
    }
  }
  for (int64_t i = 0; i < m; ++i) {
    int32_t j = label_to_det[size_t(i)];
    int64_t predicted = j >= 0 ? dc[size_t(j)] : nc_;
    ++m_[size_t(predicted * W + lc[size_t(i)])];
  }
  for (int64_t j = 0; j < n; ++j)
    if (!det_used[size_t(j)]) ++m_[size_t(int64_t(dc[size_t(j)]) * W + nc_)];
}

int64_t ConfusionMatrix::at(int predicted, int truth) const {
  YQ_CHECK(predicted >= 0 && predicted <= nc_ && truth >= 0 && truth <= nc_,
           "ConfusionMatrix: cell ({}, {}) out of range [0, {}]", predicted, truth, nc_);
  return m_[size_t(predicted * (nc_ + 1) + truth)];
}

torch::Tensor ConfusionMatrix::matrix() const {
  return torch::from_blob(const_cast<int64_t*>(m_.data()), {nc_ + 1, nc_ + 1}, torch::kInt64).clone();
}

torch::Tensor ConfusionMatrix::normalized() const {
  auto m = matrix().to(torch::kFloat64);
  auto sums = m.sum(0, /*keepdim=*/true);
  return torch::where(sums > 0, m / sums.clamp_min(1), torch::zeros_like(m));
}

nlohmann::json ConfusionMatrix::to_json(const std::vector<std::string>& names) const {
  nlohmann::json j;
  j["nc"] = nc_;
  j["conf"] = conf_;
  j["iou"] = iou_;
  std::vector<std::string> n;
  for (int c = 0; c < nc_; ++c) n.push_back(size_t(c) < names.size() ? names[size_t(c)] : std::to_string(c));
  n.push_back("background");
  j["names"] = n;
  j["layout"] = "rows: predicted class, columns: true class; last row and column: background";
  auto rows = nlohmann::json::array();
  for (int r = 0; r <= nc_; ++r) {
    std::vector<int64_t> row(m_.begin() + r * (nc_ + 1), m_.begin() + (r + 1) * (nc_ + 1));
    rows.push_back(row);
  }
  j["matrix"] = std::move(rows);
  return j;
}

}  // namespace yq::eval
