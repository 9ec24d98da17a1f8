#include "deploy/onnx_qdq.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <unordered_map>
#include <utility>

#include "core/error.h"
#include "core/log.h"
#include "quant/fake_quantize.h"
#include "quant/prepare.h"

namespace yq::deploy {

std::string qdq_format_name(QdqFlavour flavour) {
  return flavour == QdqFlavour::kTensorRt ? "tensorrt" : "onnx-qdq";
}

float symmetric_int8_scale(float scale, int64_t zero_point, int64_t quant_min, int64_t quant_max) {
  const double lo = double(scale) * double(quant_min - zero_point);
  const double hi = double(scale) * double(quant_max - zero_point);
  return float(std::max(std::abs(lo), std::abs(hi)) / 127.0);
}

namespace {

// The QDQ flavours as hooks of the shared walk (deploy/onnx_export.h).
class QdqHooks : public OnnxTensorHooks {
 public:
  QdqHooks(model::YoloV8Impl& model, const QdqExportOptions& o)
      : o_(o), trt_(o.flavour == QdqFlavour::kTensorRt) {
    for (auto& [name, fq] : quant::named_quantizers(model)) names_[fq.get()] = name;
  }

  bool quantized() const override { return true; }

  // The counts, once the walk is done.
  QdqExportResult& stats() {
    stats_.subsumed = 0;
    if (trt_)
      for (const auto& [fq, name] : names_) {
        const bool weight = name.find("weight_fq") != std::string::npos;
        const bool pre = name.find("pre_fq") != std::string::npos;
        if (!weight && !pre && acts_.count(fq) == 0) ++stats_.subsumed;
      }
    return stats_;
  }

  std::string produced(OnnxGraph& g, const std::string& x, quant::FakeQuantizeImpl* fq) override {
    if (trt_) {  // quantized where it is read (conv_input, add_input, float_input)
      owner_[x] = fq;
      return x;
    }
    ++stats_.quantizer_pairs;
    return qdq(g, x, fq);
  }

  std::string pre_activation(OnnxGraph& g, const std::string& y, quant::FakeQuantizeImpl* pre_fq) override {
    if (trt_) {
      ++stats_.dropped_pre;
      return y;
    }
    ++stats_.quantizer_pairs;
    return qdq(g, y, pre_fq);
  }

  std::string passed(OnnxGraph& g, const std::string& in, const std::string& out) override {
    auto it = owner_.find(in);
    if (it == owner_.end()) return out;
    owner_[out] = it->second;
    return !trt_ && o_.passthrough_qdq ? qdq(g, out, it->second) : out;
  }

  std::string conv_input(OnnxGraph& g, const std::string& x) override {
    return trt_ ? read_quantized(g, x) : x;
  }
  std::string add_input(OnnxGraph& g, const std::string& x) override {
    return trt_ ? read_quantized(g, x) : x;
  }
  std::string float_input(OnnxGraph& g, const std::string& x) override {
    return trt_ ? read_quantized(g, x) : x;
  }

  std::string concat_input(OnnxGraph& g, const std::string& x, quant::FakeQuantizeImpl* cat_fq) override {
    if (cat_fq == nullptr) return trt_ ? read_quantized(g, x) : x;
    if (trt_ || o_.concat_input_qdq) return qdq(g, x, cat_fq);
    return x;
  }

