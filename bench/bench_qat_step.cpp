// QAT training-step cost: one optimizer step (forward, loss, backward, SGD) of the fp32 model and of
// the same model prepared for QAT (fake-quantized folded weights and activations, observers on),
// alternated in one run; prints the medians, the spread and the ratio QAT / fp32 (target <= 1.3). The
// QAT step is also timed with LibTorch's per-tensor fake-quant kernel in place of yoloqat's fused one
// (quant/fused_fake_quant.h), in the same rounds.
//
// usage: bench_qat_step [model=yolov8n] [imgsz=256] [batch=4] [steps=6] [qconfig=quantization.yaml]
//                       [profile=0] [threads=all] [observers=on|frozen]
// profile=N (N >= 1) also runs N more steps of each, alternated, under LibTorch's (legacy CPU) profiler
// and prints the ops by their median self time over the N, fp32 next to QAT: where the extra QAT time
// goes. On a shared machine one profiled step can be slowed several times over; take N >= 3.
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "core/log.h"
#include "model/yolov8.h"
#include "op_profile.h"
#include "quant/fused_fake_quant.h"
#include "quant/prepare.h"

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Self time (ms) per op name of one profiled call of f.
template <class F>
std::map<std::string, double> profile_step(F&& f) {
  std::map<std::string, double> ms;
  for (const auto& [name, t] : yq::bench::profile_ops(std::forward<F>(f))) ms[name] = t.ms;
  return ms;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace yq;
  const std::string name = argc > 1 ? argv[1] : "yolov8n";
  const int64_t imgsz = argc > 2 ? std::stoi(argv[2]) : 256;
  const int64_t batch = argc > 3 ? std::stoi(argv[3]) : 4;
  const int steps = argc > 4 ? std::stoi(argv[4]) : 6;
  const std::string qconfig = argc > 5 ? argv[5] : "quantization.yaml";
  const int profile = argc > 6 ? std::stoi(argv[6]) : 0;
  const int threads = argc > 7 ? std::stoi(argv[7]) : int(std::max(1u, std::thread::hardware_concurrency()));
  // observers=frozen: the quantizer ranges fixed after one observing step, as QAT runs from
  // freeze_observer_epoch on (pre_fq -> SiLU -> act_fq then runs as one op, quant/fused_act.h).
  const bool frozen = argc > 8 && std::string(argv[8]) == "frozen";
  log::set_level("warn");
  at::set_num_threads(threads);
  torch::manual_seed(0);
  model::ModelSpec spec = model::parse_model_name(name, 7);
  model::YoloV8 fp(spec);
  model::YoloV8 qat = model::copy_model(*fp);
  quant::prepare(*qat, quant::QConfigMapping::load(qconfig));
  fp->train();
  qat->train();
  torch::optim::SGD opt_fp(fp->parameters(), torch::optim::SGDOptions(1e-4).momentum(0.9));
  torch::optim::SGD opt_q(qat->parameters(), torch::optim::SGDOptions(1e-4).momentum(0.9));
  auto x = torch::rand({batch, 3, imgsz, imgsz});
  auto step = [&](model::YoloV8& m, torch::optim::SGD& opt) {
    const auto t0 = std::chrono::steady_clock::now();
    opt.zero_grad();
    torch::Tensor loss = torch::zeros({});
    for (const auto& r : m->forward_raw(x)) loss = loss + r.pow(2).mean();
    loss.backward();
    opt.step();
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  };
  // QAT runs twice per round: with yoloqat's fused per-tensor fake quant (the default) and with
  // LibTorch's at::fake_quantize_per_tensor_affine (quant/fused_fake_quant.h), same model.
  auto step_qat = [&](bool fused) {
    quant::set_fused_fake_quant(fused);
    const double ms = step(qat, opt_q);
    quant::set_fused_fake_quant(true);
    return ms;
  };
  step(fp, opt_fp);  // warm-up
  step_qat(true);
  if (frozen) quant::freeze_quantizers(*qat);
  step_qat(false);
  std::vector<double> tf, tq, tn, rq, rn;
  for (int i = 0; i < steps; ++i) {
    tf.push_back(step(fp, opt_fp));
    tq.push_back(step_qat(true));
    tn.push_back(step_qat(false));
    rq.push_back(tq.back() / tf.back());
    rn.push_back(tn.back() / tf.back());
  }
  std::printf(
      "machine: %u hardware threads, LibTorch threads %d; %s (%lld classes), batch %lld at %lldx%lld, "
      "qconfig %s, observers %s\n",
      std::thread::hardware_concurrency(), threads, spec.name.c_str(), (long long)spec.nc, (long long)batch,
      (long long)imgsz, (long long)imgsz, qconfig.c_str(), frozen ? "frozen" : "on");
  auto row = [&](const char* what, const std::vector<double>& t, const std::vector<double>* ratios) {
    auto [lo, hi] = std::minmax_element(t.begin(), t.end());
    std::printf("%-34s median %7.1f ms (min %7.1f, max %7.1f)", what, median(t), *lo, *hi);
    if (ratios)
      std::printf("  ratio to fp32: %.2f (of medians), %.2f (median of per-round ratios)",
                  median(t) / median(tf), median(*ratios));
    std::printf("\n");
  };
  std::printf("%d rounds of fp32, QAT, QAT with LibTorch's fake quant:\n", steps);
  row("fp32 step", tf, nullptr);
  row("QAT step", tq, &rq);
  row("QAT step, LibTorch per-tensor fq", tn, &rn);
  std::printf("ratio QAT / fp32: %.2f\n", median(tq) / median(tf));
  if (profile > 0) {
    // Per op: the median over the profiled steps (an op absent from a step counts 0 there).
    std::map<std::string, std::vector<double>> rf, rq;
    std::vector<double> totf, totq;
    auto record = [](const std::map<std::string, double>& times, int r,
                     std::map<std::string, std::vector<double>>& rows, std::vector<double>& totals) {
      double sum = 0;
      for (const auto& [k, v] : times) {
        rows[k].resize(r, 0.0);
        rows[k].push_back(v);
        sum += v;
      }
      for (auto& [k, v] : rows) v.resize(r + 1, 0.0);
      totals.push_back(sum);
    };
    for (int r = 0; r < profile; ++r) {
      record(profile_step([&] { step(fp, opt_fp); }), r, rf, totf);
      record(profile_step([&] { step(qat, opt_q); }), r, rq, totq);
    }
    std::map<std::string, double> pf, pq;
    for (auto& [k, v] : rf) pf[k] = median(v);
    for (auto& [k, v] : rq) pq[k] = median(v);
    std::vector<std::pair<double, std::string>> rows;
    for (auto& [k, v] : pq) rows.emplace_back(v - (pf.count(k) ? pf[k] : 0.0), k);
    for (auto& [k, v] : pf)
      if (!pq.count(k)) rows.emplace_back(-v, k);
    std::sort(rows.rbegin(), rows.rend());
    std::printf("\nprofiled steps (%d of each), median self time by op (ms): total fp32 %.1f, QAT %.1f\n",
                profile, median(totf), median(totq));
    std::printf("%-48s %10s %10s %10s\n", "op", "fp32", "QAT", "QAT-fp32");
    for (size_t i = 0; i < rows.size() && i < 25; ++i) {
      const std::string& k = rows[i].second;
      const double f = pf.count(k) ? pf[k] : 0.0, q = pq.count(k) ? pq[k] : 0.0;
      std::printf("%-48s %10.1f %10.1f %10.1f\n", k.substr(0, 48).c_str(), f, q, q - f);
    }
  }
  return 0;
}
