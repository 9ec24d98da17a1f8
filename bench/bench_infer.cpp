// Inference cost of model files as `val` / `predict` / `benchmark` run them (deploy::load_inference_model):
// the forwards of all given files alternated in one run at one input size, medians and spread, each
// against the first; profile=1 adds one profiled forward per file and prints its ops by self time (where
// a forward's time goes).
//
// usage: bench_infer FILE[,FILE...] [imgsz=640] [batch=1] [runs=10] [threads=2] [profile=0] [top=15]
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "core/log.h"
#include "deploy/runtime.h"
#include "op_profile.h"

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  using namespace yq;
  if (argc < 2) {
    std::fprintf(stderr,
                 "usage: bench_infer FILE[,FILE...] [imgsz] [batch] [runs] [threads] [profile] [top]\n");
    return 2;
  }
  std::vector<std::string> files;
  {
    std::stringstream ss(argv[1]);
    for (std::string f; std::getline(ss, f, ',');) files.push_back(f);
  }
  const int64_t imgsz = argc > 2 ? std::stoi(argv[2]) : 640;
  const int64_t batch = argc > 3 ? std::stoi(argv[3]) : 1;
  const int runs = argc > 4 ? std::stoi(argv[4]) : 10;
  const int threads = argc > 5 ? std::stoi(argv[5]) : 2;
  const bool profile = argc > 6 && std::string(argv[6]) == "1";
  const size_t top = argc > 7 ? size_t(std::stoi(argv[7])) : 15;
  log::set_level("warn");
  at::set_num_threads(threads);
  std::vector<deploy::InferenceModel> models;
  for (const auto& f : files) models.push_back(deploy::load_inference_model(f));
  torch::manual_seed(0);
  const auto x = torch::rand({batch, 3, imgsz, imgsz});
  auto time = [&](const deploy::InferenceModel& m) {
    const auto t0 = std::chrono::steady_clock::now();
    m.detector.forward(x);
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  };
  for (const auto& m : models) time(m), time(m);  // warm-up
  std::vector<std::vector<double>> t(models.size());
  for (int r = 0; r < runs; ++r)
    for (size_t i = 0; i < models.size(); ++i) t[i].push_back(time(models[i]));
  std::printf("batch %lld at %lldx%lld, %d threads, %d runs alternated\n", (long long)batch, (long long)imgsz,
              (long long)imgsz, threads, runs);
  for (size_t i = 0; i < models.size(); ++i) {
    auto [mn, mx] = std::minmax_element(t[i].begin(), t[i].end());
    std::printf("%-40s %-5s median %8.1f ms (min %.1f, max %.1f)  first / this %.2fx\n", files[i].c_str(),
                models[i].kind.c_str(), median(t[i]), *mn, *mx, median(t[0]) / median(t[i]));
  }
  if (!profile) return 0;
  for (size_t i = 0; i < models.size(); ++i) {
    auto self = bench::profile_ops([&] { models[i].detector.forward(x); });
    std::vector<std::tuple<double, std::string, int64_t>> v;
    double total = 0;
    for (const auto& [name, t] : self) v.emplace_back(t.ms, name, t.calls), total += t.ms;
    std::sort(v.rbegin(), v.rend());
    std::printf("\n%s: profiled forward, %.1f ms of op self time\n", files[i].c_str(), total);
    for (size_t k = 0; k < std::min(top, v.size()); ++k)
      std::printf("  %-45s %8.2f ms %5.1f%% %5lld calls\n", std::get<1>(v[k]).c_str(), std::get<0>(v[k]),
                  100 * std::get<0>(v[k]) / total, (long long)std::get<2>(v[k]));
  }
  return 0;
}
