#include "deploy/int8_ops.h"

#include <ATen/Parallel.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <fmt/format.h>
#include <torch/torch.h>

#include <algorithm>
#include <cstring>

#include "core/error.h"

#include <cmath>
#include <vector>

#include "quant/scheme.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define YQ_HAVE_VBMI_PATH 1
#endif
#if defined(__SSE2__)
#include <emmintrin.h>
#define YQ_HAVE_SSE2_PATH 1
#endif

namespace yq::deploy {

namespace {

// A registered operator, looked up once.
c10::OperatorHandle op(const char* name, const char* overload) {
  return c10::Dispatcher::singleton().findSchemaOrThrow(name, overload);
}

uint8_t* codes(const at::Tensor& q) {
  return reinterpret_cast<uint8_t*>(q.data_ptr<c10::quint8>());
}

at::MemoryFormat layout_of(const at::Tensor& t) {
  return t.dim() == 4 ? t.suggest_memory_format() : at::MemoryFormat::Contiguous;
}

// A quint8 tensor on `g`, q's shape and layout, uninitialized.
at::Tensor empty_like_on(const at::Tensor& q, const QGrid& g) {
  return at::_empty_affine_quantized(q.sizes(), q.options().dtype(at::kQUInt8), double(g.scale), g.zero_point,
                                     layout_of(q));
}

// The table u -> clamp(zp_out + round(f(v) / s_out)) with v the dequantized (clamped) code.
template <class Fn>
at::Tensor make_table(const QGrid& in, const QGrid& out, Fn&& f) {
  at::Tensor v = at::empty({256}, at::kFloat);
  float* pv = v.data_ptr<float>();
  for (int64_t u = 0; u < 256; ++u)
    pv[u] = quant::dequantize_value(std::clamp(u, in.qmin, in.qmax), in.scale, in.zero_point);
  at::Tensor y = f(v).contiguous();
  const float* py = y.data_ptr<float>();
  at::Tensor table = at::empty({256}, at::kByte);
  uint8_t* pt = table.data_ptr<uint8_t>();
  for (int64_t u = 0; u < 256; ++u)
    pt[u] = uint8_t(quant::quantize_value(py[u], out.scale, out.zero_point, out.qmin, out.qmax));
  return table;
}

void lookup_scalar(const uint8_t* in, uint8_t* out, int64_t n, const uint8_t* table) {
  for (int64_t i = 0; i < n; ++i) out[i] = table[in[i]];
}

#ifdef YQ_HAVE_VBMI_PATH
// 64 lookups per step: two 128-entry permutes (bits 0..6 of the code) and a blend on bit 7.
__attribute__((target("avx512f,avx512bw,avx512vbmi"))) void lookup_vbmi(const uint8_t* in, uint8_t* out,
                                                                        int64_t n, const uint8_t* table) {
  const __m512i t0 = _mm512_loadu_si512(table), t1 = _mm512_loadu_si512(table + 64);
  const __m512i t2 = _mm512_loadu_si512(table + 128), t3 = _mm512_loadu_si512(table + 192);
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) {
    const __m512i idx = _mm512_loadu_si512(in + i);
    const __m512i lo = _mm512_permutex2var_epi8(t0, idx, t1);
    const __m512i hi = _mm512_permutex2var_epi8(t2, idx, t3);
    _mm512_storeu_si512(out + i, _mm512_mask_blend_epi8(_mm512_movepi8_mask(idx), lo, hi));
  }
  lookup_scalar(in + i, out + i, n - i, table);
}

bool have_vbmi() {
  static const bool yes = __builtin_cpu_supports("avx512vbmi") && __builtin_cpu_supports("avx512bw");
  return yes;
}
#endif

void lookup(const uint8_t* in, uint8_t* out, int64_t n, const uint8_t* table) {
#ifdef YQ_HAVE_VBMI_PATH
  if (have_vbmi()) return lookup_vbmi(in, out, n, table);
#endif
  lookup_scalar(in, out, n, table);
}

// ---- float <-> code kernels. The arithmetic is fake quant's (quant::quantize_value): code = zp +
// nearbyint(x * (1 / scale)), clamped; the clamp is applied before rounding (equal for integer bounds)
// so that no float outside int range is converted. The SSE2 path (baseline x86-64) rounds with
// cvtps2dq, which like std::nearbyint uses the current rounding mode (nearest-even by default).

struct CodeMap {
  float inv, lo, hi;  // multiplier, clamp bounds relative to zp
  int zp;
  explicit CodeMap(const QGrid& g)
      : inv(1.0f / g.scale),
        lo(float(g.qmin - g.zero_point)),
        hi(float(g.qmax - g.zero_point)),
        zp(int(g.zero_point)) {}
  uint8_t code(float v) const {  // v already multiplied by inv
    v = v > lo ? v : lo;         // NaN -> lo, as _mm_max_ps(v, lo)
    v = v < hi ? v : hi;
    return uint8_t(zp + int(std::nearbyint(v)));
  }
};

#ifdef YQ_HAVE_SSE2_PATH
// 16 floats (already multiplied) -> 16 codes.
inline __m128i codes16(__m128 v0, __m128 v1, __m128 v2, __m128 v3, const CodeMap& m) {
  const __m128 lo = _mm_set1_ps(m.lo), hi = _mm_set1_ps(m.hi);
  const __m128i zp = _mm_set1_epi32(m.zp);
  auto one = [&](__m128 v) { return _mm_add_epi32(_mm_cvtps_epi32(_mm_min_ps(_mm_max_ps(v, lo), hi)), zp); };
  const __m128i a = _mm_packs_epi32(one(v0), one(v1)), b = _mm_packs_epi32(one(v2), one(v3));
  return _mm_packus_epi16(a, b);
}
#endif

void quantize_row(const float* x, uint8_t* out, int64_t n, const CodeMap& m) {
  int64_t i = 0;
#ifdef YQ_HAVE_SSE2_PATH
  const __m128 inv = _mm_set1_ps(m.inv);
  for (; i + 16 <= n; i += 16) {
    const __m128 v0 = _mm_mul_ps(_mm_loadu_ps(x + i), inv), v1 = _mm_mul_ps(_mm_loadu_ps(x + i + 4), inv);
    const __m128 v2 = _mm_mul_ps(_mm_loadu_ps(x + i + 8), inv),
                 v3 = _mm_mul_ps(_mm_loadu_ps(x + i + 12), inv);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), codes16(v0, v1, v2, v3, m));
  }