  std::pair<std::string, std::string> conv_params(OnnxGraph& g, const std::string& name,
                                                  const std::string& input, const torch::Tensor& w,
                                                  const torch::Tensor& b,
                                                  quant::FakeQuantizeImpl* wfq) override {
    if (wfq == nullptr) return OnnxTensorHooks::conv_params(g, name, input, w, b, wfq);
    const std::string layer = quantizer_name(wfq);
    const quant::QScheme& sch = wfq->scheme();
    const quant::QParams qp = wfq->qparams();
    const bool zero_zp = (qp.zero_point == 0).all().item<bool>();
    if (trt_)
      YQ_CHECK_USAGE(
          sch.is_signed && zero_zp,
          "export format=tensorrt: {} is quantized {} (zero points {}); TensorRT needs symmetric signed "
          "int8 weights (qconfig weight: symmetric: true, signed: true)",
          layer, sch.to_string(), zero_zp ? "0" : "not 0");
    YQ_CHECK_USAGE(!sch.per_channel || sch.axis == 0,
                   "{}: per-channel weight quantizers need axis 0, found {}", layer, sch.axis);
    const auto int_type = sch.is_signed ? torch::kInt8 : torch::kUInt8;
    const torch::Tensor q = quant::quantize_reference(w.detach().to(torch::kFloat32), qp, sch).to(int_type);
    const std::string wq = g.add_initializer(name + ".weight_quantized", q);
    stats_.int8_weight_bytes += q.numel();
    std::string scale, zp;
    if (sch.per_channel) {
      scale = g.add_initializer(name + ".weight_scale", qp.scale.to(torch::kFloat32));
      zp = g.add_initializer(name + ".weight_zero_point", qp.zero_point.to(int_type));
    } else {
      scale = g.add_floats(name + ".weight_scale", {qp.scale.item<float>()}, {});
      zp = g.add_initializer(name + ".weight_zero_point", qp.zero_point.to(int_type).reshape({}));
    }
    std::vector<std::string> dq_out = {g.unique_name(name + ".weight")};
    g.add_node("DequantizeLinear", {wq, scale, zp}, dq_out, name + ".weight_dequantize", {{"axis", 0}});
    ++stats_.weight_dq;

    std::string bias;
    if (b.defined()) {
      auto in = owner_.find(input);
      if (!trt_ && o_.int32_bias && in != owner_.end()) {
        // bias_q = round(b / (s_in * s_w)), read through DequantizeLinear with that scale.
        const float s_in = act(in->second).scale;
        auto bscale = (qp.scale.to(torch::kFloat32) * s_in).expand({b.size(0)}).contiguous();
        auto bq = torch::round(b.detach().to(torch::kFloat32) / bscale).to(torch::kInt32);
        const std::string bqn = g.add_initializer(name + ".bias_quantized", bq);
        const std::string bs = g.add_initializer(name + ".bias_scale", bscale);
        const std::string bz =
            g.add_initializer(name + ".bias_zero_point", torch::zeros({b.size(0)}, torch::kInt32));
        std::vector<std::string> out = {g.unique_name(name + ".bias")};
        g.add_node("DequantizeLinear", {bqn, bs, bz}, out, name + ".bias_dequantize", {{"axis", 0}});
        ++stats_.bias_dq;
        bias = out[0];
      } else {
        bias = g.add_initializer(name + ".bias", b);
      }
    }
    return {dq_out[0], bias};
  }

 private:
  struct Act {
    float scale = 1;
    int64_t zero_point = 0;
    bool is_signed = false;
    int64_t qmin = 0, qmax = 255;  // the scheme's code range (Clip before QuantizeLinear when narrower)
  };

  std::string quantizer_name(quant::FakeQuantizeImpl* fq) const {
    auto it = names_.find(fq);
    return it == names_.end() ? std::string("quantizer") : it->second;
  }

  // The activation qparams the graph uses for `fq` (kTensorRt: made symmetric int8).
  Act act(quant::FakeQuantizeImpl* fq) {
    auto it = acts_.find(fq);
    if (it != acts_.end()) return it->second;
    const std::string name = quantizer_name(fq);
    const quant::QScheme& sch = fq->scheme();
    YQ_CHECK_USAGE(!sch.per_channel,
                   "{}: activation quantizer is per-channel ({}); QDQ export needs per-tensor ones", name,
                   sch.to_string());
    const quant::QParams qp = fq->qparams();
    Act a{qp.scale.item<float>(), qp.zero_point.item<int64_t>(), sch.is_signed, sch.quant_min(),
          sch.quant_max()};
    if (trt_) {
      const bool already = sch.is_signed && a.zero_point == 0 && sch.quant_max() == 127;
      if (!already) {
        const float s = symmetric_int8_scale(a.scale, a.zero_point, sch.quant_min(), sch.quant_max());
        log::debug("tensorrt: {} {} scale {:.6g} zero point {} -> symmetric int8 scale {:.6g}", name,
                   sch.to_string(), a.scale, a.zero_point, s);
        a = Act{s, 0, true, -127, 127};
        ++stats_.made_symmetric;
      }
      a.qmin = -128;  // TensorRT's own rule: no Clip
    } else if (sch.bits != 8 || sch.narrow_range) {
      log::debug("onnx-qdq: {} uses {}: Clip to its range before QuantizeLinear", name, sch.to_string());
    }
    acts_[fq] = a;
    return a;
  }

