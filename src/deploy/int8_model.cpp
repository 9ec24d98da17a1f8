#include "deploy/int8_model.h"

#include <fmt/format.h>
#include <torch/csrc/jit/serialization/pickle.h>
#include <torch/torch.h>
#include <zlib.h>

#include <array>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>

#include "core/error.h"
#include "core/log.h"
#include "deploy/int8_ops.h"
#include "model/anchors.h"
#include "model/checkpoint.h"
#include "quant/fusion.h"
#include "quant/prepare.h"

namespace yq::deploy {

namespace {

// ================================================================ stored parameters

// One conv as the file stores it.
struct ConvParams {
  at::Tensor weight;  // [c2, c1, k, k]: int8 codes when `scale` is defined, else float
  at::Tensor scale;   // [c2] float32 per-channel weight scales (zero points 0); undefined = float weight
  at::Tensor bias;    // [c2] float32
  int64_t stride = 1, padding = 0;
  bool silu = true;          // ConvBnAct (true) or the head's plain final conv (false)
  std::optional<QGrid> pre;  // ConvBnAct: the conv output's grid (pre_fq), which the SiLU table reads
  std::optional<QGrid> out;  // the output grid: after SiLU (act_fq), or the head conv's act_fq
  std::string note;          // why the weight stays float (report only)
};

// Everything a converted model is made of, by layer name.
struct Params {
  std::optional<QGrid> input;
  std::map<std::string, ConvParams> convs;
  std::map<std::string, std::optional<QGrid>> junctions;  // adds and concats
};

nlohmann::json grid_json(const std::optional<QGrid>& g) {
  if (!g) return nullptr;
  return {{"scale", g->scale}, {"zero_point", g->zero_point}, {"qmin", g->qmin}, {"qmax", g->qmax}};
}

std::optional<QGrid> grid_from_json(const nlohmann::json& j) {
  if (j.is_null()) return std::nullopt;
  QGrid g;
  g.scale = j.at("scale").get<float>();
  g.zero_point = j.at("zero_point").get<int64_t>();
  g.qmin = j.at("qmin").get<int64_t>();
  g.qmax = j.at("qmax").get<int64_t>();
  YQ_CHECK(g.scale > 0 && g.qmin >= 0 && g.qmax <= 255 && g.qmin < g.qmax && g.zero_point >= 0 &&
               g.zero_point <= 255,
           "invalid grid {}", j.dump());
  return g;
}

// ---------------------------------------------------------------- from a prepared model

std::optional<QGrid> grid_of_fq(quant::FakeQuantize& fq, const std::string& where) {
  if (fq.is_empty()) return std::nullopt;
  return grid_of(fq->scheme(), fq->qparams(), where);
}

// Weight w [c2, ...] on weight_fq's grid: int8 codes with zero points 0 when every code minus its
// zero point fits -128..127 (always for symmetric schemes), else the fake-quantized float weight.
void set_weight(ConvParams& p, const at::Tensor& w, quant::FakeQuantize& wfq, const std::string& name) {
  if (wfq.is_empty()) {
    p.weight = w.detach().clone();
    p.note = "no weight quantizer";
    return;
  }
  const quant::QParams qp = wfq->qparams();
  const int64_t c2 = w.size(0);
  const at::Tensor codes = quant::quantize_reference(w.detach(), qp, wfq->scheme());  // int64
  const at::Tensor zp = qp.zero_point.reshape({-1}).expand({c2}).view({-1, 1, 1, 1});
  const at::Tensor scale = qp.scale.reshape({-1}).expand({c2}).to(at::kFloat).contiguous();
  const at::Tensor rel = codes - zp;
  if (rel.min().item<int64_t>() >= -128 && rel.max().item<int64_t>() <= 127) {
    p.weight = rel.to(at::kChar).contiguous();
    p.scale = scale.clone();
  } else {
    p.weight = rel.to(at::kFloat) * scale.view({-1, 1, 1, 1});
    p.note = "weight codes minus zero point exceed int8";
    log::warn("convert: {}: weight scheme {} does not fit int8 with zero point 0; its conv runs in float",
              name, wfq->scheme().to_string());
  }
}

ConvParams conv_params(model::ConvBnActImpl& c, const std::string& name) {
  ConvParams p;
  torch::NoGradGuard ng;
  quant::FusedConv f = quant::fold_conv_bn(c.conv->weight, {}, *c.bn);
  set_weight(p, f.weight, c.weight_fq, name);
  p.bias = f.bias.detach().to(at::kFloat).contiguous();
  p.stride = c.options().s();
  p.padding = c.options().k() / 2;
  p.silu = true;
  p.pre = grid_of_fq(c.pre_fq, name + ".pre_fq");
  p.out = grid_of_fq(c.act_fq, name + ".act_fq");
  return p;
}

ConvParams head_params(torch::nn::Conv2dImpl& conv, quant::FakeQuantize& wfq, quant::FakeQuantize& afq,
                       const std::string& name) {
  ConvParams p;
  torch::NoGradGuard ng;
  set_weight(p, conv.weight, wfq, name);
  p.bias = conv.bias.detach().to(at::kFloat).contiguous();
  p.stride = conv.options.stride()->at(0);
  p.padding = conv.options.kernel_size()->at(0) / 2;
  p.silu = false;
  p.out = grid_of_fq(afq, name + ".act_fq");
  return p;
}

std::string head_name(model::YoloV8Impl& m, bool box, size_t level, int idx) {
  return fmt::format("model.{}.{}.{}.{}", m.layers().size() - 1, box ? "cv2" : "cv3", level, idx);
}

Params extract(model::YoloV8Impl& m) {
  YQ_CHECK_USAGE(quant::is_prepared(m),
                 "convert needs a quantized (PTQ or QAT) model; this one has no quantizers (calibrate or qat "
                 "first)");
  Params p;
  p.input = grid_of_fq(m.input_fq, "input_fq");
  for (const auto& item : m.named_modules("", /*include_self=*/false)) {
    torch::nn::Module* mod = item.value().get();
    if (auto* c = mod->as<model::ConvBnActImpl>())
      p.convs[item.key()] = conv_params(*c, item.key());
    else if (auto* a = mod->as<model::AddImpl>())
      p.junctions[item.key()] = grid_of_fq(a->out_fq, item.key() + ".out_fq");
    else if (auto* k = mod->as<model::ConcatImpl>())
      p.junctions[item.key()] = grid_of_fq(k->out_fq, item.key() + ".out_fq");
  }
  auto det = m.detect();
  for (size_t i = 0; i < size_t(det->nl()); ++i) {
    for (bool box : {true, false}) {
      auto& seq = *(box ? det->cv2 : det->cv3)->ptr(i)->as<torch::nn::SequentialImpl>();
      auto& wfq = box ? det->box_weight_fq[i] : det->cls_weight_fq[i];
      auto& afq = box ? det->box_act_fq[i] : det->cls_act_fq[i];
      const std::string name = head_name(m, box, i, 2);
      p.convs[name] = head_params(*seq.ptr(2)->as<torch::nn::Conv2dImpl>(), wfq, afq, name);
    }
  }
  return p;
}

// ================================================================ runtime ops

at::Tensor to_float(const at::Tensor& x) {
  return x.is_quantized() ? qdequantize(x) : x;
}

// One conv (ConvBnAct or the head's final conv) as the fake-quant model computes it:
//   ConvBnAct: fq_act(silu(fq_pre(conv(x, W_q) + b)));  head: fq_out(conv(x, W_q) + b)
// in int8 (quantized::conv2d, then the SiLU table) when the input is quantized, the weight is int8 and
// the output grids are known; in float otherwise.
class ConvOp {
 public:
  ConvOp() = default;
  explicit ConvOp(const ConvParams& p) : p_(p) {
    const bool grids = p.silu ? p.pre.has_value() : p.out.has_value();
    if (p.scale.defined() && grids)
      packed_ = prepack_conv(make_qweight(p.weight, p.scale), p.bias, p.stride, p.padding);
    if (p.silu && p.pre && p.out) table_ = silu_table(*p.pre, *p.out);
  }

