#include "deploy/onnx_export.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <ctime>

#include "core/error.h"
#include "model/anchors.h"
#include "quant/fusion.h"

namespace yq::deploy {

using model::YoloV8Impl;

std::pair<torch::Tensor, torch::Tensor> fold_conv_bn(const torch::nn::Conv2dImpl& conv,
                                                     const torch::nn::BatchNorm2dImpl& bn) {
  torch::NoGradGuard no_grad;
  // Folded in double precision, rounded once to float32.
  const auto w = conv.weight.detach().to(torch::kFloat64);
  const auto gamma = bn.weight.detach().to(torch::kFloat64);
  const auto beta = bn.bias.detach().to(torch::kFloat64);
  const auto mean = bn.running_mean.detach().to(torch::kFloat64);
  const auto var = bn.running_var.detach().to(torch::kFloat64);
  const auto scale = gamma / torch::sqrt(var + bn.options.eps());  // [c2]
  auto b = conv.bias.defined() ? conv.bias.detach().to(torch::kFloat64) : torch::zeros_like(mean);
  auto wf = w * scale.view({-1, 1, 1, 1});
  auto bf = beta + (b - mean) * scale;
  return {wf.to(torch::kFloat32), bf.to(torch::kFloat32)};
}

std::string python_names_dict(const std::vector<std::string>& names) {
  auto repr = [](const std::string& s) {
    const bool has_single = s.find('\'') != std::string::npos;
    const char quote = has_single && s.find('"') == std::string::npos ? '"' : '\'';
    std::string out(1, quote);
    for (unsigned char ch : s) {
      if (ch == '\\' || ch == static_cast<unsigned char>(quote)) {
        out += '\\';
        out += char(ch);
      } else if (ch == '\n') {
        out += "\\n";
      } else if (ch == '\r') {
        out += "\\r";
      } else if (ch == '\t') {
        out += "\\t";
      } else if (ch < 0x20 || ch == 0x7f) {
        out += fmt::format("\\x{:02x}", ch);
      } else {
        out += char(ch);  // UTF-8 bytes pass through as Python prints printable text
      }
    }
    return out + quote;
  };
  std::string s = "{";
  for (size_t i = 0; i < names.size(); ++i) s += fmt::format("{}{}: {}", i ? ", " : "", i, repr(names[i]));
  return s + "}";
}

namespace {

// Writes the layers of a YoloV8 into an OnnxGraph, asking `hooks` at every tensor a quantizer owns
// and every tensor a Conv, Add, Concat or the float tail reads.
class Writer {
 public:
  Writer(OnnxGraph& g, OnnxTensorHooks& hooks) : g_(g), h_(hooks), q_(hooks.quantized()) {}

  // The quantizer in `fq` when the flavour uses quantizers, else null.
  quant::FakeQuantizeImpl* fq(const quant::FakeQuantize& holder) const {
    return q_ && !holder.is_empty() ? holder.ptr().get() : nullptr;
  }

  // Conv node reading `in` (hooks.conv_input applied) with the given (already folded) weight and bias;
  // returns its output.
  std::string conv(const std::string& in, const torch::Tensor& w, const torch::Tensor& b, int64_t stride,
                   const std::string& name, quant::FakeQuantizeImpl* weight_fq = nullptr) {
    const int64_t kh = w.size(2), kw = w.size(3);
    YQ_ASSERT(kh % 2 == 1 && kw % 2 == 1);
    const std::string x = h_.conv_input(g_, in);
    auto [wn, bn] = h_.conv_params(g_, name, x, w, b, weight_fq);
    std::vector<std::string> inputs = {x, wn};
    if (!bn.empty()) inputs.push_back(bn);
    return g_.op("Conv", inputs, name,
                 {{"kernel_shape", std::vector<int64_t>{kh, kw}},
                  {"strides", std::vector<int64_t>{stride, stride}},
                  {"pads", std::vector<int64_t>{kh / 2, kw / 2, kh / 2, kw / 2}},
                  {"dilations", std::vector<int64_t>{1, 1}},
                  {"group", 1}});
  }

  // Conv (BN folded) -> [pre_fq] -> SiLU as Sigmoid and Mul -> [act_fq].
  std::string conv_bn_act(model::ConvBnActImpl& m, const std::string& in, const std::string& name) {
    torch::Tensor w, b;
    quant::FakeQuantizeImpl* wfq = fq(m.weight_fq);
    if (wfq != nullptr) {
      // The fold the fake-quant forward does (float32), so that the weight grid is the same.
      torch::NoGradGuard no_grad;
      quant::FusedConv f = quant::fold_conv_bn(m.conv->weight, {}, *m.bn);
      w = f.weight.detach().to(torch::kFloat32);
      b = f.bias.detach().to(torch::kFloat32);
    } else {
      std::tie(w, b) = fold_conv_bn(*m.conv, *m.bn);
    }
    std::string y = conv(in, w, b, m.options().s(), name + ".conv", wfq);
    if (auto* pre = fq(m.pre_fq)) y = h_.pre_activation(g_, y, pre);
    const std::string s = g_.op("Sigmoid", {y}, name + ".act.sigmoid");
    y = g_.op("Mul", {y, s}, name + ".act");
    if (auto* act = fq(m.act_fq)) y = h_.produced(g_, y, act);
    return y;
  }