  // QuantizeLinear -> DequantizeLinear of `x` with fq's qparams (one pair per tensor and quantizer).
  std::string qdq(OnnxGraph& g, const std::string& x, quant::FakeQuantizeImpl* fq) {
    const auto key = std::make_pair(x, fq);
    if (auto it = cache_.find(key); it != cache_.end()) return it->second;
    const Act a = act(fq);
    auto& params = params_[fq];
    const std::string base = quantizer_name(fq);
    if (params.first.empty()) {
      params.first = g.add_floats(base + ".scale", {a.scale}, {});
      params.second =
          g.add_initializer(base + ".zero_point",
                            a.is_signed ? torch::tensor(int8_t(a.zero_point), torch::kInt8).reshape({})
                                        : torch::tensor(uint8_t(a.zero_point), torch::kUInt8).reshape({}));
    }
    // A range narrower than the 8-bit type (x86's 7-bit activations, narrow range): QuantizeLinear
    // saturates only at the type's ends, so a Clip to [s (qmin - zp), s (qmax - zp)] comes first; it
    // gives the same codes as fake quant's clamp.
    const int64_t type_min = a.is_signed ? -128 : 0, type_max = a.is_signed ? 127 : 255;
    std::string in = x;
    if (a.qmin > type_min || a.qmax < type_max) {
      auto& clip = clips_[fq];
      if (clip.first.empty()) {
        clip.first = g.add_floats(base + ".clip_min", {float(a.qmin - a.zero_point) * a.scale}, {});
        clip.second = g.add_floats(base + ".clip_max", {float(a.qmax - a.zero_point) * a.scale}, {});
      }
      in = g.op("Clip", {x, clip.first, clip.second}, x + ".clip");
      ++stats_.clips;
    }
    const std::string q = g.op("QuantizeLinear", {in, params.first, params.second}, x + ".quantize");
    const std::string dq = g.op("DequantizeLinear", {q, params.first, params.second}, x + ".dequantize");
    ++stats_.qdq_pairs;
    owner_[dq] = fq;
    cache_[key] = dq;
    return dq;
  }

  // kTensorRt: a tensor as a Conv / Add / the float tail reads it, quantized by its owner.
  std::string read_quantized(OnnxGraph& g, const std::string& x) {
    auto it = owner_.find(x);
    return it == owner_.end() ? x : qdq(g, x, it->second);
  }

