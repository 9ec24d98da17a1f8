// Int8 inference speed: one forward of the fp32 model, of the same model prepared and calibrated (fake
// quantization, what `val` of a PTQ/QAT checkpoint runs) and of its int8 conversion (`yoloqat convert`),
// alternated in one run; prints medians, spread, the ratios to fp32, the int8 file size against fp32 and
// the SQNR of the int8 raw outputs against the fake-quant ones. Random weights (BN statistics made
// non-trivial), calibrated on random images: latency does not depend on the values.
//
// usage: bench_int8 [model=yolov8n] [imgsz=640] [batch=1] [runs=10] [threads=2] [engine=onednn]
//                   [qconfig=quantization.yaml] [target=]
//        bench_int8 caps [the same arguments]
// The second form runs the first once per oneDNN ISA cap this CPU can be lowered to (ONEDNN_MAX_CPU_ISA:
// AVX2, AVX512_CORE, ... and uncapped), each in a child process (oneDNN reads the cap once), and prints
// the fp32 / int8 medians, their ratio and the int8 SQNR per cap in one table. `target=` re-targets the
// qconfig (quant/target.h): target=x86-vnni shows the SQNR collapse of full-range activations under a
// non-VNNI cap.
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "core/cpu.h"
#include "core/fs.h"
#include "core/log.h"
#include "core/process.h"
#include "deploy/int8_model.h"
#include "model/yolov8.h"
#include "quant/prepare.h"

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

torch::Tensor flat(const std::vector<torch::Tensor>& raw) {
  std::vector<torch::Tensor> v;
  for (const auto& r : raw) v.push_back(r.reshape({-1}));
  return torch::cat(v);
}

