// The CPU this process runs on, as the int8 kernels see it (DESIGN.md "Deployment targets").
//
// Whether an int8 model computes exactly what fake quantization simulated depends on the dot-product
// instruction the kernels use:
//  - x86 with VNNI (AVX512-VNNI, AVX-VNNI) or AMX: vpdpbusd / tdpbusd accumulate u8 x s8 products in int32.
//    Exact for every grid.
//  - x86 without VNNI (AVX2, AVX-512F): vpmaddubsw adds two neighbouring u8 x s8 products into a
//    SATURATING int16. oneDNN (inside LibTorch) and ONNX Runtime's MLAS both use it, so a conv whose input
//    codes reach a_max and weight codes |w_max| is exact only when 2 * a_max * |w_max| <= 32767.
//  - QNNPACK (LibTorch's ARM engine, also built for x86) and ARM dot-product kernels: int32 accumulation.
//
// oneDNN can be capped below what the hardware has with the environment variable ONEDNN_MAX_CPU_ISA
// (or its older name DNNL_MAX_CPU_ISA), read once before its first kernel. The tests use the cap to run
// the AVX2 and AVX-512 paths on a VNNI machine; `onednn` below is the view with the cap applied, which is
// what decides exactness for our oneDNN int8 engine. ONNX Runtime ignores the cap (`hardware`).
#pragma once

#include <string>
#include <vector>

namespace yq {

struct CpuFeatures {
  std::string model;  // "AMD EPYC 7B13", "Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz", or the architecture
  bool x86 = false;   // x86-64
  bool arm = false;   // aarch64
  bool avx2 = false;
  bool avx512f = false;      // AVX-512 foundation
  bool avx512bw = false;     // with AVX512_CORE (F + BW + DQ + VL), oneDNN's avx512_core
  bool avx512_vnni = false;  // vpdpbusd on zmm (Cascade Lake, Ice Lake, Zen 4 and later)
  bool avx_vnni = false;     // vpdpbusd on ymm (Alder Lake, Sapphire Rapids, Zen 5)
  bool amx_int8 = false;     // tdpbusd (Sapphire Rapids and later)
  bool arm_dotprod = false;  // sdot / udot (ARMv8.2 DotProd)
  std::string cap;           // oneDNN's ISA cap from ONEDNN_MAX_CPU_ISA / DNNL_MAX_CPU_ISA ("" = none)

  // An int32-accumulating u8 x s8 dot product is available (VNNI or AMX on x86; any ARM).
  bool int32_dot() const;
  // "avx2 avx512f avx512_vnni" (the features above that are present).
  std::string feature_list() const;
  // One line: model, features, cap.
  std::string describe() const;
};

// What the hardware has (cpuid on x86, /proc/cpuinfo on ARM), ignoring any cap. Cached.
const CpuFeatures& cpu_hardware();
// The hardware as oneDNN dispatches on it: features above the ONEDNN_MAX_CPU_ISA cap removed. Cached
// (the cap is read once, as oneDNN reads it).
const CpuFeatures& cpu_onednn();
// `hw` with the cap `cap` applied (an ISA name as oneDNN spells it, case-insensitive: SSE41, AVX, AVX2,
// AVX2_VNNI, AVX512_CORE, AVX512_CORE_VNNI, AVX512_CORE_BF16, AVX512_CORE_FP16, AVX512_CORE_AMX, ALL;
// "" = no cap). Throws UsageError naming the known names for an unknown one.
CpuFeatures apply_onednn_cap(CpuFeatures hw, const std::string& cap);

// The oneDNN caps that change what runs on `hw` (each lower than the hardware's best ISA, plus the
// uncapped run as ""), lowest first: the ISAs the int8 tests and bench_int8 run under.
std::vector<std::string> onednn_caps_below(const CpuFeatures& hw);

}  // namespace yq