  bool int8() const { return !packed_.isNone(); }

  at::Tensor forward(const at::Tensor& x) {
    if (x.is_quantized() && int8()) {
      if (!p_.silu) return qconv(x, packed_, *p_.out);
      const at::Tensor y = qconv(x, packed_, *p_.pre);
      return p_.out ? apply_table(y, table_, *p_.out) : at::silu(qdequantize(y));
    }
    at::Tensor y =
        at::conv2d(to_float(x), float_weight(), p_.bias, {p_.stride, p_.stride}, {p_.padding, p_.padding});
    if (!p_.silu) return p_.out ? qquantize(y, *p_.out) : y;
    if (p_.pre) {
      const at::Tensor q = qquantize(y, *p_.pre);
      return p_.out ? apply_table(q, table_, *p_.out) : at::silu(qdequantize(q));
    }
    y = at::silu(y);
    return p_.out ? qquantize(y, *p_.out) : y;
  }

 private:
  // The weight the fake-quant model uses: codes * scale (dequantized once, on first use).
  const at::Tensor& float_weight() {
    if (!wf_.defined())
      wf_ = p_.scale.defined() ? p_.weight.to(at::kFloat) * p_.scale.view({-1, 1, 1, 1}) : p_.weight;
    return wf_;
  }

  ConvParams p_;
  c10::IValue packed_;  // quantized::conv2d_prepack's object (None: the conv runs in float)
  at::Tensor table_;    // SiLU table pre -> out
  at::Tensor wf_;
};

// Residual add or concat with an optional output grid.
class JunctionOp {
 public:
  JunctionOp() = default;
  explicit JunctionOp(std::optional<QGrid> out) : out_(out) {}

