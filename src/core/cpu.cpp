#include "core/cpu.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include "core/error.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define YQ_X86 1
#endif

namespace yq {

namespace {

// oneDNN's cpu_isa_t names in the order of its ISA hierarchy (the values ONEDNN_MAX_CPU_ISA takes).
const std::vector<std::string> kIsaNames = {"SSE41",
                                            "AVX",
                                            "AVX2",
                                            "AVX2_VNNI",
                                            "AVX512_CORE",
                                            "AVX512_CORE_VNNI",
                                            "AVX512_CORE_BF16",
                                            "AVX512_CORE_FP16",
                                            "AVX512_CORE_AMX",
                                            "ALL"};
enum Isa { kSse41, kAvx, kAvx2, kAvx2Vnni, kAvx512Core, kAvx512CoreVnni, kBf16, kFp16, kAmx, kAll };

std::string upper(std::string s) {
  for (char& c : s) c = char(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

#ifdef YQ_X86
uint64_t xgetbv0() {
  uint32_t lo = 0, hi = 0;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (uint64_t(hi) << 32) | lo;
}

CpuFeatures detect_x86() {
  CpuFeatures f;
  f.x86 = true;
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (__get_cpuid(1, &a, &b, &c, &d) == 0) return f;
  const bool osxsave = (c >> 27) & 1;
  const uint64_t xcr0 = osxsave ? xgetbv0() : 0;
  const bool ymm = (xcr0 & 0x6) == 0x6, zmm = ymm && (xcr0 & 0xe0) == 0xe0;
  const bool amx_os = (xcr0 & 0x60000) == 0x60000;
  if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
    f.avx2 = ymm && ((b >> 5) & 1);
    f.avx512f = zmm && ((b >> 16) & 1);
    f.avx512bw = f.avx512f && ((b >> 30) & 1) && ((b >> 17) & 1) && ((b >> 31) & 1);  // BW, DQ, VL
    f.avx512_vnni = f.avx512f && ((c >> 11) & 1);
    f.amx_int8 = amx_os && ((d >> 25) & 1) && ((d >> 24) & 1);
    if (a >= 1 && __get_cpuid_count(7, 1, &a, &b, &c, &d)) f.avx_vnni = ymm && ((a >> 4) & 1);
  }
  // Brand string (leaves 0x80000002..4).
  unsigned max_ext = __get_cpuid_max(0x80000000, nullptr);
  if (max_ext >= 0x80000004) {
    char brand[49] = {};
    for (unsigned i = 0; i < 3; ++i) {
      unsigned r[4];
      __get_cpuid(0x80000002 + i, &r[0], &r[1], &r[2], &r[3]);
      std::memcpy(brand + 16 * i, r, 16);
    }
    f.model = brand;
    while (!f.model.empty() && f.model.back() == ' ') f.model.pop_back();
    f.model.erase(0, f.model.find_first_not_of(' '));
  }
  if (f.model.empty()) f.model = "x86-64";
  return f;
}
#endif

CpuFeatures detect_other() {
  CpuFeatures f;
#if defined(__aarch64__)
  f.arm = true;
  f.model = "aarch64";
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("Features", 0) == 0 && line.find(" asimddp") != std::string::npos) f.arm_dotprod = true;
    if (line.rfind("model name", 0) == 0 || line.rfind("Model", 0) == 0) {
      const auto colon = line.find(':');
      if (colon != std::string::npos) f.model = line.substr(colon + 2);
    }
  }
#else
  f.model = "unknown architecture";
#endif
  return f;
}

CpuFeatures detect() {
#ifdef YQ_X86
  CpuFeatures f = detect_x86();
#else
  CpuFeatures f = detect_other();
#endif
  return f;
}

std::string env_cap() {
  for (const char* name : {"ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA"})
    if (const char* v = std::getenv(name); v && *v) return v;
  return "";
}

// The best ISA oneDNN would pick on `f` (for onednn_caps_below).
int best_isa(const CpuFeatures& f) {
  if (f.amx_int8 && f.avx512_vnni) return kAmx;
  if (f.avx512_vnni) return kAvx512CoreVnni;
  if (f.avx512bw) return kAvx512Core;
  if (f.avx_vnni) return kAvx2Vnni;
  if (f.avx2) return kAvx2;
  return kAvx;
}

}  // namespace

bool CpuFeatures::int32_dot() const {
  return arm || avx512_vnni || avx_vnni || amx_int8;
}

std::string CpuFeatures::feature_list() const {
  std::vector<std::string> v;
  if (x86) v.push_back("x86-64");
  if (arm) v.push_back("aarch64");
  if (avx2) v.push_back("avx2");
  if (avx512f) v.push_back("avx512f");
  if (avx512bw) v.push_back("avx512bw");
  if (avx512_vnni) v.push_back("avx512_vnni");
  if (avx_vnni) v.push_back("avx_vnni");
  if (amx_int8) v.push_back("amx_int8");
  if (arm_dotprod) v.push_back("dotprod");
  return fmt::format("{}", fmt::join(v, " "));
}

std::string CpuFeatures::describe() const {
  return fmt::format("{} ({}){}", model, feature_list(), cap.empty() ? "" : ", oneDNN capped at " + cap);
}

CpuFeatures apply_onednn_cap(CpuFeatures f, const std::string& cap_in) {
  if (cap_in.empty()) return f;
  const std::string cap = upper(cap_in);
  const auto it = std::find(kIsaNames.begin(), kIsaNames.end(), cap);
  YQ_CHECK_USAGE(it != kIsaNames.end(), "ONEDNN_MAX_CPU_ISA={}: unknown ISA (known: {})", cap_in,
                 fmt::join(kIsaNames, ", "));
  const int level = int(it - kIsaNames.begin());
  f.cap = cap;
  if (!f.x86 || level == kAll) return f;
  f.avx2 = f.avx2 && level >= kAvx2;
  f.avx_vnni = f.avx_vnni && (level == kAvx2Vnni || level >= kFp16);
  f.avx512f = f.avx512f && level >= kAvx512Core;
  f.avx512bw = f.avx512bw && level >= kAvx512Core;
  f.avx512_vnni = f.avx512_vnni && level >= kAvx512CoreVnni;
  f.amx_int8 = f.amx_int8 && level >= kAmx;
  return f;
}

const CpuFeatures& cpu_hardware() {
  static const CpuFeatures f = detect();
  return f;
}

const CpuFeatures& cpu_onednn() {
  static const CpuFeatures f = apply_onednn_cap(cpu_hardware(), env_cap());
  return f;
}

std::vector<std::string> onednn_caps_below(const CpuFeatures& hw) {
  std::vector<std::string> caps;
  if (hw.x86) {
    const int best = best_isa(hw);
    for (int isa : {kAvx2, kAvx512Core, kAvx512CoreVnni})
      if (isa < best && (isa != kAvx512Core || hw.avx512bw)) caps.push_back(kIsaNames[size_t(isa)]);
  }
  caps.push_back("");
  return caps;
}

}  // namespace yq
