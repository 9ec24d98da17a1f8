#include "quant/target.h"

#include <fmt/format.h>

#include "core/error.h"

namespace yq::quant {

const std::vector<Target>& all_targets() {
  static const std::vector<Target> t = {Target::kX86, Target::kX86Vnni, Target::kArm, Target::kTensorRT};
  return t;
}

std::string target_name(Target t) {
  switch (t) {
    case Target::kX86:
      return "x86";
    case Target::kX86Vnni:
      return "x86-vnni";
    case Target::kArm:
      return "arm";
    case Target::kTensorRT:
      return "tensorrt";
  }
  return "?";
}

Target parse_target(const std::string& name, const std::string& key) {
  std::vector<std::string> names;
  for (Target t : all_targets()) {
    if (target_name(t) == name) return t;
    names.push_back(target_name(t));
  }
  throw UsageError(fmt::format("{}={}: unknown deployment target (known: {}; tflite is not supported yet)",
                               key, name, fmt::join(names, ", ")));
}

std::string target_summary(Target t) {
  switch (t) {
    case Target::kX86:
      return "every x86-64 CPU: 7-bit unsigned activations [0, 127], int8 per-channel weights (no int16 "
             "saturation without VNNI)";
    case Target::kX86Vnni:
      return "x86 with VNNI/AMX only: 8-bit unsigned activations [0, 255], int8 per-channel weights";
    case Target::kArm:
      return "QNNPACK / ARM: 8-bit unsigned activations, int8 per-channel weights in [-127, 127]";
    case Target::kTensorRT:
      return "TensorRT: int8 symmetric activations and weights in [-127, 127], zero points 0";
  }
  return "";
}

std::string default_engine(Target t) {
  return t == Target::kArm ? "qnnpack" : "onednn";
}

int64_t pair_bound(int64_t a_max, int64_t w_max) {
  return 2 * a_max * w_max;
}

int64_t target_pair_bound(Target t) {
  switch (t) {
    case Target::kX86:
      return pair_bound(127, 128);
    case Target::kX86Vnni:
      return pair_bound(255, 128);
    case Target::kArm:
      return pair_bound(255, 127);
    case Target::kTensorRT:
      return pair_bound(255, 127);  // codes -127..127 are 1..255 in uint8
  }
  return 0;
}

Exactness int8_exactness(int64_t bound, const CpuFeatures& cpu, const std::string& engine) {
  Exactness e;
  if (engine == "qnnpack") {
    e.why = "QNNPACK accumulates in int32";
    return e;
  }
  const std::string who = engine == "onnxruntime" ? "ONNX Runtime (MLAS)" : "oneDNN";
  if (!cpu.x86) {
    e.why = fmt::format("{} on {} accumulates in int32", who, cpu.model);
    return e;
  }
  if (cpu.int32_dot()) {
    e.why = fmt::format("{} uses {} (int32 accumulation)", who,
                        cpu.amx_int8 ? "AMX" : (cpu.avx512_vnni ? "AVX512-VNNI" : "AVX-VNNI"));
    return e;
  }
  const std::string lacking = cpu.cap.empty() ? fmt::format("this CPU ({}) has no VNNI", cpu.model)
                                              : fmt::format("oneDNN is capped at {} (no VNNI)", cpu.cap);
  if (bound <= kInt16Max) {
    e.why = fmt::format("{}; pair sums reach {} <= {} in vpmaddubsw's int16", lacking, bound, kInt16Max);
    return e;
  }
  e.exact = false;
  e.why = fmt::format(
      "{}: {} adds u8 x s8 product pairs in a saturating int16 (vpmaddubsw) and this model's pairs reach {} "
      "> {}",
      lacking, who, bound, kInt16Max);
  return e;
}

std::string inexact_message(const std::string& file, const std::string& target, const Exactness& e) {
  return fmt::format(
      "{} (target {}) is not exact on this CPU: {}. Quantize with target=x86 (exact on every x86-64), or "
      "pass allow_inexact=true to run it anyway",
      file, target.empty() ? "unrecorded" : target, e.why);
}

}  // namespace yq::quant
