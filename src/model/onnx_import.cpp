#include "model/onnx_import.h"

#include <fmt/format.h>
#include <onnx/onnx_pb.h>

#include <cctype>
#include <cstring>
#include <map>

#include "core/error.h"
#include "core/log.h"

namespace yq::model {

// ---------------------------------------------------------------- names metadata

std::vector<std::string> parse_python_names(const std::string& text) {
  size_t i = 0;
  auto fail = [&](const std::string& what) -> void {
    throw Error(fmt::format("names metadata: {} at character {} of '{}'", what, i, text.substr(0, 200)));
  };
  auto skip = [&] {
    while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
  };
  auto expect = [&](char c) {
    skip();
    if (i >= text.size() || text[i] != c) fail(fmt::format("expected '{}'", c));
    ++i;
  };
  std::map<int64_t, std::string> by_id;
  expect('{');
  skip();
  if (i < text.size() && text[i] == '}') {
    ++i;
  } else {
    for (;;) {
      skip();
      size_t start = i;
      while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) ++i;
      if (start == i || i - start > 9) fail("expected a class id");
      const int64_t id = std::stoll(text.substr(start, i - start));
      expect(':');
      skip();
      if (i >= text.size() || (text[i] != '\'' && text[i] != '"')) fail("expected a quoted name");
      const char quote = text[i++];
      std::string name;
      for (;;) {
        if (i >= text.size()) fail("unterminated name");
        char c = text[i++];
        if (c == quote) break;
        if (c != '\\') {
          name += c;
          continue;
        }
        if (i >= text.size()) fail("unterminated escape");
        c = text[i++];
        switch (c) {
          case 'n':
            name += '\n';
            break;
          case 't':
            name += '\t';
            break;
          case 'r':
            name += '\r';
            break;
          case '\\':
          case '\'':
          case '"':
            name += c;
            break;
          case 'x': {
            if (i + 2 > text.size() || !std::isxdigit(static_cast<unsigned char>(text[i])) ||
                !std::isxdigit(static_cast<unsigned char>(text[i + 1])))
              fail("bad \\x escape");
            name += static_cast<char>(std::stoi(text.substr(i, 2), nullptr, 16));
            i += 2;
            break;
          }
          default:
            fail(fmt::format("unsupported escape \\{}", c));
        }
      }
      if (!by_id.emplace(id, name).second) fail(fmt::format("class id {} given twice", id));
      skip();
      if (i < text.size() && text[i] == ',') {
        ++i;
        skip();
        if (i < text.size() && text[i] == '}') {
          ++i;
          break;
        }
        continue;
      }
      expect('}');
      break;
    }
  }
  skip();
  if (i != text.size()) fail("trailing text");
  std::vector<std::string> names;
  for (const auto& [id, name] : by_id) {
    if (id != static_cast<int64_t>(names.size()))
      fail(fmt::format("class ids are not 0..{}", by_id.size() - 1));
    names.push_back(name);
  }
  return names;
}

// ---------------------------------------------------------------- model from ONNX