  at::Tensor add(const at::Tensor& a, const at::Tensor& b) const {
    if (out_ && a.is_quantized() && b.is_quantized()) return qadd(a, b, *out_);
    return finish(to_float(a) + to_float(b));
  }
  at::Tensor cat(const std::vector<at::Tensor>& xs) const {
    bool all_q = true;
    for (const auto& x : xs) all_q = all_q && x.is_quantized();
    if (out_ && all_q) return qcat(xs, *out_);
    std::vector<at::Tensor> f;
    for (const auto& x : xs) f.push_back(to_float(x));
    return finish(at::cat(f, 1));
  }

 private:
  at::Tensor finish(const at::Tensor& y) const { return out_ ? qquantize(y, *out_) : y; }
  std::optional<QGrid> out_;
};

// One layer of the table (all but Detect).
class Layer {
 public:
  virtual ~Layer() = default;
  virtual at::Tensor run(const std::vector<at::Tensor>& in) = 0;
};

class ConvLayer : public Layer {
 public:
  explicit ConvLayer(ConvOp c) : conv_(std::move(c)) {}
  at::Tensor run(const std::vector<at::Tensor>& in) override { return conv_.forward(in[0]); }

 private:
  ConvOp conv_;
};

class C2fLayer : public Layer {
 public:
  struct Bottleneck {
    ConvOp cv1, cv2;
    std::optional<JunctionOp> add;
  };
  C2fLayer(ConvOp cv1, std::vector<Bottleneck> m, JunctionOp cat, ConvOp cv2)
      : cv1_(std::move(cv1)), m_(std::move(m)), cat_(std::move(cat)), cv2_(std::move(cv2)) {}