#endif
  for (; i < n; ++i) out[i] = m.code(x[i] * m.inv);
}

// out = code of (dq(a) + dq(b)), dq(u) = (u - zp) * scale in float: the fake-quant model's
// fq_out(fq_a(.) + fq_b(.)) for inputs on a's and b's grids.
struct AddMap {
  float sa, sb;
  int za, zb;
  CodeMap out;
  float value(uint8_t a, uint8_t b) const {
    return ((float(a) - float(za)) * sa + (float(b) - float(zb)) * sb) * out.inv;
  }
};

void add_row(const uint8_t* a, const uint8_t* b, uint8_t* out, int64_t n, const AddMap& m) {
  int64_t i = 0;
#ifdef YQ_HAVE_SSE2_PATH
  const __m128i zero = _mm_setzero_si128();
  const __m128 sa = _mm_set1_ps(m.sa), sb = _mm_set1_ps(m.sb), inv = _mm_set1_ps(m.out.inv);
  const __m128 za = _mm_set1_ps(float(m.za)), zb = _mm_set1_ps(float(m.zb));
  // 4 x 4 floats of 16 codes
  auto widen = [&](__m128i u, __m128* f) {
    const __m128i lo = _mm_unpacklo_epi8(u, zero), hi = _mm_unpackhi_epi8(u, zero);
    f[0] = _mm_cvtepi32_ps(_mm_unpacklo_epi16(lo, zero));
    f[1] = _mm_cvtepi32_ps(_mm_unpackhi_epi16(lo, zero));
    f[2] = _mm_cvtepi32_ps(_mm_unpacklo_epi16(hi, zero));
    f[3] = _mm_cvtepi32_ps(_mm_unpackhi_epi16(hi, zero));
  };
  for (; i + 16 <= n; i += 16) {
    __m128 fa[4], fb[4], v[4];
    widen(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a + i)), fa);
    widen(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + i)), fb);
    for (int k = 0; k < 4; ++k)
      v[k] = _mm_mul_ps(
          _mm_add_ps(_mm_mul_ps(_mm_sub_ps(fa[k], za), sa), _mm_mul_ps(_mm_sub_ps(fb[k], zb), sb)), inv);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), codes16(v[0], v[1], v[2], v[3], m.out));
  }
#endif
  for (; i < n; ++i) out[i] = m.out.code(m.value(a[i], b[i]));
}

}  // namespace