  std::string bottleneck(model::BottleneckImpl& m, const std::string& in, const std::string& name) {
    std::string y = conv_bn_act(*m.cv1, in, name + ".cv1");
    y = conv_bn_act(*m.cv2, y, name + ".cv2");
    if (!m.has_residual()) return y;
    y = g_.op("Add", {h_.add_input(g_, in), h_.add_input(g_, y)}, name + ".add");
    if (auto* out = fq(m.add->out_fq)) y = h_.produced(g_, y, out);
    return y;
  }

  // Concat along channels, inputs and output through the hooks with the module's shared quantizer.
  std::string concat(model::ConcatImpl& m, const std::vector<std::string>& xs, const std::string& name) {
    auto* cat_fq = fq(m.out_fq);
    std::vector<std::string> in;
    for (const auto& x : xs) in.push_back(h_.concat_input(g_, x, cat_fq));
    std::string y = g_.op("Concat", in, name, {{"axis", 1}});
    if (cat_fq != nullptr) y = h_.produced(g_, y, cat_fq);
    return y;
  }

  std::string c2f(model::C2fImpl& m, const std::string& in, const std::string& name) {
    const std::string x = conv_bn_act(*m.cv1, in, name + ".cv1");
    const int64_t c = m.cv1->options().c2() / 2;
    std::vector<std::string> ys = {g_.unique_name(name + ".split_out0"),
                                   g_.unique_name(name + ".split_out1")};
    g_.add_node("Split", {x, g_.add_int64s(name + ".split.sizes", {c, c})}, ys, name + ".split",
                {{"axis", 1}});
    for (auto& y : ys) y = h_.passed(g_, x, y);
    for (size_t i = 0; i < m.m->size(); ++i)
      ys.push_back(
          bottleneck(*m.m->ptr(i)->as<model::BottleneckImpl>(), ys.back(), fmt::format("{}.m.{}", name, i)));
    const std::string cat = concat(*m.cat, ys, name + ".cat");
    return conv_bn_act(*m.cv2, cat, name + ".cv2");
  }

  std::string sppf(model::SPPFImpl& m, const std::string& in, const std::string& name) {
    const int64_t k = m.m->kernel();
    std::vector<std::string> ys = {conv_bn_act(*m.cv1, in, name + ".cv1")};
    for (int i = 0; i < 3; ++i) {
      const std::string y = g_.op("MaxPool", {ys.back()}, name + ".m",
                                  {{"kernel_shape", std::vector<int64_t>{k, k}},
                                   {"strides", std::vector<int64_t>{1, 1}},
                                   {"pads", std::vector<int64_t>{k / 2, k / 2, k / 2, k / 2}}});
      ys.push_back(h_.passed(g_, ys.back(), y));
    }
    const std::string cat = concat(*m.cat, ys, name + ".cat");
    return conv_bn_act(*m.cv2, cat, name + ".cv2");
  }

  std::string upsample(model::UpsampleImpl& m, const std::string& in, const std::string& name) {
    const float s = float(m.scale());
    const std::string scales = g_.add_floats(name + ".scales", {1.f, 1.f, s, s}, {4});
    // PyTorch's "nearest": source index floor(dst * in / out), i.e. asymmetric + floor.
    const std::string y = g_.op(
        "Resize", {in, "", scales}, name,
        {{"mode", "nearest"}, {"coordinate_transformation_mode", "asymmetric"}, {"nearest_mode", "floor"}});
    return h_.passed(g_, in, y);
  }

  // A head branch: ConvBnAct, ConvBnAct, Conv2d with bias and the head's own quantizers.
  std::string branch(torch::nn::SequentialImpl& seq, const std::string& in, const std::string& name,
                     const quant::FakeQuantize& wfq, const quant::FakeQuantize& afq) {
    std::string y = conv_bn_act(*seq.ptr(0)->as<model::ConvBnActImpl>(), in, name + ".0");
    y = conv_bn_act(*seq.ptr(1)->as<model::ConvBnActImpl>(), y, name + ".1");
    auto* last = seq.ptr(2)->as<torch::nn::Conv2dImpl>();
    y = conv(y, last->weight.detach().to(torch::kFloat32), last->bias.detach().to(torch::kFloat32), 1,
             name + ".2", fq(wfq));
    if (auto* a = fq(afq)) y = h_.produced(g_, y, a);
    return h_.float_input(g_, y);
  }

