// Deployment targets (DESIGN.md "Deployment targets"): a quantized model is made for the hardware that
// runs it. The target fixes the grids so that the int8 kernels there compute exactly what fake
// quantization simulated; it is recorded in the qconfig, every quantized checkpoint, the int8 model and
// the exports.
//
//   x86       the CPU default, exact on every x86-64 (AVX2, AVX-512, VNNI, AMX) in our oneDNN engine and in
//             ONNX Runtime: activations (and the image) on 7-bit unsigned grids [0, 127], weights int8
//             symmetric per-channel. Without VNNI both runtimes add two u8 x s8 products in a saturating
//             int16 (vpmaddubsw): 2 x 127 x 128 = 32512 fits, 2 x 255 x 127 = 64770 does not. PyTorch's
//             x86 / fbgemm qconfigs use the same reduce_range.
//   x86-vnni  full 8-bit activations [0, 255]: exact only where VNNI or AMX accumulates in int32.
//   arm       QNNPACK (LibTorch's ARM engine) and ARM int8 runtimes: 8-bit unsigned activations, int8
//             symmetric per-channel weights in the narrow range [-127, 127] (TFLite's int8 rule, which
//             XNNPACK shares). QNNPACK subtracts zero points in int16 and accumulates in int32: exact.
//   tensorrt  int8 symmetric activations and weights, narrow range [-127, 127], zero points 0 (TensorRT's
//             Q/DQ rules). On a CPU its activations cover codes 1..255 of uint8, like x86-vnni.
//
// This header is LibTorch-free; applying a target to a qconfig is QConfigMapping::set_target
// (quant/qconfig.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/cpu.h"

namespace yq::quant {

enum class Target { kX86, kX86Vnni, kArm, kTensorRT };

// All targets, in the order above.
const std::vector<Target>& all_targets();
// "x86", "x86-vnni", "arm", "tensorrt".
std::string target_name(Target t);
// Throws UsageError listing the known names; `key` names where the value came from ("target").
Target parse_target(const std::string& name, const std::string& key = "target");
// One line: the grids the target uses and why.
std::string target_summary(Target t);
// The quantized engine convert uses for the target by default: qnnpack for arm, onednn otherwise.
std::string default_engine(Target t);

// Largest |a| * |w| pair sum an int8 conv can form in one vpmaddubsw int16: 2 x a_max x w_max, with a_max
// the highest activation code (uint8 domain) feeding any int8 conv and w_max the largest |weight code|.
int64_t pair_bound(int64_t a_max, int64_t w_max);
inline constexpr int64_t kInt16Max = 32767;

// Whether int8 convs with this pair bound compute exactly on `cpu` with `engine` ("onednn", "qnnpack",
// or "onnxruntime" for ONNX Runtime's MLAS). `why` says which CPU feature decides it, in one line.
struct Exactness {
  bool exact = true;
  std::string why;
};
Exactness int8_exactness(int64_t pair_bound, const CpuFeatures& cpu, const std::string& engine);

// The pair bound of a target's grids (for `yoloqat info`): x86 32512, the others 64770 or 65280.
int64_t target_pair_bound(Target t);

// The refusal line for a model that is not exact here, naming the file, its target, the CPU feature and
// the way out (target=x86, allow_inexact=true).
std::string inexact_message(const std::string& file, const std::string& target, const Exactness& e);

}  // namespace yq::quant