namespace {

torch::Tensor to_tensor(const onnx::TensorProto& t, const std::string& origin) {
  YQ_CHECK(t.data_location() != onnx::TensorProto::EXTERNAL,
           "{}: tensor {} is stored in an external file, which is not supported", origin, t.name());
  std::vector<int64_t> dims(t.dims().begin(), t.dims().end());
  int64_t n = 1;
  for (int64_t d : dims) {
    YQ_CHECK(d >= 0 && d < (int64_t(1) << 31), "{}: tensor {} has a bad dimension {}", origin, t.name(), d);
    n *= d;
    YQ_CHECK(n < (int64_t(1) << 31), "{}: tensor {} is too large", origin, t.name());
  }
  torch::Tensor out;
  if (t.data_type() == onnx::TensorProto::FLOAT) {
    out = torch::empty(dims, torch::kFloat32);
    if (t.has_raw_data()) {
      YQ_CHECK(int64_t(t.raw_data().size()) == n * 4, "{}: tensor {} holds {} bytes for {} floats", origin,
               t.name(), t.raw_data().size(), n);
      std::memcpy(out.data_ptr(), t.raw_data().data(), n * 4);
    } else {
      YQ_CHECK(t.float_data_size() == n, "{}: tensor {} holds {} floats, its shape needs {}", origin,
               t.name(), t.float_data_size(), n);
      std::memcpy(out.data_ptr(), t.float_data().data(), n * 4);
    }
  } else if (t.data_type() == onnx::TensorProto::FLOAT16) {
    auto half = torch::empty(dims, torch::kFloat16);
    if (t.has_raw_data()) {
      YQ_CHECK(int64_t(t.raw_data().size()) == n * 2, "{}: tensor {} holds {} bytes for {} halves", origin,
               t.name(), t.raw_data().size(), n);
      std::memcpy(half.data_ptr(), t.raw_data().data(), n * 2);
    } else {
      // int32_data holds the 16-bit patterns, one per element.
      YQ_CHECK(t.int32_data_size() == n, "{}: tensor {} holds {} values, its shape needs {}", origin,
               t.name(), t.int32_data_size(), n);
      auto* p = static_cast<uint16_t*>(half.data_ptr());
      for (int64_t k = 0; k < n; ++k) p[k] = static_cast<uint16_t>(t.int32_data(k));
    }
    out = half.to(torch::kFloat32);
  } else {
    throw Error(fmt::format("{}: conv tensor {} has ONNX data type {} (float or float16 expected)", origin,
                            t.name(), t.data_type()));
  }
  return out;
}

// One conv of our model, in the order the reference export writes them.
struct ConvSlot {
  std::string name;  // reference initializer name of the weight ("model.0.conv.weight")
  torch::nn::Conv2dImpl* conv = nullptr;
  torch::nn::BatchNorm2dImpl* bn = nullptr;  // null for the plain head convs and the DFL
};

void add_cba(std::vector<ConvSlot>& out, ConvBnActImpl& m, const std::string& name) {
  out.push_back({name + ".conv.weight", m.conv.get(), m.bn.get()});
}

std::vector<ConvSlot> conv_slots(YoloV8Impl& m) {
  std::vector<ConvSlot> out;
  const auto& layers = m.layers();
  for (size_t i = 0; i < layers.size(); ++i) {
    const std::string name = fmt::format("model.{}", i);
    auto mod = m.model->ptr(i);
    const std::string& kind = layers[i].module;
    if (kind == "Conv") {
      add_cba(out, *mod->as<ConvBnActImpl>(), name);
    } else if (kind == "C2f") {
      auto* c = mod->as<C2fImpl>();
      add_cba(out, *c->cv1, name + ".cv1");
      for (size_t j = 0; j < c->m->size(); ++j) {
        auto* b = c->m->ptr(j)->as<BottleneckImpl>();
        add_cba(out, *b->cv1, fmt::format("{}.m.{}.cv1", name, j));
        add_cba(out, *b->cv2, fmt::format("{}.m.{}.cv2", name, j));
      }
      add_cba(out, *c->cv2, name + ".cv2");
    } else if (kind == "SPPF") {
      auto* s = mod->as<SPPFImpl>();
      add_cba(out, *s->cv1, name + ".cv1");
      add_cba(out, *s->cv2, name + ".cv2");
    } else if (kind == "Detect") {
      auto* d = mod->as<DetectImpl>();
      for (int64_t l = 0; l < d->nl(); ++l) {
        for (const char* branch : {"cv2", "cv3"}) {
          auto* seq =
              (std::string(branch) == "cv2" ? d->cv2 : d->cv3)->ptr(l)->as<torch::nn::SequentialImpl>();
          const std::string b = fmt::format("{}.{}.{}", name, branch, l);
          add_cba(out, *seq->ptr(0)->as<ConvBnActImpl>(), b + ".0");
          add_cba(out, *seq->ptr(1)->as<ConvBnActImpl>(), b + ".1");
          out.push_back({b + ".2.weight", seq->ptr(2)->as<torch::nn::Conv2dImpl>(), nullptr});
        }
      }
      out.push_back({name + ".dfl.conv.weight", d->dfl->conv.get(), nullptr});
    }
  }
  return out;
}

// A Conv node of the file: its weight and bias (undefined when absent).
struct FileConv {
  std::string node;
  std::string weight_name;
  torch::Tensor weight, bias;
};

int64_t dim_value(const onnx::ValueInfoProto& v, int i) {
  const auto& shape = v.type().tensor_type().shape();
  return i < shape.dim_size() && shape.dim(i).has_dim_value() ? shape.dim(i).dim_value() : 0;
}

}  // namespace