  // The Detect head to the decoded output: Concat(boxes * stride, Sigmoid(classes)) -> out_name.
  void detect(model::DetectImpl& d, const std::vector<std::string>& feats,
              const std::vector<std::pair<int64_t, int64_t>>& sizes, const std::string& name,
              const std::string& out_name) {
    const int64_t no = d.no(), nc = d.nc(), bins = model::kRegMax;
    std::vector<std::string> flat;
    for (int64_t i = 0; i < d.nl(); ++i) {
      const std::string box = branch(*d.cv2->ptr(i)->as<torch::nn::SequentialImpl>(), feats[i],
                                     fmt::format("{}.cv2.{}", name, i), d.box_weight_fq[i], d.box_act_fq[i]);
      const std::string cls = branch(*d.cv3->ptr(i)->as<torch::nn::SequentialImpl>(), feats[i],
                                     fmt::format("{}.cv3.{}", name, i), d.cls_weight_fq[i], d.cls_act_fq[i]);
      const std::string cat = g_.op("Concat", {box, cls}, fmt::format("{}.cat.{}", name, i), {{"axis", 1}});
      // Reshape shapes hold 0 for the batch: "copy the input's", so a dynamic batch works.
      flat.push_back(g_.op("Reshape",
                           {cat, g_.add_int64s(fmt::format("{}.flat.{}.shape", name, i), {0, no, -1})},
                           fmt::format("{}.flat.{}", name, i)));
    }
    const std::string x = g_.op("Concat", flat, name + ".cat", {{"axis", 2}});  // [B, no, A]
    const std::string box = g_.unique_name(name + ".split_box"), cls = g_.unique_name(name + ".split_cls");
    g_.add_node("Split", {x, g_.add_int64s(name + ".split.sizes", {4 * bins, nc})}, {box, cls},
                name + ".split", {{"axis", 1}});

    // DFL: softmax over the bins of each side, expectation with the 0..15 conv.
    auto [points, strides] = model::make_anchors(sizes, d.strides());  // [A, 2], [A, 1]
    const int64_t a = points.size(0);
    const std::string dfl = name + ".dfl";
    std::string y = g_.op("Reshape", {box, g_.add_int64s(dfl + ".shape", {0, 4, bins, a})}, dfl + ".view");
    y = g_.op("Transpose", {y}, dfl + ".transpose",
              {{"perm", std::vector<int64_t>{0, 2, 1, 3}}});  // [B, 16, 4, A]
    y = g_.op("Softmax", {y}, dfl + ".softmax", {{"axis", 1}});
    y = conv(y, d.dfl->conv->weight.detach().to(torch::kFloat32), torch::Tensor(), 1,
             dfl + ".conv");                                                                // [B, 1, 4, A]
    y = g_.op("Reshape", {y, g_.add_int64s(dfl + ".out_shape", {0, 4, a})}, dfl + ".out");  // [B, 4, A]

    // dist2bbox (xywh), then scaled by the stride of each anchor.
    const std::string lt = g_.unique_name(name + ".lt"), rb = g_.unique_name(name + ".rb");
    g_.add_node("Split", {y, g_.add_int64s(name + ".lt_rb.sizes", {2, 2})}, {lt, rb}, name + ".lt_rb",
                {{"axis", 1}});
    const std::string anchors =
        g_.add_initializer(name + ".anchors", points.t().unsqueeze(0).contiguous());  // [1, 2, A]
    const std::string stride_t =
        g_.add_initializer(name + ".strides", strides.t().unsqueeze(0).contiguous());  // [1, 1, A]
    const std::string x1y1 = g_.op("Sub", {anchors, lt}, name + ".x1y1");
    const std::string x2y2 = g_.op("Add", {anchors, rb}, name + ".x2y2");
    const std::string sum = g_.op("Add", {x1y1, x2y2}, name + ".xy_sum");
    const std::string c_xy = g_.op("Div", {sum, g_.add_floats(name + ".two", {2.f}, {})}, name + ".c_xy");
    const std::string wh = g_.op("Sub", {x2y2, x1y1}, name + ".wh");
    const std::string xywh = g_.op("Concat", {c_xy, wh}, name + ".xywh", {{"axis", 1}});
    const std::string dbox = g_.op("Mul", {xywh, stride_t}, name + ".dbox");
    const std::string scores = g_.op("Sigmoid", {cls}, name + ".scores");
    g_.add_node("Concat", {dbox, scores}, {out_name}, name + ".out", {{"axis", 1}});
  }

