#include "train/distill.h"

#include <fmt/format.h>

#include "core/error.h"

namespace yq::train {

namespace {

void check_same_shapes(const std::vector<torch::Tensor>& s, const std::vector<torch::Tensor>& t,
                       const char* what) {
  YQ_CHECK_USAGE(s.size() == t.size(), "distillation: the student has {} {} levels, the teacher {}", s.size(),
                 what, t.size());
  for (size_t i = 0; i < s.size(); ++i)
    YQ_CHECK_USAGE(s[i].sizes() == t[i].sizes(),
                   "distillation: {} level {} is [{}] in the student but [{}] in the teacher (the teacher "
                   "must be the same architecture with the same classes)",
                   what, i, fmt::join(s[i].sizes(), ", "), fmt::join(t[i].sizes(), ", "));
}

}  // namespace

torch::Tensor output_distill_loss(const std::vector<torch::Tensor>& student,
                                  const std::vector<torch::Tensor>& teacher, int64_t reg_max,
                                  double temperature) {
  check_same_shapes(student, teacher, "head output");
  YQ_CHECK(!student.empty() && temperature > 0, "output_distill_loss: no levels or temperature <= 0");
  const int64_t nbox = 4 * reg_max;
  torch::Tensor sum = torch::zeros({}, student[0].options());
  int64_t anchors = 0;
  for (size_t i = 0; i < student.size(); ++i) {
    const auto& s = student[i];
    const auto t = teacher[i].detach();
    const int64_t b = s.size(0), a = s.size(2) * s.size(3);
    YQ_CHECK(s.size(1) > nbox, "output_distill_loss: level {} has {} channels, expected > {}", i, s.size(1),
             nbox);
    anchors += b * a;
    // Box bins: [B, 4, reg_max, A], KL over the bins.
    auto sb = s.narrow(1, 0, nbox).reshape({b, 4, reg_max, a}) / temperature;
    auto tb = t.narrow(1, 0, nbox).reshape({b, 4, reg_max, a}) / temperature;
    auto t_logp = torch::log_softmax(tb, 2);
    auto s_logp = torch::log_softmax(sb, 2);
    sum = sum + (t_logp.exp() * (t_logp - s_logp)).sum();
    // Class logits: Bernoulli KL of the sigmoids.
    auto sc = s.narrow(1, nbox, s.size(1) - nbox) / temperature;
    auto tc = t.narrow(1, nbox, s.size(1) - nbox) / temperature;
    auto pt = torch::sigmoid(tc);
    auto none = torch::Reduction::None;
    auto kl = torch::binary_cross_entropy_with_logits(sc, pt, {}, {}, none) -
              torch::binary_cross_entropy_with_logits(tc, pt, {}, {}, none);
    sum = sum + kl.sum();
  }
  return sum * (temperature * temperature) / double(anchors);
}

torch::Tensor feature_distill_loss(const std::vector<torch::Tensor>& student,
                                   const std::vector<torch::Tensor>& teacher) {
  check_same_shapes(student, teacher, "neck feature");
  YQ_CHECK(!student.empty(), "feature_distill_loss: no levels");
  torch::Tensor sum = torch::zeros({}, student[0].options());
  for (size_t i = 0; i < student.size(); ++i) sum = sum + torch::mse_loss(student[i], teacher[i].detach());
  return sum / double(student.size());
}

Distiller::Distiller(model::YoloV8 teacher, DistillOptions options)
    : teacher_(std::move(teacher)), opt_(std::move(options)) {
  YQ_CHECK_USAGE(opt_.kind == "output" || opt_.kind == "feature",
                 "key 'distill_kind': unknown kind '{}' (known: output, feature)", opt_.kind);
  YQ_CHECK_USAGE(opt_.weight > 0, "key 'distill': the weight must be > 0 to distill, found {}", opt_.weight);
  YQ_CHECK_USAGE(opt_.temperature > 0, "key 'distill_temperature' must be > 0, found {}", opt_.temperature);
  teacher_->eval();
  for (auto& p : teacher_->parameters()) p.set_requires_grad(false);
}

torch::Tensor Distiller::operator()(const torch::Tensor& images,
                                    const std::vector<torch::Tensor>& student_raw,
                                    const std::vector<torch::Tensor>& student_neck) {
  std::vector<torch::Tensor> t_raw, t_neck;
  {
    torch::NoGradGuard no_grad;
    teacher_->eval();
    t_raw = teacher_->forward_raw(images, &t_neck);
  }
  if (opt_.kind == "feature") {
    YQ_CHECK(!student_neck.empty(), "feature distillation needs the student's Detect inputs");
    return feature_distill_loss(student_neck, t_neck) * opt_.weight;
  }
  return output_distill_loss(student_raw, t_raw, teacher_->reg_max(), opt_.temperature) * opt_.weight;
}

}  // namespace yq::train
