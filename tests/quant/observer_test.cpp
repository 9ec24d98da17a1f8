// Observers: golden scale / zero point from PyTorch 1.13's observers (tests/quant/golden), the registry,
// the yoloqat-designed Percentile and MSE observers, and buffers that save, load and clone.
#include "quant/observer.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"

namespace yq::quant {
namespace {

// Named tolerance (STYLE.md #8): golden scales agree to float32 rounding.
constexpr double kScaleRelTol = 1e-6;

nlohmann::json load_golden() {
  const std::string path = std::string(YOLOQAT_SOURCE_DIR) + "/tests/quant/golden/observers.json";
  std::ifstream f(path);
  EXPECT_TRUE(f.good()) << "cannot read " << path;
  return nlohmann::json::parse(f);
}

// The formula inputs of make_golden.py's power_inputs, regenerated with the same double operations.
torch::Tensor power_inputs(const nlohmann::json& j) {
  const int64_t n = j["n"];
  const double limit = j["limit"], shift = j["shift"];
  const int power = j["power"];
  std::vector<float> v(n);
  for (int64_t i = 0; i < n; ++i) {
    const double u = (double(i) + 0.5) / double(n);
    const double t = 2.0 * u - 1.0;
    double p = t;
    for (int k = 1; k < power; ++k) p = p * t;
    v[i] = static_cast<float>(std::nearbyint((limit * p + shift) * 1024.0) / 1024.0);
  }
  v[0] = std::floor(v[0]);
  v[n - 1] = std::ceil(v[n - 1]);
  return torch::tensor(v);
}

std::vector<torch::Tensor> golden_inputs(const nlohmann::json& set) {
  std::vector<torch::Tensor> out;
  for (const auto& item : set) {
    if (item.contains("formula")) {
      torch::Tensor x = power_inputs(item);
      torch::Tensor xd = x.to(torch::kDouble);
      EXPECT_EQ(xd.sum().item<double>(), item["sum"].get<double>()) << "formula inputs differ from Python's";
      EXPECT_EQ((xd * xd).sum().item<double>(), item["sum_sq"].get<double>());
      out.push_back(x);
    } else {
      std::vector<float> data;
      for (double d : item["data"]) data.push_back(static_cast<float>(d));
      std::vector<int64_t> shape = item["shape"].get<std::vector<int64_t>>();
      out.push_back(torch::tensor(data).reshape(shape));
    }
  }
  return out;
}

ObserverOptions golden_options(const nlohmann::json& c) {
  ObserverOptions o;
  const auto& s = c["scheme"];
  o.scheme.bits = s["bits"];
  o.scheme.symmetric = s["symmetric"];
  o.scheme.per_channel = s["per_channel"];
  o.scheme.axis = s["axis"];
  o.scheme.is_signed = s["signed"];
  o.scheme.narrow_range = s["narrow_range"];
  const auto& opt = c["options"];
  if (opt.contains("averaging_constant")) o.averaging_constant = opt["averaging_constant"];
  if (opt.contains("bins")) o.bins = opt["bins"];
  if (opt.contains("upsample_rate")) o.upsample_rate = opt["upsample_rate"];
  return o;
}

TEST(ObserverGolden, MatchesPyTorch) {
  nlohmann::json g = load_golden();
  ASSERT_GE(g["cases"].size(), 20u);
  std::map<std::string, std::vector<torch::Tensor>> inputs;
  for (const auto& [name, set] : g["inputs"].items()) inputs[name] = golden_inputs(set);
  std::set<std::string> kinds;
  for (const auto& c : g["cases"]) {
    const std::string name = c["name"];
    SCOPED_TRACE(name);
    auto obs = make_observer(c["observer"].get<std::string>(), golden_options(c));
    kinds.insert(obs->kind());
    for (const auto& x : inputs.at(c["inputs"].get<std::string>())) obs->observe(x);
    // Running range: exact.
    std::vector<double> mn = c["min_val"], mx = c["max_val"];
    torch::Tensor my_min = obs->min_val().reshape({-1}), my_max = obs->max_val().reshape({-1});
    ASSERT_EQ(my_min.numel(), int64_t(mn.size()));
    for (size_t i = 0; i < mn.size(); ++i) {
      EXPECT_EQ(my_min[i].item<float>(), static_cast<float>(mn[i])) << "min_val[" << i << "]";
      EXPECT_EQ(my_max[i].item<float>(), static_cast<float>(mx[i])) << "max_val[" << i << "]";
    }
    QParams qp = obs->qparams();
    std::vector<double> scale = c["scale"];
    std::vector<int64_t> zp = c["zero_point"];
    ASSERT_EQ(qp.scale.numel(), int64_t(scale.size()));
    for (size_t i = 0; i < scale.size(); ++i) {
      EXPECT_NEAR(qp.scale[i].item<float>(), scale[i], kScaleRelTol * scale[i]) << "scale[" << i << "]";
      EXPECT_EQ(qp.zero_point[i].item<int64_t>(), zp[i]) << "zero_point[" << i << "]";
    }
  }
  EXPECT_EQ(kinds.size(), 5u) << "every PyTorch-named observer has golden cases";
}

TEST(ObserverRegistry, UnknownNameListsKnownOnes) {
  try {
    make_observer("min_max", QScheme::uint8_affine());
    FAIL() << "no exception";
  } catch (const UsageError& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("did you mean 'minmax'"), std::string::npos) << msg;
    for (const auto& n : observer_names()) EXPECT_NE(msg.find(n), std::string::npos) << msg;
  }
  EXPECT_EQ(observer_names().size(), 7u);
  for (const auto& n : observer_names()) {
    QScheme s = QScheme::int8_symmetric();
    s.per_channel = n.find("per_channel") != std::string::npos;
    EXPECT_EQ(make_observer(n, s)->kind(), n);
  }
}

TEST(ObserverRegistry, SchemeMustFitTheObserver) {
  EXPECT_THROW(make_observer("minmax", QScheme::int8_symmetric_per_channel()), UsageError);
  EXPECT_THROW(make_observer("histogram", QScheme::int8_symmetric_per_channel()), UsageError);
  EXPECT_THROW(make_observer("per_channel_minmax", QScheme::int8_symmetric()), UsageError);
  ObserverOptions o;
  o.averaging_constant = 0.0;
  EXPECT_THROW(make_observer("moving_average_minmax", o), UsageError);
  o = ObserverOptions{};
  o.percentile = 40;
  EXPECT_THROW(make_observer("percentile", o), UsageError);
}

TEST(Observer, MovingAverageHandWorked) {
  ObserverOptions o;
  o.averaging_constant = 0.5;
  auto obs = make_observer("moving_average_minmax", o);
  EXPECT_FALSE(obs->has_observed());
  obs->observe(torch::tensor({0.0f, 1.0f}));
  EXPECT_TRUE(obs->has_observed());
  obs->observe(torch::tensor({-1.0f, 3.0f}));  // min 0 + 0.5 (-1 - 0), max 1 + 0.5 (3 - 1)
  EXPECT_EQ(obs->min_val().item<float>(), -0.5f);
  EXPECT_EQ(obs->max_val().item<float>(), 2.0f);
  obs->reset();
  EXPECT_FALSE(obs->has_observed());
  EXPECT_EQ(obs->qparams().scale.item<float>(), 1.0f);
}

TEST(Observer, PerChannelAlongAxisOne) {
  auto obs = make_observer("per_channel_minmax", QScheme::int8_symmetric_per_channel(1));
  // [2, 3, 2]: channel c holds values c and -(c + 1) / 2 and 10 * c in sample 1.
  torch::Tensor x = torch::zeros({2, 3, 2});
  for (int c = 0; c < 3; ++c) {
    x[0][c][0] = float(c);
    x[0][c][1] = -(c + 1) / 2.0f;
    x[1][c][0] = 10.0f * c;
  }
  obs->observe(x);
  EXPECT_TRUE(torch::equal(obs->max_val(), torch::tensor({0.0f, 10.0f, 20.0f})));
  EXPECT_TRUE(torch::equal(obs->min_val(), torch::tensor({-0.5f, -1.0f, -1.5f})));
  EXPECT_THROW(obs->observe(torch::zeros({2, 4, 2})), Error);  // channel count changed
  EXPECT_THROW(obs->observe(torch::zeros({5})), Error);        // no axis 1
  obs->reset();
  EXPECT_EQ(obs->min_val().numel(), 0);
}

TEST(Observer, DoesNotRecordGradients) {
  auto obs = make_observer("minmax", QScheme::uint8_affine());
  torch::Tensor x = torch::randn({8}, torch::requires_grad());
  obs->observe(x * 2);
  EXPECT_FALSE(obs->min_val().requires_grad());
  EXPECT_EQ(obs->forward(x).data_ptr(), x.data_ptr());
}

TEST(Observer, HistogramWithoutDataGivesDefaults) {
  auto obs = make_observer("histogram", QScheme::uint8_affine());
  QParams qp = obs->qparams();
  EXPECT_EQ(qp.scale.item<float>(), 1.0f);
  EXPECT_EQ(qp.zero_point.item<int64_t>(), 0);
  obs->observe(torch::tensor({1.0f, std::numeric_limits<float>::infinity(), -2.0f}));  // inf ignored
  EXPECT_EQ(obs->max_val().item<float>(), 1.0f);
  EXPECT_EQ(obs->min_val().item<float>(), -2.0f);
}

TEST(Observer, PercentileClipsTheTails) {
  ObserverOptions o;
  o.percentile = 99.0;
  auto obs = std::dynamic_pointer_cast<PercentileObserverImpl>(make_observer("percentile", o));
  ASSERT_TRUE(obs);
  // 0, 1, ..., 9999: the 1st and 99th percentiles are 100 and 9900 (within a bin of 9999 / 2048).
  obs->observe(torch::arange(10000, torch::kFloat));
  auto [lo, hi] = obs->clip_range();
  const double bin = 9999.0 / 2048;
  EXPECT_NEAR(lo.item<float>(), 100.0, bin);
  EXPECT_NEAR(hi.item<float>(), 9900.0, bin);
  // calculate_qparams widens to 0: uint8 scale = hi / 255.
  EXPECT_FLOAT_EQ(obs->qparams().scale.item<float>(), hi.item<float>() / 255.0f);
  o.percentile = 100.0;
  auto full = std::dynamic_pointer_cast<PercentileObserverImpl>(make_observer("percentile", o));
  full->observe(torch::arange(10000, torch::kFloat));
  EXPECT_NEAR(full->clip_range().second.item<float>(), 9999.0, 1e-3);
}

TEST(Observer, MseBeatsMinMaxWithOutliers) {
  // At 4 bits the rounding error of a wide range outweighs clipping one outlier and the far tail.
  torch::manual_seed(7);
  torch::Tensor x = torch::randn({20000});
  x[0] = 8.0f;
  QScheme s = QScheme::int8_symmetric();
  s.bits = 4;
  ObserverOptions o;
  o.scheme = s;
  auto mse = std::dynamic_pointer_cast<MseObserverImpl>(make_observer("mse", o));
  ASSERT_TRUE(mse);
  mse->observe(x);
  double best = 0;
  auto [lo, hi] = mse->clip_range(&best);
  EXPECT_LT(hi.item<float>(), 5.0f) << "the outlier should be clipped";
  EXPECT_GT(hi.item<float>(), 1.5f) << "the bulk of N(0, 1) should be kept";
  const double full = mse->histogram_mse(calculate_qparams(mse->min_val(), mse->max_val(), s));
  EXPECT_LT(best, full);
  // It is the minimum over its candidates: a few other ranges are not better.
  for (double a : {0.05, 0.3, 0.6, 0.9})
    EXPECT_GE(mse->histogram_mse(calculate_qparams(mse->min_val() * a, mse->max_val() * a, s)), best) << a;
  // And the error it reports is the error of fake-quantizing the actual data (to histogram accuracy).
  QParams qp = mse->qparams();
  torch::Tensor fq = torch::fake_quantize_per_tensor_affine(x, qp.scale.item<double>(), 0, -8, 7);
  const double real = (fq - x).pow(2).mean().item<double>();
  EXPECT_NEAR(best, real, 0.1 * real);
}

TEST(Observer, BuffersSaveAndLoad) {
  auto obs = make_observer("moving_average_per_channel_minmax", QScheme::int8_symmetric_per_channel());
  obs->observe(torch::randn({4, 3, 3, 3}));
  obs->observe(torch::randn({4, 3, 3, 3}) * 2);
  std::stringstream ss;
  torch::save(std::static_pointer_cast<torch::nn::Module>(obs), ss);
  auto fresh = make_observer("moving_average_per_channel_minmax", QScheme::int8_symmetric_per_channel());
  std::shared_ptr<torch::nn::Module> as_module = fresh;
  torch::load(as_module, ss);
  EXPECT_TRUE(torch::equal(fresh->min_val(), obs->min_val()));
  EXPECT_TRUE(torch::equal(fresh->max_val(), obs->max_val()));
  EXPECT_TRUE(torch::equal(fresh->qparams().scale, obs->qparams().scale));

  auto hist = make_observer("histogram", QScheme::uint8_affine());
  hist->observe(torch::randn({500}));
  std::stringstream hs;
  torch::save(std::static_pointer_cast<torch::nn::Module>(hist), hs);
  auto hist2 = make_observer("histogram", QScheme::uint8_affine());
  std::shared_ptr<torch::nn::Module> hm = hist2;
  torch::load(hm, hs);
  EXPECT_TRUE(torch::equal(hist2->qparams().scale, hist->qparams().scale));
}

TEST(Observer, CloneIsDeep) {
  auto obs = make_observer("per_channel_minmax", QScheme::int8_symmetric_per_channel());
  obs->observe(torch::randn({3, 5}));
  auto copy = std::dynamic_pointer_cast<ObserverBase>(obs->clone());
  ASSERT_TRUE(copy);
  EXPECT_EQ(copy->kind(), "per_channel_minmax");
  EXPECT_TRUE(torch::equal(copy->max_val(), obs->max_val()));
  obs->observe(torch::full({3, 5}, 100.0f));
  EXPECT_LT(copy->max_val().max().item<float>(), 100.0f) << "the copy shares storage with the original";
}

}  // namespace
}  // namespace yq::quant