YoloV8 model_from_onnx(const fs::path& path, OnnxImportReport* report) {
  const std::string origin = path.string();
  return with_context("while importing ONNX model " + origin, [&] {
    onnx::ModelProto mp;
    {
      const std::string bytes = read_text(path);
      YQ_CHECK(mp.ParseFromString(bytes), "not an ONNX model (protobuf parse failed)");
    }
    const auto& g = mp.graph();
    YQ_CHECK(g.input_size() >= 1 && g.output_size() >= 1, "the graph has no input or no output");
    const onnx::ValueInfoProto* out = nullptr;
    for (const auto& o : g.output())
      if (o.name() == "output0") out = &o;
    YQ_CHECK(out != nullptr, "no graph output named output0 (the reference YOLOv8 export's)");
    YQ_CHECK(dim_value(g.input(0), 1) == 3 || dim_value(g.input(0), 1) == 0,
             "input {} has {} channels, 3 expected", g.input(0).name(), dim_value(g.input(0), 1));

    std::map<std::string, std::string> meta;
    for (const auto& p : mp.metadata_props()) meta[p.key()] = p.value();
    std::vector<std::string> names;
    if (meta.count("names")) names = parse_python_names(meta["names"]);
    if (meta.count("task"))
      YQ_CHECK(meta["task"] == "detect", "task is '{}', only detect is supported", meta["task"]);
    int64_t nc = dim_value(*out, 1) > 4 ? dim_value(*out, 1) - 4 : 0;
    if (nc == 0) nc = static_cast<int64_t>(names.size());
    YQ_CHECK(nc > 0, "the number of classes is unknown (output0 has no static size and no names metadata)");
    if (!names.empty() && static_cast<int64_t>(names.size()) != nc) {
      log::warn("{}: {} names in the metadata for {} classes; using default names", origin, names.size(), nc);
      names.clear();
    }

    // Weights of every Conv node, in graph order, from initializers or Constant nodes.
    std::map<std::string, const onnx::TensorProto*> consts;
    for (const auto& t : g.initializer()) consts[t.name()] = &t;
    for (const auto& n : g.node())
      if (n.op_type() == "Constant" && n.output_size() == 1)
        for (const auto& a : n.attribute())
          if (a.name() == "value" && a.has_t()) consts[n.output(0)] = &a.t();
    std::vector<FileConv> convs;
    for (const auto& n : g.node()) {
      if (n.op_type() != "Conv") continue;
      FileConv fc;
      fc.node = n.name();
      YQ_CHECK(n.input_size() >= 2 && consts.count(n.input(1)), "Conv node '{}' has no constant weight",
               n.name());
      for (const auto& a : n.attribute())
        YQ_CHECK(a.name() != "group" || a.i() == 1,
                 "Conv node '{}' is grouped ({}), YOLOv8 has no grouped convs", n.name(), a.i());
      fc.weight_name = n.input(1);
      fc.weight = to_tensor(*consts[n.input(1)], origin);
      if (n.input_size() >= 3 && !n.input(2).empty()) {
        YQ_CHECK(consts.count(n.input(2)), "Conv node '{}' has a bias that is not a constant", n.name());
        fc.bias = to_tensor(*consts[n.input(2)], origin);
      }
      convs.push_back(std::move(fc));
    }
    YQ_CHECK(!convs.empty(), "the graph has no Conv nodes");

    // Scale from the stem conv's width: make_divisible(64 * width, 8) = 16, 32, 48, 64, 80.
    const int64_t stem = convs[0].weight.size(0);
    static const std::map<int64_t, std::string> kScaleByStem = {
        {16, "n"}, {32, "s"}, {48, "m"}, {64, "l"}, {80, "x"}};
    YQ_CHECK(kScaleByStem.count(stem),
             "the first conv has {} filters, which fits no YOLOv8 scale (16, 32, 48, 64, 80)", stem);
    ModelSpec spec = parse_model_name("yolov8" + kScaleByStem.at(stem), nc);
    spec.name = path.stem().string();
    spec.origin = origin;
    YoloV8 model(spec);
    if (!names.empty()) model->set_names(names);

    auto slots = conv_slots(*model);
    YQ_CHECK(slots.size() == convs.size(), "{} Conv nodes, a YOLOv8{} with {} classes has {}", convs.size(),
             spec.scale, nc, slots.size());
    std::map<std::string, size_t> by_name;
    for (size_t k = 0; k < convs.size(); ++k) by_name[convs[k].weight_name] = k;
    bool named = true;
    for (const auto& s : slots) named = named && by_name.count(s.name);

    torch::NoGradGuard no_grad;
    for (size_t k = 0; k < slots.size(); ++k) {
      const ConvSlot& s = slots[k];
      const FileConv& fc = convs[named ? by_name[s.name] : k];
      auto& w = s.conv->weight;
      YQ_CHECK(fc.weight.sizes() == w.sizes(), "Conv '{}' (weight {}) is [{}], {} of a YOLOv8{} is [{}]",
               fc.node, fc.weight_name, fmt::join(fc.weight.sizes(), ", "), s.name, spec.scale,
               fmt::join(w.sizes(), ", "));
      w.copy_(fc.weight);
      const int64_t c2 = w.size(0);
      torch::Tensor bias = fc.bias.defined() ? fc.bias : torch::zeros({c2});
      YQ_CHECK(bias.dim() == 1 && bias.size(0) == c2, "Conv '{}' has a bias of {} values for {} filters",
               fc.node, bias.numel(), c2);
      if (s.bn) {
        // BN as the identity carrying the conv bias: (y - 0) / sqrt(1 - eps + eps) * 1 + bias.
        s.bn->weight.fill_(1.0);
        s.bn->bias.copy_(bias);
        s.bn->running_mean.zero_();
        s.bn->running_var.fill_(1.0 - s.bn->options.eps());
      } else if (s.conv->bias.defined()) {
        s.conv->bias.copy_(bias);
      } else {
        YQ_CHECK(!fc.bias.defined() || fc.bias.abs().max().item<double>() == 0.0,
                 "Conv '{}' has a bias but {} has none", fc.node, s.name);
      }
    }
    model->eval();
    if (report) {
      report->convs = static_cast<int64_t>(slots.size());
      report->by_name = named;
      report->height = dim_value(g.input(0), 2);
      report->width = dim_value(g.input(0), 3);
      report->scale = spec.scale;
    }
    log::info("{}: YOLOv8{} with {} classes, {} convs matched by {}", origin, spec.scale, nc, slots.size(),
              named ? "name" : "graph order");
    return model;
  });
}

}  // namespace yq::model