  at::Tensor run(const std::vector<at::Tensor>& in) override {
    std::vector<at::Tensor> ys = cv1_.forward(in[0]).chunk(2, 1);  // 2 x [B, c, H, W]
    for (auto& b : m_) {
      at::Tensor h = b.cv2.forward(b.cv1.forward(ys.back()));
      ys.push_back(b.add ? b.add->add(ys.back(), h) : h);
    }
    return cv2_.forward(cat_.cat(ys));
  }

 private:
  ConvOp cv1_;
  std::vector<Bottleneck> m_;
  JunctionOp cat_;
  ConvOp cv2_;
};

class SPPFLayer : public Layer {
 public:
  SPPFLayer(ConvOp cv1, int64_t k, JunctionOp cat, ConvOp cv2)
      : cv1_(std::move(cv1)), k_(k), cat_(std::move(cat)), cv2_(std::move(cv2)) {}

  at::Tensor run(const std::vector<at::Tensor>& in) override {
    const at::Tensor x = cv1_.forward(in[0]);
    const at::Tensor y1 = qmaxpool(x, k_), y2 = qmaxpool(y1, k_), y3 = qmaxpool(y2, k_);
    return cv2_.forward(cat_.cat({x, y1, y2, y3}));
  }

 private:
  ConvOp cv1_;
  int64_t k_;
  JunctionOp cat_;
  ConvOp cv2_;
};

class UpsampleLayer : public Layer {
 public:
  explicit UpsampleLayer(int64_t s) : s_(s) {}
  at::Tensor run(const std::vector<at::Tensor>& in) override { return qupsample(in[0], s_); }

 private:
  int64_t s_;
};

class ConcatLayer : public Layer {
 public:
  explicit ConcatLayer(JunctionOp cat) : cat_(std::move(cat)) {}
  at::Tensor run(const std::vector<at::Tensor>& in) override { return cat_.cat(in); }

 private:
  JunctionOp cat_;
};

// Detect's convs: per level a box and a class branch of three convs each; raw float outputs.
class HeadLayer {
 public:
  std::vector<std::array<ConvOp, 3>> box, cls;  // [nl]