 private:
  OnnxGraph& g_;
  OnnxTensorHooks& h_;
  bool q_;
};

std::string utc_now_iso() {
  const std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace

std::pair<std::string, std::string> OnnxTensorHooks::conv_params(OnnxGraph& g, const std::string& name,
                                                                 const std::string& /*input*/,
                                                                 const torch::Tensor& w,
                                                                 const torch::Tensor& b,
                                                                 quant::FakeQuantizeImpl* /*weight_fq*/) {
  const std::string wn = g.add_initializer(name + ".weight", w);
  return {wn, b.defined() ? g.add_initializer(name + ".bias", b) : std::string()};
}

onnx::ModelProto build_onnx_model(YoloV8Impl& m, const OnnxExportOptions& o) {
  OnnxTensorHooks fp32;
  return build_onnx_model(m, o, fp32);
}

onnx::ModelProto build_onnx_model(YoloV8Impl& m, const OnnxExportOptions& o, OnnxTensorHooks& hooks) {
  const auto& strides = m.strides();
  const int64_t smax = *std::max_element(strides.begin(), strides.end());
  YQ_CHECK_USAGE(o.height > 0 && o.width > 0 && o.height % smax == 0 && o.width % smax == 0,
                 "imgsz {}x{} (HxW): both sides must be multiples of the largest stride {}", o.height,
                 o.width, smax);
  OnnxGraph g("main_graph", o.opset);
  g.set_producer("yoloqat", YOLOQAT_VERSION);
  const OnnxDim batch = o.dynamic ? OnnxDim("batch") : OnnxDim(1);
  g.add_input("images", {batch, 3, o.height, o.width});

  Writer w(g, hooks);
  const auto& layers = m.layers();
  const int64_t n = static_cast<int64_t>(layers.size());
  std::vector<std::string> out(n);
  std::string prev = "images";
  if (auto* in_fq = w.fq(m.input_fq)) prev = hooks.produced(g, prev, in_fq);
  std::vector<std::pair<int64_t, int64_t>> sizes;
  for (int64_t s : strides) sizes.emplace_back(o.height / s, o.width / s);
  int64_t anchors = 0;
  for (const auto& hw : sizes) anchors += hw.first * hw.second;

  for (int64_t i = 0; i < n; ++i) {
    const auto& li = layers[i];
    std::vector<std::string> in;
    for (int64_t f : li.from) in.push_back(f == -1 ? prev : out[f < 0 ? i + f : f]);
    const std::string name = fmt::format("model.{}", i);
    auto mod = m.model->ptr(i);
    std::string y;
    if (li.module == "Conv") {
      y = w.conv_bn_act(*mod->as<model::ConvBnActImpl>(), in[0], name);
    } else if (li.module == "C2f") {
      y = w.c2f(*mod->as<model::C2fImpl>(), in[0], name);
    } else if (li.module == "SPPF") {
      y = w.sppf(*mod->as<model::SPPFImpl>(), in[0], name);
    } else if (li.module == "Upsample") {
      y = w.upsample(*mod->as<model::UpsampleImpl>(), in[0], name);
    } else if (li.module == "Concat") {
      y = w.concat(*mod->as<model::ConcatImpl>(), in, name);
    } else if (li.module == "Detect") {
      YQ_ASSERT(i == n - 1);
      w.detect(*mod->as<model::DetectImpl>(), in, sizes, name, g.unique_name("output0"));
      continue;
    } else {
      throw Error(
          fmt::format("ONNX export: layer {} is a {}, which the exporter does not know", i, li.module));
    }
    out[i] = prev = y;
  }
  g.add_output("output0", {batch, 4 + m.nc(), anchors});

  const std::string stem = m.spec().name.empty() ? "yolov8" : m.spec().name;
  g.set_doc(fmt::format("{} detection model exported by yoloqat", stem));
  g.set_metadata("description",
                 fmt::format("yoloqat {} model{}", stem, o.source.empty() ? "" : " from " + o.source));
  g.set_metadata("author", "yoloqat");
  g.set_metadata("date", utc_now_iso());
  g.set_metadata("version", YOLOQAT_VERSION);
  g.set_metadata("stride", std::to_string(smax));
  g.set_metadata("task", "detect");
  g.set_metadata("batch", "1");  // the reference's export batch; `dynamic` makes the graph's symbolic
  g.set_metadata("imgsz", fmt::format("[{}, {}]", o.height, o.width));
  g.set_metadata("names", python_names_dict(m.names()));
  return g.model();
}

OnnxExportResult export_onnx(YoloV8Impl& m, const fs::path& path, const OnnxExportOptions& o) {
  const onnx::ModelProto model = build_onnx_model(m, o);
  OnnxExportResult r;
  r.nodes = model.graph().node_size();
  r.initializers = model.graph().initializer_size();
  const auto& out = model.graph().output(0).type().tensor_type().shape();
  r.anchors = out.dim(2).dim_value();
  r.bytes = with_context("ONNX export to " + path.string(), [&] { return write_onnx(model, path); });
  return r;
}

}  // namespace yq::deploy