// `bench_int8 caps ...`: this program under every ISA cap, one table.
int run_caps(int argc, char** argv) {
  using namespace yq;
  std::vector<std::string> args = {self_executable()};
  for (int i = 2; i < argc; ++i) args.push_back(argv[i]);
  std::printf("cpu: %s\n", cpu_hardware().describe().c_str());
  std::printf("%-18s %10s %10s %10s %9s %7s  %s\n", "oneDNN ISA cap", "fp32 ms", "fq ms", "int8 ms",
              "fp32/int8", "SQNR", "exactness");
  for (const std::string& cap : onednn_caps_below(cpu_hardware())) {
    if (cap.empty())
      ::unsetenv("ONEDNN_MAX_CPU_ISA");
    else
      ::setenv("ONEDNN_MAX_CPU_ISA", cap.c_str(), 1);
    const ProcessResult r = run_process(args);
    const auto at = r.out.rfind("RESULT ");
    if (r.exit_code != 0 || at == std::string::npos) {
      std::printf("%-18s failed (exit %d): %s\n", cap.empty() ? "none" : cap.c_str(), r.exit_code,
                  r.err.substr(0, 300).c_str());
      continue;
    }
    double f = 0, fqm = 0, q = 0, db = 0;
    char why[512] = {};
    std::sscanf(r.out.c_str() + at, "RESULT %lf %lf %lf %lf %511[^\n]", &f, &fqm, &q, &db, why);
    std::printf("%-18s %10.1f %10.1f %10.1f %8.2fx %6.1f  %s\n", cap.empty() ? "none" : cap.c_str(), f, fqm,
                q, f / q, db, why);
  }
  ::unsetenv("ONEDNN_MAX_CPU_ISA");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace yq;
  if (argc > 1 && std::string(argv[1]) == "caps") return run_caps(argc, argv);
  const std::string name = argc > 1 ? argv[1] : "yolov8n";
  const int64_t imgsz = argc > 2 ? std::stoi(argv[2]) : 640;
  const int64_t batch = argc > 3 ? std::stoi(argv[3]) : 1;
  const int runs = argc > 4 ? std::stoi(argv[4]) : 10;
  const int threads = argc > 5 ? std::stoi(argv[5]) : 2;
  const std::string engine = argc > 6 ? argv[6] : "onednn";
  const std::string qconfig = argc > 7 ? argv[7] : "quantization.yaml";
  const std::string target = argc > 8 ? argv[8] : "";
  log::set_level("warn");
  at::set_num_threads(threads);
  torch::manual_seed(0);
  model::ModelSpec spec = model::parse_model_name(name, 80);
  model::YoloV8 fp(spec);
  {
    torch::NoGradGuard ng;
    for (const auto& m : fp->modules(false))
      if (auto* bn = m->as<torch::nn::BatchNorm2dImpl>()) {
        bn->weight.uniform_(0.5, 1.5);
        bn->bias.uniform_(-0.2, 0.2);
        bn->running_var.uniform_(0.5, 2.0);
      }
  }
  fp->eval();
  model::YoloV8 fq = model::copy_model(*fp);
  quant::QConfigMapping mapping = quant::QConfigMapping::load(qconfig);
  if (!target.empty()) mapping.set_target(quant::parse_target(target));
  quant::prepare(*fq, mapping);
  fq->eval();
  quant::enable_fake_quant(*fq, false);
  auto x = torch::rand({batch, 3, imgsz, imgsz});
  {
    torch::NoGradGuard ng;
    for (int i = 0; i < 2; ++i) fq->forward_raw(torch::rand({batch, 3, imgsz, imgsz}));
  }
  quant::freeze_quantizers(*fq);
  quant::enable_fake_quant(*fq, true);
  deploy::ConvertOptions opt;
  opt.engine = engine;
  deploy::Int8Model q = deploy::convert(*fq, opt);

  const fs::path file = fs::temp_directory_path() / "bench_int8.int8";
  q.save(file);
  const double file_mb = double(fs::file_size(file)) / 1e6;
  const double fp32_mb = 4.0 * double(model::count_parameters(*fp)) / 1e6;
  fs::remove(file);

  auto time = [&](auto&& f) {
    torch::NoGradGuard ng;
    const auto t0 = std::chrono::steady_clock::now();
    f();
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  };
  auto run_fp = [&] { fp->forward(x); };
  auto run_fq = [&] { fq->forward(x); };
  auto run_q = [&] { q.forward(x); };
  run_fp(), run_fq(), run_q();  // warm-up
  run_q();
  std::vector<double> tf, tfq, tq;
  for (int i = 0; i < runs; ++i) {
    tf.push_back(time(run_fp));
    tfq.push_back(time(run_fq));
    tq.push_back(time(run_q));
  }
  double sqnr = 0;
  {
    torch::NoGradGuard ng;
    auto ref = flat(fq->forward_raw(x)), got = flat(q.forward_raw(x));
    sqnr = 10 * std::log10(ref.pow(2).sum().item<double>() / (ref - got).pow(2).sum().item<double>());
  }
  const quant::Exactness ex = q.exactness(cpu_onednn());
  std::printf("machine: %s; %u hardware threads, LibTorch threads %d, quantized engine %s\n",
              cpu_onednn().describe().c_str(), std::thread::hardware_concurrency(), threads,
              q.engine().c_str());
  std::printf("%s (80 classes), batch %lld at %lldx%lld, %d runs, qconfig %s, target %s; int8 %s: %s\n",
              spec.name.c_str(), (long long)batch, (long long)imgsz, (long long)imgsz, runs, qconfig.c_str(),
              mapping.target() ? quant::target_name(*mapping.target()).c_str() : "(none)",
              ex.exact ? "exact" : "NOT exact", ex.why.c_str());
  auto line = [&](const char* label, const std::vector<double>& t) {
    auto [mn, mx] = std::minmax_element(t.begin(), t.end());
    std::printf("%-10s median %8.1f ms (min %.1f, max %.1f)  fp32 / this %.2fx\n", label, median(t), *mn, *mx,
                median(tf) / median(t));
  };
  line("fp32", tf);
  line("fake-quant", tfq);
  line("int8", tq);
  std::printf("int8 file %.2f MB vs fp32 parameters %.2f MB (%.3f); int8 vs fake-quant raw SQNR %.1f dB\n",
              file_mb, fp32_mb, file_mb / fp32_mb, sqnr);
  std::printf("RESULT %.3f %.3f %.3f %.2f target %s, pair bound %lld: %s\n", median(tf), median(tfq),
              median(tq), sqnr, mapping.target() ? quant::target_name(*mapping.target()).c_str() : "(none)",
              (long long)q.pair_bound(), ex.exact ? "exact" : "NOT exact");
  return 0;
}