  const QdqExportOptions& o_;
  bool trt_;
  QdqExportResult stats_;
  std::unordered_map<const quant::FakeQuantizeImpl*, std::string> names_;
  std::unordered_map<std::string, quant::FakeQuantizeImpl*> owner_;  // tensor -> the quantizer that owns it
  std::map<std::pair<std::string, quant::FakeQuantizeImpl*>, std::string> cache_;
  std::unordered_map<const quant::FakeQuantizeImpl*, Act> acts_;
  std::unordered_map<const quant::FakeQuantizeImpl*, std::pair<std::string, std::string>> params_;
  std::unordered_map<const quant::FakeQuantizeImpl*, std::pair<std::string, std::string>> clips_;
};

}  // namespace

onnx::ModelProto build_qdq_model(model::YoloV8Impl& m, const QdqExportOptions& o, QdqExportResult* stats) {
  const std::string format = qdq_format_name(o.flavour);
  YQ_CHECK_USAGE(quant::is_prepared(m),
                 "export format={}: the model has no quantizers (a float checkpoint); calibrate or qat first "
                 "(yoloqat calibrate / yoloqat qat) and export the checkpoint they write",
                 format);
  YQ_CHECK_USAGE(o.onnx.opset >= 13,
                 "export format={}: opset {} < 13 (per-channel DequantizeLinear needs 13)", format,
                 o.onnx.opset);
  QdqHooks hooks(m, o);
  onnx::ModelProto model = build_onnx_model(m, o.onnx, hooks);
  auto add_meta = [&](const std::string& key, const std::string& value) {
    auto* meta = model.add_metadata_props();
    meta->set_key(key);
    meta->set_value(value);
  };
  add_meta("quantization", format);
  // What decides exactness on CPUs without VNNI (quant/target.h; read back by read_onnx_info).
  if (!o.target.empty()) add_meta("quantization_target", o.target);
  const int64_t bound = o.flavour == QdqFlavour::kTensorRt
                            ? quant::target_pair_bound(quant::Target::kTensorRT)
                            : quant::int8_pair_bound(m);
  add_meta("int8_pair_bound", std::to_string(bound));
  auto& s = hooks.stats();
  if (s.made_symmetric > 0)
    log::info(
        "tensorrt: {} activation quantizers converted to symmetric int8 (scale = max(|lo|, |hi|) / 127, zero "
        "point 0) from their affine ranges",
        s.made_symmetric);
  if (s.dropped_pre > 0)
    log::info(
        "tensorrt: {} pre-SiLU quantizers left out (TensorRT fuses Conv and SiLU); {} output quantizers of "
        "tensors that only feed a Concat replaced by the Concat's shared scale",
        s.dropped_pre, s.subsumed);
  if (stats != nullptr) *stats = s;
  return model;
}

QdqExportResult export_qdq(model::YoloV8Impl& m, const fs::path& path, const QdqExportOptions& o) {
  QdqExportResult r;
  const onnx::ModelProto model = build_qdq_model(m, o, &r);
  r.onnx.nodes = model.graph().node_size();
  r.onnx.initializers = model.graph().initializer_size();
  r.onnx.anchors = model.graph().output(0).type().tensor_type().shape().dim(2).dim_value();
  r.onnx.bytes = with_context("ONNX export to " + path.string(), [&] { return write_onnx(model, path); });
  if (o.flavour == QdqFlavour::kTensorRt) {
    const fs::path readme = path.parent_path() / "README.md";
    with_context("writing " + readme.string(), [&] { atomic_write(readme, tensorrt_readme(path, o, r)); });
  }
  return r;
}

std::string tensorrt_readme(const fs::path& onnx_file, const QdqExportOptions& o, const QdqExportResult& r) {
  const std::string file = onnx_file.filename().string();
  const std::string engine = onnx_file.stem().string() + ".engine";
  const std::string shapes = o.onnx.dynamic
                                 ? fmt::format(
                                       " --minShapes=images:1x3x{0}x{1} --optShapes=images:1x3x{0}x{1} "
                                       "--maxShapes=images:8x3x{0}x{1}",
                                       o.onnx.height, o.onnx.width)
                                 : "";
  return fmt::format(
      "# {file}: int8 YOLOv8 for TensorRT (explicit quantization)\n\n"
      "Build an engine (TensorRT 8.6 or later; `--int8` with Q/DQ nodes = explicit quantization, no "
      "calibration "
      "cache):\n\n"
      "```\n"
      "trtexec --onnx={file} --int8 --fp16 --saveEngine={engine}{shapes}\n"
      "```\n\n"
      "`--fp16` lets the layers without Q/DQ (the DFL / decode tail) run in half precision; leave it out to "
      "keep them fp32.\n\n"
      "## What the graph holds\n"
      "- Input `images` [{batch}, 3, {h}, {w}] float 0..1 RGB; output `output0` [{batch}, {rows}, {anchors}] "
      "(cx, cy, w, h in pixels, then sigmoid class scores), no NMS: the reference YOLOv8 interface.\n"
      "- {pairs} QuantizeLinear -> DequantizeLinear pairs, all int8 with zero point 0 (symmetric): on the "
      "tensors every Conv and residual Add reads, with the scale of the quantizer that produced the tensor; "
      "each Concat input carries the Concat's shared scale.\n"
      "- {wdq} conv weights as int8 initializers ({wkb:.1f} KiB) with per-output-channel DequantizeLinear "
      "(axis 0, zero point 0); BN folded; biases float.\n"
      "- Conv -> Sigmoid -> Mul (SiLU) with no Q/DQ in between, so TensorRT fuses them ({pre} pre-SiLU "
      "quantizers of the fake-quant model left out).\n"
      "- {sub} output quantizers of tensors that only feed a Concat are replaced by the Concat's scale.\n"
      "- {sym} affine (asymmetric) activation quantizers converted to symmetric: scale = max(|lo|, |hi|) / "
      "127 "
      "over their range [s (qmin - zp), s (qmax - zp)].\n"
      "- The DFL, box decoding and sigmoid stay float.\n"
      "- File: {bytes} bytes, {nodes} nodes, opset {opset}.\n",
      fmt::arg("file", file), fmt::arg("engine", engine), fmt::arg("shapes", shapes),
      fmt::arg("batch", o.onnx.dynamic ? "batch" : "1"), fmt::arg("h", o.onnx.height),
      fmt::arg("w", o.onnx.width), fmt::arg("rows", "4 + nc"), fmt::arg("anchors", r.onnx.anchors),
      fmt::arg("pairs", r.qdq_pairs), fmt::arg("wdq", r.weight_dq),
      fmt::arg("wkb", double(r.int8_weight_bytes) / 1024.0), fmt::arg("pre", r.dropped_pre),
      fmt::arg("sym", r.made_symmetric), fmt::arg("sub", r.subsumed), fmt::arg("bytes", r.onnx.bytes),
      fmt::arg("nodes", r.onnx.nodes), fmt::arg("opset", o.onnx.opset));
}

}  // namespace yq::deploy