at::Tensor clamp_codes(const at::Tensor& q, const QGrid& g) {
  if (g.full_range()) return q;
  return apply_table(q, requant_table(g, g), g);
}

std::string QGrid::to_string() const {
  return fmt::format("scale {:.6g} zp {} [{}, {}]", scale, zero_point, qmin, qmax);
}

QGrid grid_of(const quant::QScheme& scheme, const quant::QParams& qp, const std::string& where) {
  YQ_CHECK_USAGE(!scheme.per_channel && qp.scale.numel() == 1,
                 "{}: the int8 runtime needs per-tensor activation quantizers, found {}", where,
                 scheme.to_string());
  const int64_t shift = scheme.is_signed ? 128 : 0;
  QGrid g;
  g.scale = qp.scale.item<float>();
  g.zero_point = qp.zero_point.item<int64_t>() + shift;
  g.qmin = scheme.quant_min() + shift;
  g.qmax = scheme.quant_max() + shift;
  YQ_CHECK_USAGE(g.qmin >= 0 && g.qmax <= 255 && g.qmin < g.qmax && g.zero_point >= 0 && g.zero_point <= 255,
                 "{}: activation grid {} ({}) does not fit 8 bits", where, g.to_string(), scheme.to_string());
  YQ_CHECK_USAGE(g.scale > 0, "{}: activation scale must be > 0, found {}", where, g.scale);
  return g;
}

QGrid grid_of(const at::Tensor& q) {
  YQ_ASSERT(q.is_quantized() && q.scalar_type() == at::kQUInt8);
  QGrid g;
  g.scale = float(q.q_scale());
  g.zero_point = q.q_zero_point();
  return g;
}

// ---------------------------------------------------------------- engines

void set_quantized_engine(const std::string& name) {
  at::QEngine e;
  if (name == "onednn")
    e = at::QEngine::ONEDNN;
  else if (name == "qnnpack")
    e = at::QEngine::QNNPACK;
  else
    throw UsageError(fmt::format("engine={}: unknown quantized engine (known: onednn, qnnpack)", name));
  const auto& have = at::globalContext().supportedQEngines();
  YQ_CHECK_USAGE(std::find(have.begin(), have.end(), e) != have.end(),
                 "engine={}: this LibTorch was built without it", name);
  if (at::globalContext().qEngine() != e) at::globalContext().setQEngine(e);
}

std::string quantized_engine() {
  switch (at::globalContext().qEngine()) {
    case at::QEngine::ONEDNN:
      return "onednn";
    case at::QEngine::QNNPACK:
      return "qnnpack";
    case at::QEngine::FBGEMM:
      return "fbgemm";
    default:
      return "none";
  }
}

// ---------------------------------------------------------------- quantize / dequantize

at::Tensor qquantize(const at::Tensor& x, const QGrid& g) {
  at::Tensor xf = x.to(at::kFloat);
  const CodeMap m(g);
  if (xf.dim() != 4) {
    xf = xf.contiguous();
    at::Tensor y = at::_empty_affine_quantized(xf.sizes(), xf.options().dtype(at::kQUInt8), double(g.scale),
                                               g.zero_point);
    const float* px = xf.data_ptr<float>();
    uint8_t* py = codes(y);
    at::parallel_for(0, xf.numel(), 1 << 16,
                     [&](int64_t b, int64_t e) { quantize_row(px + b, py + b, e - b, m); });
    return y;
  }
  const int64_t B = xf.size(0), C = xf.size(1), HW = xf.size(2) * xf.size(3);
  at::Tensor y = at::_empty_affine_quantized(xf.sizes(), xf.options().dtype(at::kQUInt8), double(g.scale),
                                             g.zero_point, at::MemoryFormat::ChannelsLast);
  uint8_t* py = codes(y);
  if (xf.is_contiguous(at::MemoryFormat::ChannelsLast)) {
    const float* px = xf.data_ptr<float>();
    at::parallel_for(0, xf.numel(), 1 << 16,
                     [&](int64_t b, int64_t e) { quantize_row(px + b, py + b, e - b, m); });
    return y;
  }
  // NCHW -> NHWC: quantize a block of pixels per channel plane, then interleave the channels.
  xf = xf.contiguous();
  const float* px = xf.data_ptr<float>();
  constexpr int64_t kBlock = 1024;
  const int64_t blocks = (HW + kBlock - 1) / kBlock;
  at::parallel_for(0, B * blocks, 4, [&](int64_t begin, int64_t end) {
    std::vector<uint8_t> tmp(size_t(C * kBlock));
    for (int64_t t = begin; t < end; ++t) {
      const int64_t b = t / blocks, p0 = (t % blocks) * kBlock, n = std::min(kBlock, HW - p0);
      for (int64_t c = 0; c < C; ++c) quantize_row(px + (b * C + c) * HW + p0, tmp.data() + c * n, n, m);
      uint8_t* o = py + (b * HW + p0) * C;
      for (int64_t p = 0; p < n; ++p)
        for (int64_t c = 0; c < C; ++c) o[p * C + c] = tmp[size_t(c * n + p)];
    }
  });
  return y;
}

