// Knowledge distillation from an fp32 teacher for QAT (DESIGN.md "Quantization", QAT schedule): the
// quantization-aware student learns to reproduce the float model it started from.
//
// Kinds:
//   output   on the raw head outputs of every level. Box bins: KL(teacher || student) of the DFL softmax
//            over the reg_max bins of each side, summed over the 4 sides. Class logits: the Bernoulli KL
//            of the sigmoids, i.e. BCE(student, sigmoid(teacher)) - BCE(teacher, sigmoid(teacher)), summed
//            over the classes. Both at temperature T (logits / T, times T^2 as usual), averaged over the
//            anchors of all levels.
//   feature  MSE between the student's and the teacher's neck outputs that feed Detect (P3, P4, P5),
//            the mean of the per-level MSEs.
// Both are 0 when the student computes what the teacher computes, positive otherwise, and give no
// gradient to the teacher (its outputs are detached).
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "model/yolov8.h"

namespace yq::train {

// student, teacher: per level [B, 4 * reg_max + nc, H_i, W_i]. Returns a scalar.
torch::Tensor output_distill_loss(const std::vector<torch::Tensor>& student,
                                  const std::vector<torch::Tensor>& teacher, int64_t reg_max,
                                  double temperature = 1.0);

// student, teacher: per level [B, C_i, H_i, W_i]. Returns a scalar.
torch::Tensor feature_distill_loss(const std::vector<torch::Tensor>& student,
                                   const std::vector<torch::Tensor>& teacher);

struct DistillOptions {
  std::string kind = "output";  // output | feature
  double weight = 1.0;          // multiplies the loss
  double temperature = 1.0;     // output kind: logits are divided by it
};

// The teacher (an fp32 model, kept in eval mode without gradients) and the loss of a batch.
class Distiller {
 public:
  // Throws UsageError for an unknown kind, weight <= 0 or temperature <= 0.
  Distiller(model::YoloV8 teacher, DistillOptions options);

  // images [B, 3, H, W] as the student saw them; student_raw: its raw head outputs; student_neck: the
  // tensors its Detect read (needed by the feature kind). Runs the teacher on the same images under
  // no-grad and returns weight * loss (a scalar on the student's graph). Throws UsageError when the
  // teacher's outputs do not have the student's shapes (another nc or scale).
  torch::Tensor operator()(const torch::Tensor& images, const std::vector<torch::Tensor>& student_raw,
                           const std::vector<torch::Tensor>& student_neck);

  const DistillOptions& options() const { return opt_; }
  model::YoloV8& teacher() { return teacher_; }

 private:
  model::YoloV8 teacher_;
  DistillOptions opt_;
};

}  // namespace yq::train