  std::vector<at::Tensor> run(const std::vector<at::Tensor>& feats) {
    std::vector<at::Tensor> out;
    for (size_t i = 0; i < feats.size(); ++i) {
      auto branch = [&](std::array<ConvOp, 3>& c) {
        return c[2].forward(c[1].forward(c[0].forward(feats[i])));
      };
      const at::Tensor b = branch(box[i]), c = branch(cls[i]);
      out.push_back(b.is_quantized() && c.is_quantized()
                        ? qdequantize_cat_nchw({b, c})
                        : at::cat({to_float(b), to_float(c)}, 1).contiguous());  // [B, 64 + nc, H, W]
    }
    return out;
  }
};

std::string grid_text(const std::optional<QGrid>& g) {
  return g ? g->to_string() : "float";
}

}  // namespace

// ================================================================ the graph

struct Int8Graph {
  model::ModelSpec spec;
  std::vector<std::string> names;
  std::vector<int64_t> strides;
  std::string engine;
  nlohmann::json meta = nlohmann::json::object();
  Params params;  // what save() writes
  std::vector<model::LayerInfo> info;
  std::vector<bool> keep;                      // output needed by a later layer
  std::vector<std::unique_ptr<Layer>> layers;  // all but Detect
  HeadLayer head;
  std::vector<Int8LayerReport> report;
};

namespace {

// Builds the runtime layers by walking `skel`'s layer table (a prepared model, or one rebuilt from a
// file's spec: only its structure is used) with the parameters `p`.
std::unique_ptr<Int8Graph> build(model::YoloV8Impl& skel, Params p, const std::string& engine) {
  set_quantized_engine(engine);  // the weights are packed for this engine
  auto g = std::make_unique<Int8Graph>();
  g->spec = skel.spec();
  g->names = skel.names();
  g->strides = skel.strides();
  g->engine = engine;
  g->info = skel.layers();

  auto conv = [&](const std::string& name) {
    auto it = p.convs.find(name);
    YQ_CHECK(it != p.convs.end(), "no parameters for conv {}", name);
    const ConvParams& c = it->second;
    ConvOp op(c);
    const std::string kind = c.silu ? "conv" : "head";
    std::string detail = op.int8() ? fmt::format("int8 weights; out {}", grid_text(c.silu ? c.pre : c.out))
                                   : (c.note.empty() ? "float: no output grid" : "float: " + c.note);
    if (c.silu && c.out) detail += fmt::format("; SiLU table -> {}", c.out->to_string());
    g->report.push_back({name, kind, op.int8(), detail});
    return op;
  };
  auto junction = [&](const std::string& name, const std::string& kind) {
    auto it = p.junctions.find(name);
    YQ_CHECK(it != p.junctions.end(), "no parameters for {} {}", kind, name);
    g->report.push_back({name, kind, it->second.has_value(), grid_text(it->second)});
    return JunctionOp(it->second);
  };

  if (p.input) g->report.push_back({"input", "input", true, p.input->to_string()});
  const size_t n = g->info.size();
  for (size_t i = 0; i + 1 < n; ++i) {
    const std::string name = "model." + std::to_string(i);
    torch::nn::Module* m = skel.model->ptr(i).get();
    if (m->as<model::ConvBnActImpl>()) {
      g->layers.push_back(std::make_unique<ConvLayer>(conv(name)));
    } else if (auto* c2f = m->as<model::C2fImpl>()) {
      ConvOp cv1 = conv(name + ".cv1");
      std::vector<C2fLayer::Bottleneck> bs;
      for (size_t j = 0; j < c2f->m->size(); ++j) {
        const std::string bn = fmt::format("{}.m.{}", name, j);
        C2fLayer::Bottleneck b{conv(bn + ".cv1"), conv(bn + ".cv2"), std::nullopt};
        if (c2f->m->ptr(j)->as<model::BottleneckImpl>()->has_residual()) b.add = junction(bn + ".add", "add");
        bs.push_back(std::move(b));
      }
      JunctionOp cat = junction(name + ".cat", "concat");
      g->layers.push_back(
          std::make_unique<C2fLayer>(std::move(cv1), std::move(bs), cat, conv(name + ".cv2")));
    } else if (auto* sppf = m->as<model::SPPFImpl>()) {
      ConvOp cv1 = conv(name + ".cv1");
      JunctionOp cat = junction(name + ".cat", "concat");
      g->layers.push_back(
          std::make_unique<SPPFLayer>(std::move(cv1), sppf->m->kernel(), cat, conv(name + ".cv2")));
    } else if (auto* up = m->as<model::UpsampleImpl>()) {
      g->layers.push_back(std::make_unique<UpsampleLayer>(up->scale()));
    } else if (m->as<model::ConcatImpl>()) {
      g->layers.push_back(std::make_unique<ConcatLayer>(junction(name, "concat")));
    } else {
      YQ_ASSERT(false);
    }
  }
  const int64_t nl = skel.detect()->nl();
  for (int64_t i = 0; i < nl; ++i) {
    for (bool box : {true, false}) {
      std::array<ConvOp, 3> b;
      for (int k = 0; k < 3; ++k) b[k] = conv(head_name(skel, box, i, k));
      (box ? g->head.box : g->head.cls).push_back(std::move(b));
    }
  }
  g->keep.assign(n, false);
  for (size_t i = 0; i < n; ++i)
    for (int64_t f : g->info[i].from)
      if (f != -1) g->keep[f < 0 ? int64_t(i) + f : f] = true;
  g->params = std::move(p);
  return g;
}

// ---------------------------------------------------------------- file container

constexpr char kMagic[12] = {'Y', 'O', 'L', 'O', 'Q', 'A', 'T', '-', 'I', 'N', 'T', '8'};
constexpr size_t kPrefix = sizeof(kMagic) + 4 + 8 + 4;  // magic, version, length, crc

template <class T>
void put_le(std::string& s, T v) {
  for (size_t i = 0; i < sizeof(T); ++i) s.push_back(char((uint64_t(v) >> (8 * i)) & 0xff));
}

template <class T>
T get_le(const char* p) {
  uint64_t v = 0;
  for (size_t i = 0; i < sizeof(T); ++i) v |= uint64_t(uint8_t(p[i])) << (8 * i);
  return T(v);
}

uint32_t crc_of(const char* data, size_t n) {
  uLong crc = crc32(0L, Z_NULL, 0);
  while (n > 0) {
    const uInt chunk = uInt(std::min<size_t>(n, 1u << 30));
    crc = crc32(crc, reinterpret_cast<const Bytef*>(data), chunk);
    data += chunk, n -= chunk;
  }
  return uint32_t(crc);
}

}  // namespace

// ================================================================ Int8Model

Int8Model::Int8Model(std::unique_ptr<Int8Graph> g) : g_(std::move(g)) {}
Int8Model::Int8Model(Int8Model&&) noexcept = default;
Int8Model& Int8Model::operator=(Int8Model&&) noexcept = default;
Int8Model::~Int8Model() = default;

const model::ModelSpec& Int8Model::spec() const {
  return g_->spec;
}
const std::vector<std::string>& Int8Model::names() const {
  return g_->names;
}
const std::vector<int64_t>& Int8Model::strides() const {
  return g_->strides;
}
int64_t Int8Model::nc() const {
  return g_->spec.nc;
}
const std::string& Int8Model::engine() const {
  return g_->engine;
}
std::vector<Int8LayerReport> Int8Model::report() const {
  return g_->report;
}
nlohmann::json& Int8Model::meta() {
  return g_->meta;
}
const nlohmann::json& Int8Model::meta() const {
  return g_->meta;
}

int64_t Int8Model::pair_bound() const {
  int64_t a_max = g_->params.input ? g_->params.input->qmax : 0, w_max = 0;
  for (const auto& [name, gj] : g_->params.junctions)
    if (gj) a_max = std::max(a_max, gj->qmax);
  for (const auto& [name, c] : g_->params.convs) {
    if (c.silu && c.out) a_max = std::max(a_max, c.out->qmax);  // the head's outputs are dequantized
    if (c.scale.defined()) w_max = std::max(w_max, c.weight.to(at::kShort).abs().max().item<int64_t>());
  }
  return quant::pair_bound(a_max, w_max);
}

std::string Int8Model::target() const {
  return g_->meta.value("target", std::string());
}

quant::Exactness Int8Model::exactness(const CpuFeatures& cpu) const {
  return quant::int8_exactness(pair_bound(), cpu, g_->engine);
}

int64_t Int8Model::weight_bytes() const {
  int64_t n = 0;
  for (const auto& [name, c] : g_->params.convs)
    for (const at::Tensor* t : {&c.weight, &c.scale, &c.bias})
      if (t->defined()) n += int64_t(t->nbytes());
  return n;
}

std::vector<at::Tensor> Int8Model::forward_raw(const at::Tensor& x) {
  const int64_t smax = *std::max_element(g_->strides.begin(), g_->strides.end());
  YQ_CHECK(x.dim() == 4 && x.size(1) == 3, "model input must be [B, 3, H, W], found {}",
           fmt::join(x.sizes(), "x"));
  YQ_CHECK(x.size(2) % smax == 0 && x.size(3) % smax == 0,
           "model input {}x{} (HxW): both sides must be multiples of the largest stride {}", x.size(2),
           x.size(3), smax);
  torch::NoGradGuard ng;
  set_quantized_engine(g_->engine);
  const auto& in_grid = g_->params.input;
  at::Tensor y = in_grid ? qquantize(x, *in_grid) : x.to(at::kFloat);
  const size_t n = g_->info.size();
  std::vector<at::Tensor> saved(n), in;
  for (size_t i = 0; i < n; ++i) {
    in.clear();
    for (int64_t f : g_->info[i].from) in.push_back(f == -1 ? y : saved[f < 0 ? int64_t(i) + f : f]);
    if (i + 1 == n) return g_->head.run(in);
    y = g_->layers[i]->run(in);
    if (g_->keep[i]) saved[i] = y;
  }
  YQ_ASSERT(false);
  return {};
}

at::Tensor Int8Model::forward(const at::Tensor& x) {
  return decode(forward_raw(x));
}

at::Tensor Int8Model::decode(const std::vector<at::Tensor>& raw) const {
  torch::NoGradGuard ng;
  const int64_t b = raw.at(0).size(0), bins = model::kRegMax, no = nc() + 4 * bins;
  std::vector<at::Tensor> flat;
  for (const auto& r : raw) flat.push_back(r.reshape({b, no, -1}));
  const at::Tensor x = at::cat(flat, 2);  // [B, no, A]
  const int64_t a = x.size(2);
  // DFL: expectation of bins 0..15 under a softmax per side.
  const at::Tensor p = x.slice(1, 0, 4 * bins).view({b, 4, bins, a}).softmax(2);
  const at::Tensor dist = (p * at::arange(bins, x.options()).view({1, 1, bins, 1})).sum(2);  // [B, 4, A]
  auto [points, stride] = model::make_anchors(raw, g_->strides);                             // [A, 2], [A, 1]
  const at::Tensor xywh = model::dist2bbox(dist, points.t().unsqueeze(0), /*xywh=*/true, /*dim=*/1);
  return at::cat({xywh * stride.t(), x.slice(1, 4 * bins).sigmoid()}, 1);
}

// ---------------------------------------------------------------- save / load

void Int8Model::save(const fs::path& path) const {
  nlohmann::json h;
  h["format"] = kInt8Format;
  h["version"] = kInt8Version;
  h["spec"] = model::spec_to_json(g_->spec);
  h["names"] = g_->names;
  h["engine"] = g_->engine;
  h["meta"] = g_->meta;
  h["input"] = grid_json(g_->params.input);
  c10::Dict<std::string, at::Tensor> tensors;
  for (const auto& [name, c] : g_->params.convs) {
    h["convs"][name] = {{"stride", c.stride},      {"padding", c.padding},    {"silu", c.silu},
                        {"pre", grid_json(c.pre)}, {"out", grid_json(c.out)}, {"note", c.note}};
    tensors.insert(name + ".weight", c.weight);
    tensors.insert(name + ".bias", c.bias);
    if (c.scale.defined()) tensors.insert(name + ".scale", c.scale);
  }
  for (const auto& [name, gj] : g_->params.junctions) h["junctions"][name] = grid_json(gj);
  const std::vector<char> payload =
      torch::jit::pickle_save(c10::ivalue::Tuple::create({c10::IValue(h.dump()), c10::IValue(tensors)}));
  std::string out(kMagic, sizeof(kMagic));
  put_le<uint32_t>(out, kInt8Version);
  put_le<uint64_t>(out, payload.size());
  put_le<uint32_t>(out, crc_of(payload.data(), payload.size()));
  out.append(payload.data(), payload.size());
  with_context("while writing int8 model " + path.string(), [&] { atomic_write(path, out); });
}

bool Int8Model::is_int8_file(const fs::path& path) {
  std::ifstream f(path, std::ios::binary);
  char m[sizeof(kMagic)];
  return f.read(m, sizeof(m)) && std::memcmp(m, kMagic, sizeof(kMagic)) == 0;
}

Int8Model Int8Model::load(const fs::path& path) {
  const std::string file = path.string();
  std::ifstream f(path, std::ios::binary);
  YQ_CHECK(f, "{}: cannot open", file);
  const std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  YQ_CHECK(bytes.size() >= kPrefix && std::memcmp(bytes.data(), kMagic, sizeof(kMagic)) == 0,
           "{}: not a yoloqat int8 model (no YOLOQAT-INT8 magic at the start)", file);
  const char* p = bytes.data() + sizeof(kMagic);
  const uint32_t version = get_le<uint32_t>(p);
  const uint64_t length = get_le<uint64_t>(p + 4);
  const uint32_t crc = get_le<uint32_t>(p + 12);
  YQ_CHECK(version >= 1 && version <= uint32_t(kInt8Version),
           "{}: int8 format version {} (this yoloqat reads up to {})", file, version, kInt8Version);
  YQ_CHECK(bytes.size() - kPrefix == length,
           "{}: truncated or padded int8 model: {} payload bytes, expected {}", file, bytes.size() - kPrefix,
           length);
  YQ_CHECK(crc_of(bytes.data() + kPrefix, length) == crc, "{}: corrupt int8 model (CRC-32 mismatch)", file);

  return with_context(file, [&] {
    c10::IValue v;
    try {
      v = torch::jit::pickle_load(std::vector<char>(bytes.begin() + kPrefix, bytes.end()));
    } catch (const c10::Error& e) {
      throw Error(fmt::format("corrupt int8 payload: {}", e.what_without_backtrace()));
    }
    YQ_CHECK(v.isTuple() && v.toTupleRef().elements().size() == 2 &&
                 v.toTupleRef().elements()[0].isString() && v.toTupleRef().elements()[1].isGenericDict(),
             "payload is not (header, tensors)");
    const nlohmann::json h = nlohmann::json::parse(v.toTupleRef().elements()[0].toStringRef());
    YQ_CHECK(h.value("format", "") == kInt8Format, "header format is '{}', expected '{}'",
             h.value("format", ""), kInt8Format);
    c10::impl::GenericDict dict = v.toTupleRef().elements()[1].toGenericDict();
    auto tensor = [&](const std::string& key, bool required) -> at::Tensor {
      auto it = dict.find(key);
      if (it == dict.end()) {
        YQ_CHECK(!required, "tensor '{}' is missing", key);
        return {};
      }
      return it->value().toTensor();
    };
    Params prm;
    prm.input = grid_from_json(h.at("input"));
    for (const auto& [name, c] : h.at("convs").items()) {
      ConvParams cp;
      cp.weight = tensor(name + ".weight", true);
      cp.bias = tensor(name + ".bias", true);
      cp.scale = tensor(name + ".scale", false);
      cp.stride = c.at("stride").get<int64_t>();
      cp.padding = c.at("padding").get<int64_t>();
      cp.silu = c.at("silu").get<bool>();
      cp.pre = grid_from_json(c.at("pre"));
      cp.out = grid_from_json(c.at("out"));
      cp.note = c.value("note", "");
      YQ_CHECK(cp.weight.dim() == 4 && cp.bias.numel() == cp.weight.size(0) &&
                   (!cp.scale.defined() ||
                    (cp.scale.numel() == cp.weight.size(0) && cp.weight.scalar_type() == at::kChar)),
               "conv {}: inconsistent tensors", name);
      prm.convs[name] = std::move(cp);
    }
    if (h.contains("junctions"))
      for (const auto& [name, gj] : h.at("junctions").items()) prm.junctions[name] = grid_from_json(gj);
    model::YoloV8 skel(model::spec_from_json(h.at("spec")));  // the layer table only
    skel->set_names(h.at("names").get<std::vector<std::string>>());
    Int8Model m(build(*skel, std::move(prm), h.at("engine").get<std::string>()));
    m.meta() = h.value("meta", nlohmann::json::object());
    return m;
  });
}

Int8Model convert(model::YoloV8Impl& prepared, const ConvertOptions& opt) {
  Params p = extract(prepared);
  return Int8Model(build(prepared, std::move(p), opt.engine));
}

}  // namespace yq::deploy