at::Tensor qquantize_reference(const at::Tensor& x, const QGrid& g) {
  at::Tensor xf = x.to(at::kFloat);
  if (xf.dim() == 4) xf = xf.contiguous(at::MemoryFormat::ChannelsLast);
  return clamp_codes(at::quantize_per_tensor(xf, double(g.scale), g.zero_point, at::kQUInt8), g);
}

at::Tensor qdequantize(const at::Tensor& q) {
  return q.dequantize();
}

at::Tensor qdequantize_cat_nchw(const std::vector<at::Tensor>& qs) {
  YQ_ASSERT(!qs.empty());
  const int64_t B = qs[0].size(0), H = qs[0].size(2), W = qs[0].size(3), HW = H * W;
  std::vector<at::Tensor> in;
  std::vector<std::vector<float>> tables;
  int64_t total_c = 0;
  for (const auto& q : qs) {
    YQ_ASSERT(q.is_quantized() && q.dim() == 4 && q.size(0) == B && q.size(2) == H && q.size(3) == W);
    in.push_back(q.contiguous(at::MemoryFormat::ChannelsLast));
    std::vector<float> t(256);
    for (int u = 0; u < 256; ++u)
      t[size_t(u)] = quant::dequantize_value(u, float(q.q_scale()), q.q_zero_point());
    tables.push_back(std::move(t));
    total_c += q.size(1);
  }
  at::Tensor out = at::empty({B, total_c, H, W}, at::kFloat);
  float* po = out.data_ptr<float>();
  constexpr int64_t kBlock = 64;
  const int64_t blocks = (HW + kBlock - 1) / kBlock;
  at::parallel_for(0, B * blocks, 16, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const int64_t b = t / blocks, p0 = (t % blocks) * kBlock, n = std::min(kBlock, HW - p0);
      int64_t c0 = 0;
      for (size_t k = 0; k < in.size(); ++k) {
        const int64_t C = in[k].size(1);
        const uint8_t* src = codes(in[k]) + (b * HW + p0) * C;
        const float* tab = tables[k].data();
        for (int64_t c = 0; c < C; ++c) {
          float* dst = po + ((b * total_c + c0 + c) * HW + p0);
          for (int64_t p = 0; p < n; ++p) dst[p] = tab[src[p * C + c]];
        }
        c0 += C;
      }
    }
  });
  return out;
}

// ---------------------------------------------------------------- lookup tables

at::Tensor silu_table(const QGrid& in, const QGrid& out) {
  return make_table(in, out, [](const at::Tensor& v) { return at::silu(v); });
}

at::Tensor requant_table(const QGrid& in, const QGrid& out) {
  return make_table(in, out, [](const at::Tensor& v) { return v; });
}

at::Tensor apply_table(const at::Tensor& q_in, const at::Tensor& table, const QGrid& out) {
  YQ_ASSERT(q_in.scalar_type() == at::kQUInt8 && table.numel() == 256 && table.scalar_type() == at::kByte);
  const at::Tensor q = q_in.contiguous(layout_of(q_in));
  at::Tensor y = empty_like_on(q, out);
  const uint8_t* pin = codes(q);
  uint8_t* pout = codes(y);
  const uint8_t* pt = table.contiguous().data_ptr<uint8_t>();
  at::parallel_for(0, q.numel(), 1 << 16,
                   [&](int64_t b, int64_t e) { lookup(pin + b, pout + b, e - b, pt); });
  return y;
}

at::Tensor apply_table_reference(const at::Tensor& q_in, const at::Tensor& table, const QGrid& out) {
  const at::Tensor q = q_in.contiguous(layout_of(q_in));
  at::Tensor y = empty_like_on(q, out);
  const uint8_t* pin = codes(q);
  uint8_t* pout = codes(y);
  const auto t = table.accessor<uint8_t, 1>();
  for (int64_t i = 0; i < q.numel(); ++i) pout[i] = t[pin[i]];
  return y;
}

