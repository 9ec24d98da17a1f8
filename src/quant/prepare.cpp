#include "quant/prepare.h"

#include <fmt/format.h>

#include <algorithm>

#include "core/error.h"
#include "model/yolov8.h"
#include "quant/fusion.h"

namespace yq::quant {

namespace {

// One quantizable place of the model.
struct Site {
  std::string name;
  std::string kind;
  model::ConvBnActImpl* conv = nullptr;
  torch::nn::Module* junction = nullptr;  // AddImpl / ConcatImpl
  torch::nn::Conv2dImpl* head = nullptr;
  FakeQuantize* head_wfq = nullptr;
  FakeQuantize* head_afq = nullptr;
};

std::vector<Site> find_sites(model::YoloV8Impl& model) {
  std::vector<Site> out;
  for (const auto& item : model.named_modules("", /*include_self=*/false)) {
    torch::nn::Module* m = item.value().get();
    if (auto* c = m->as<model::ConvBnActImpl>()) {
      out.push_back(Site{item.key(), "conv", c});
    } else if (m->as<model::AddImpl>() || m->as<model::ConcatImpl>()) {
      Site s{item.key(), m->as<model::AddImpl>() ? "add" : "concat"};
      s.junction = m;
      out.push_back(s);
    }
  }
  auto det = model.detect();
  const std::string prefix = "model." + std::to_string(model.layers().size() - 1);
  for (int branch = 0; branch < 2; ++branch) {
    auto& list = branch == 0 ? det->cv2 : det->cv3;
    for (size_t i = 0; i < list->size(); ++i) {
      Site s{fmt::format("{}.{}.{}.2", prefix, branch == 0 ? "cv2" : "cv3", i), "head"};
      s.head = list->ptr(i)->as<torch::nn::SequentialImpl>()->ptr(2)->as<torch::nn::Conv2dImpl>();
      s.head_wfq = branch == 0 ? &det->box_weight_fq[i] : &det->cls_weight_fq[i];
      s.head_afq = branch == 0 ? &det->box_act_fq[i] : &det->cls_act_fq[i];
      out.push_back(s);
    }
  }
  return out;
}

// A weight quantizer that has observed `w` (so its per-channel tensors have their final shapes).
FakeQuantize make_weight_fq(const QuantSpec& spec, const torch::Tensor& w, const std::string& layer) {
  YQ_CHECK_USAGE(!spec.scheme.per_channel || spec.scheme.axis == 0,
                 "layer {}: per-channel weight quantizers need axis 0 (output channels), found axis {}",
                 layer, spec.scheme.axis);
  FakeQuantize fq(spec);
  torch::NoGradGuard no_grad;
  fq->observer().observe(w.detach());
  fq->update_qparams();
  return fq;
}

}  // namespace

std::string PrepareReport::summary() const {
  return fmt::format("{} quantizable layers: {} weight quantizers, {} activation quantizers, {} float layers",
                     layers.size(), weight_quantizers, activation_quantizers, float_layers);
}

std::vector<std::string> quantizable_layers(model::YoloV8Impl& model) {
  std::vector<std::string> names;
  for (const auto& s : find_sites(model)) names.push_back(s.name);
  return names;
}

bool is_prepared(model::YoloV8Impl& model) {
  return !named_quantizers(model).empty();
}

PrepareReport prepare(model::YoloV8Impl& model, const QConfigMapping& mapping) {
  YQ_CHECK(!is_prepared(model), "prepare: the model is already prepared for quantization");
  const std::vector<Site> sites = find_sites(model);
  std::vector<std::string> names;
  for (const auto& s : sites) names.push_back(s.name);
  mapping.validate(names);
  // The specs as the mapping's target runs them (unchanged without a target).
  const std::optional<Target> target = mapping.target();
  auto wspec = [&](const QuantSpec& s, const std::string& layer) {
    return target ? target_weight_spec(s, *target, layer + " weight") : s;
  };
  auto aspec = [&](const QuantSpec& s, const std::string& layer, bool feeds_conv) {
    return target ? target_activation_spec(s, *target, feeds_conv, layer + " activation") : s;
  };

  PrepareReport rep;
  for (const Site& s : sites) {
    PreparedLayer pl{s.name, s.kind, std::nullopt, std::nullopt};
    const std::optional<QConfig> qc = mapping.qconfig_for(s.name);
    if (qc) {
      if (s.conv) {
        auto& c = *s.conv;
        if (qc->weight) {
          torch::Tensor folded;
          {
            torch::NoGradGuard no_grad;
            folded = fold_conv_bn(c.conv->weight, {}, *c.bn).weight;
          }
          pl.weight = wspec(*qc->weight, s.name);
          c.weight_fq = c.register_module("weight_fq", make_weight_fq(*pl.weight, folded, s.name));
        }
        if (qc->activation) {
          // pre_fq feeds only the SiLU (table); act_fq feeds the next convs.
          c.pre_fq = c.register_module("pre_fq", FakeQuantize(aspec(*qc->activation, s.name, false)));
          pl.activation = aspec(*qc->activation, s.name, true);
          c.act_fq = c.register_module("act_fq", FakeQuantize(*pl.activation));
        }
        if (pl.weight || pl.activation) c.mode = model::ConvMode::kQat;
        YQ_CHECK(c.mode != model::ConvMode::kFused, "prepare: {} is in fused mode", s.name);
      } else if (s.head) {
        if (qc->weight) {
          pl.weight = wspec(*qc->weight, s.name);
          *s.head_wfq =
              s.head->register_module("weight_fq", make_weight_fq(*pl.weight, s.head->weight, s.name));
        }
        if (qc->activation) {  // dequantized for the float DFL / decode: no conv reads it
          pl.activation = aspec(*qc->activation, s.name, false);
          *s.head_afq = s.head->register_module("act_fq", FakeQuantize(*pl.activation));
        }
      } else if (qc->activation) {
        pl.activation = aspec(*qc->activation, s.name, true);
        FakeQuantize fq = s.junction->register_module("out_fq", FakeQuantize(*pl.activation));
        if (auto* a = s.junction->as<model::AddImpl>()) a->out_fq = fq;
        if (auto* c = s.junction->as<model::ConcatImpl>()) c->out_fq = fq;
      }
    }
    rep.weight_quantizers += pl.weight ? 1 : 0;
    rep.activation_quantizers += pl.activation ? 1 : 0;
    rep.float_layers += !pl.weight && !pl.activation ? 1 : 0;
    rep.layers.push_back(std::move(pl));
  }

  // The image: [0, 1] onto the whole integer range of the first layer's activation scheme.
  const auto first = sites.empty() ? std::nullopt : mapping.qconfig_for(sites.front().name);
  if (first && first->activation) {
    QuantSpec spec = aspec(*first->activation, "input", true);
    spec.scheme.per_channel = false;
    spec.scheme.axis = 0;
    spec.learnable = false;
    if (spec.observer.find("per_channel") != std::string::npos) spec.observer = "minmax";
    const QScheme& q = spec.scheme;
    const int64_t zp = q.symmetric ? q.symmetric_zero_point() : q.quant_min();
    YQ_CHECK_USAGE(q.quant_max() > zp, "the input quantizer's scheme {} cannot represent [0, 1]",
                   q.to_string());
    model.input_fq = model.register_module("input_fq", FakeQuantize(spec));
    model.input_fq->set_qparams(1.0 / double(q.quant_max() - zp), zp);
    rep.activation_quantizers += 1;
    rep.layers.insert(rep.layers.begin(), PreparedLayer{"input", "input", std::nullopt, spec});
  }
  return rep;
}

int64_t int8_pair_bound(model::YoloV8Impl& model) {
  int64_t a_max = 0, w_max = 0;
  // Highest code in the uint8 domain the int8 runtimes use (signed grids shifted by 128).
  auto act = [&](FakeQuantize& fq) {
    if (fq.is_empty()) return;
    const QScheme& q = fq->scheme();
    a_max = std::max(a_max, q.quant_max() + (q.is_signed ? 128 : 0));
  };
  auto weight = [&](FakeQuantize& fq) {
    if (fq.is_empty()) return;
    const QScheme& q = fq->scheme();
    w_max =
        std::max(w_max, q.symmetric && q.is_signed ? std::max(-q.quant_min(), q.quant_max()) : int64_t(128));
  };
  for (const Site& s : find_sites(model)) {
    if (s.conv) weight(s.conv->weight_fq), act(s.conv->act_fq);
    if (s.head) weight(*s.head_wfq);
    if (auto* a = s.junction ? s.junction->as<model::AddImpl>() : nullptr) act(a->out_fq);
    if (auto* c = s.junction ? s.junction->as<model::ConcatImpl>() : nullptr) act(c->out_fq);
  }
  act(model.input_fq);
  return pair_bound(a_max, w_max);
}

std::vector<std::pair<std::string, FakeQuantize>> named_quantizers(model::YoloV8Impl& model) {
  std::vector<std::pair<std::string, FakeQuantize>> out;
  for (const auto& item : model.named_modules("", /*include_self=*/false))
    if (auto p = std::dynamic_pointer_cast<FakeQuantizeImpl>(item.value()))
      out.emplace_back(item.key(), FakeQuantize(p));
  return out;
}

void enable_observers(model::YoloV8Impl& model, bool on) {
  for (auto& [name, fq] : named_quantizers(model))
    if (name != "input_fq") fq->enable_observer(on);
}

void enable_fake_quant(model::YoloV8Impl& model, bool on) {
  for (auto& [name, fq] : named_quantizers(model)) fq->enable_fake_quant(on);
}

void freeze_quantizers(model::YoloV8Impl& model) {
  for (auto& [name, fq] : named_quantizers(model)) fq->freeze();
}

void freeze_bn(model::YoloV8Impl& model, bool on) {
  for (const auto& m : model.modules(/*include_self=*/false))
    if (auto* c = m->as<model::ConvBnActImpl>()) c->bn_frozen = on;
}

}  // namespace yq::quant
