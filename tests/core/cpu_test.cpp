// CPU feature detection and oneDNN's ISA cap as quant/target.h reads them.
#include <gtest/gtest.h>

#include <string>

#include "core/cpu.h"
#include "core/error.h"

namespace yq {
namespace {

// A VNNI machine with AVX-512 (Cascade Lake / Ice Lake class).
CpuFeatures vnni_machine() {
  CpuFeatures f;
  f.model = "test vnni";
  f.x86 = f.avx2 = f.avx512f = f.avx512bw = f.avx512_vnni = true;
  return f;
}

TEST(Cpu, DetectsThisMachine) {
  const CpuFeatures& hw = cpu_hardware();
  EXPECT_FALSE(hw.model.empty());
  EXPECT_EQ(hw.x86 || hw.arm, !hw.feature_list().empty());
#if defined(__x86_64__)
  EXPECT_TRUE(hw.x86);
  // The features imply each other as the ISA does.
  if (hw.avx512_vnni) EXPECT_TRUE(hw.avx512f);
  if (hw.avx512bw) EXPECT_TRUE(hw.avx512f);
#endif
  // cpu_onednn() is the hardware with the environment's cap; without a cap, the same features.
  if (cpu_onednn().cap.empty()) EXPECT_EQ(cpu_onednn().feature_list(), hw.feature_list());
  std::printf("[ cpu ] %s; oneDNN sees: %s\n", hw.describe().c_str(), cpu_onednn().describe().c_str());
}

TEST(Cpu, CapRemovesTheFeaturesAboveIt) {
  const CpuFeatures hw = vnni_machine();
  EXPECT_TRUE(hw.int32_dot());
  const CpuFeatures avx2 = apply_onednn_cap(hw, "AVX2");
  EXPECT_TRUE(avx2.avx2);
  EXPECT_FALSE(avx2.avx512f || avx2.avx512_vnni || avx2.int32_dot());
  EXPECT_EQ(avx2.cap, "AVX2");
  const CpuFeatures core = apply_onednn_cap(hw, "avx512_core");  // case-insensitive, as oneDNN
  EXPECT_TRUE(core.avx512f && core.avx512bw);
  EXPECT_FALSE(core.int32_dot());
  EXPECT_TRUE(apply_onednn_cap(hw, "AVX512_CORE_VNNI").int32_dot());
  EXPECT_TRUE(apply_onednn_cap(hw, "ALL").int32_dot());
  EXPECT_EQ(apply_onednn_cap(hw, "").cap, "");
  // A cap never adds what the hardware lacks.
  CpuFeatures avx2_only;
  avx2_only.x86 = avx2_only.avx2 = true;
  EXPECT_FALSE(apply_onednn_cap(avx2_only, "AVX512_CORE_AMX").int32_dot());
  // AVX-VNNI (Alder Lake) counts under AVX2_VNNI.
  CpuFeatures alder = avx2_only;
  alder.avx_vnni = true;
  EXPECT_TRUE(apply_onednn_cap(alder, "AVX2_VNNI").int32_dot());
  EXPECT_FALSE(apply_onednn_cap(alder, "AVX2").int32_dot());
}

TEST(Cpu, UnknownCapNamesTheKnownOnes) {
  try {
    apply_onednn_cap(vnni_machine(), "AVX3");
    FAIL();
  } catch (const UsageError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("AVX3"), std::string::npos);
    EXPECT_NE(what.find("AVX512_CORE_VNNI"), std::string::npos);
  }
}

TEST(Cpu, CapsBelowTheBestIsa) {
  EXPECT_EQ(onednn_caps_below(vnni_machine()), (std::vector<std::string>{"AVX2", "AVX512_CORE", ""}));
  CpuFeatures avx2_only;
  avx2_only.x86 = avx2_only.avx2 = true;
  EXPECT_EQ(onednn_caps_below(avx2_only), (std::vector<std::string>{""}));
  CpuFeatures skylake = avx2_only;
  skylake.avx512f = skylake.avx512bw = true;
  EXPECT_EQ(onednn_caps_below(skylake), (std::vector<std::string>{"AVX2", ""}));
  CpuFeatures arm;
  arm.arm = true;
  EXPECT_EQ(onednn_caps_below(arm), (std::vector<std::string>{""}));
}

}  // namespace
}  // namespace yq