// ---------------------------------------------------------------- conv

at::Tensor make_qweight(const at::Tensor& codes_in, const at::Tensor& scales) {
  YQ_ASSERT(codes_in.dim() == 4 && scales.numel() == codes_in.size(0));
  const at::Tensor c = codes_in.to(at::kChar).contiguous();
  return at::_make_per_channel_quantized_tensor(c, scales.to(at::kDouble).contiguous(),
                                                at::zeros({scales.numel()}, at::kLong), 0);
}

c10::IValue prepack_conv(const at::Tensor& qweight, const at::Tensor& bias, int64_t stride, int64_t padding) {
  static const c10::OperatorHandle prepack = op("quantized::conv2d_prepack", "");
  torch::jit::Stack st;
  st.emplace_back(qweight);
  st.emplace_back(bias.defined() ? c10::IValue(bias.to(at::kFloat).contiguous()) : c10::IValue());
  st.emplace_back(std::vector<int64_t>{stride, stride});
  st.emplace_back(std::vector<int64_t>{padding, padding});
  st.emplace_back(std::vector<int64_t>{1, 1});
  st.emplace_back(int64_t(1));
  prepack.callBoxed(&st);
  YQ_ASSERT(st.size() == 1);
  return st[0];
}

at::Tensor qconv(const at::Tensor& qx, const c10::IValue& packed, const QGrid& out) {
  static const c10::OperatorHandle conv = op("quantized::conv2d", "new");
  torch::jit::Stack st;
  st.emplace_back(qx.contiguous(at::MemoryFormat::ChannelsLast));
  st.emplace_back(packed);
  st.emplace_back(double(out.scale));
  st.emplace_back(out.zero_point);
  conv.callBoxed(&st);
  YQ_ASSERT(st.size() == 1);
  return clamp_codes(st[0].toTensor(), out);
}

// ---------------------------------------------------------------- junctions

at::Tensor qadd(const at::Tensor& a_in, const at::Tensor& b_in, const QGrid& out) {
  YQ_ASSERT(a_in.sizes() == b_in.sizes() && a_in.scalar_type() == at::kQUInt8 &&
            b_in.scalar_type() == at::kQUInt8);
  const at::Tensor a = a_in.contiguous(layout_of(a_in)), b = b_in.contiguous(layout_of(a_in));
  at::Tensor y = empty_like_on(a, out);
  const AddMap m{float(a.q_scale()), float(b.q_scale()), int(a.q_zero_point()), int(b.q_zero_point()),
                 CodeMap(out)};
  const uint8_t *pa = codes(a), *pb = codes(b);
  uint8_t* py = codes(y);
  at::parallel_for(0, a.numel(), 1 << 15,
                   [&](int64_t s, int64_t e) { add_row(pa + s, pb + s, py + s, e - s, m); });
  return y;
}

at::Tensor qadd_reference(const at::Tensor& a, const at::Tensor& b, const QGrid& out) {
  static const c10::OperatorHandle add = op("quantized::add", "");
  torch::jit::Stack st;
  st.emplace_back(a);
  st.emplace_back(
      b.suggest_memory_format() == a.suggest_memory_format() ? b : b.contiguous(a.suggest_memory_format()));
  st.emplace_back(double(out.scale));
  st.emplace_back(out.zero_point);
  add.callBoxed(&st);
  YQ_ASSERT(st.size() == 1);
  return clamp_codes(st[0].toTensor(), out);
}

at::Tensor qcat(const std::vector<at::Tensor>& xs, const QGrid& out) {
  YQ_ASSERT(!xs.empty());
  std::vector<at::Tensor> in;
  in.reserve(xs.size());
  for (const auto& x : xs) {
    const QGrid g = grid_of(x);
    in.push_back(g.same_values(out) && out.full_range() ? x : apply_table(x, requant_table(g, out), out));
  }
  // All inputs share out's grid now: a plain channels-last copy.
  return at::cat(in, 1);
}

at::Tensor qmaxpool(const at::Tensor& q, int64_t k) {
  return at::max_pool2d(q, {k, k}, {1, 1}, {k / 2, k / 2}, {1, 1});
}

at::Tensor qupsample(const at::Tensor& q, int64_t scale) {
  return at::upsample_nearest2d(q, {q.size(2) * scale, q.size(3) * scale});
}

}  // namespace yq::deploy
