#include "train/loss.h"

#include "core/error.h"
#include "model/anchors.h"
#include "train/iou.h"

namespace yq::train {

using torch::indexing::Slice;

torch::Tensor distribution_focal_loss(const torch::Tensor& pred_dist, const torch::Tensor& target) {
  YQ_CHECK(pred_dist.dim() == 3 && target.dim() == 2 && pred_dist.size(0) == target.size(0) &&
               pred_dist.size(1) == target.size(1),
           "distribution_focal_loss: expected pred_dist [N, 4, reg_max] and target [N, 4], got {} and {}",
           c10::str(pred_dist.sizes()), c10::str(target.sizes()));
  auto left = target.to(torch::kLong);  // [N, 4] floor (targets are >= 0)
  auto right = left + 1;
  auto w_left = right.to(target.scalar_type()) - target;  // [N, 4]
  auto w_right = 1 - w_left;
  auto logp = torch::log_softmax(pred_dist, -1);  // [N, 4, reg_max]
  auto lp_left = logp.gather(-1, left.unsqueeze(-1)).squeeze(-1);
  auto lp_right = logp.gather(-1, right.unsqueeze(-1)).squeeze(-1);
  return -(lp_left * w_left + lp_right * w_right).mean(-1);
}

PaddedTargets pad_targets(const torch::Tensor& targets, int64_t batch, int64_t img_h, int64_t img_w) {
  YQ_CHECK(targets.dim() == 2 && targets.size(1) == 6,
           "loss: targets must be [N, 6] (batch index, class, cx, cy, w, h), got {}",
           c10::str(targets.sizes()));
  const auto fopt = targets.options().dtype(torch::kFloat32);
  const int64_t n = targets.size(0);
  PaddedTargets p;
  if (n == 0) {
    p.labels = torch::zeros({batch, 0, 1}, fopt);
    p.boxes = torch::zeros({batch, 0, 4}, fopt);
    p.mask = torch::zeros({batch, 0, 1}, fopt.dtype(torch::kBool));
    return p;
  }
  auto t = targets.detach().to(torch::kFloat32);
  auto bi = t.index({Slice(), 0}).to(torch::kLong);  // [N]
  const int64_t bmin = bi.min().item<int64_t>(), bmax = bi.max().item<int64_t>();
  YQ_CHECK(bmin >= 0 && bmax < batch, "loss: target batch indices must lie in [0, {}), found {}..{}", batch,
           bmin, bmax);
  // Slot of each target inside its image: rank among the targets of the same image, in input order.
  auto sorted = torch::sort(bi, /*stable=*/true, /*dim=*/0, /*descending=*/false);
  auto order = std::get<1>(sorted);
  auto sorted_bi = std::get<0>(sorted);
  auto counts = torch::bincount(bi, {}, batch);  // [B]
  const int64_t m = counts.max().item<int64_t>();
  auto first = counts.cumsum(0) - counts;  // [B] position of each image's first target in `order`
  auto slot = torch::arange(n, bi.options()) - first.index_select(0, sorted_bi);

  auto ts = t.index_select(0, order);
  auto xywh = ts.index({Slice(), Slice(2, 6)});
  auto scale = torch::tensor({double(img_w), double(img_h), double(img_w), double(img_h)}, fopt);
  auto cxcy = xywh.index({Slice(), Slice(0, 2)}), half = xywh.index({Slice(), Slice(2, 4)}) / 2;
  auto xyxy = torch::cat({cxcy - half, cxcy + half}, 1) * scale;  // [N, 4] pixels

  p.labels = torch::zeros({batch, m, 1}, fopt);
  p.boxes = torch::zeros({batch, m, 4}, fopt);
  p.mask = torch::zeros({batch, m, 1}, fopt.dtype(torch::kBool));
  p.labels.index_put_({sorted_bi, slot}, ts.index({Slice(), Slice(1, 2)}));
  p.boxes.index_put_({sorted_bi, slot}, xyxy);
  p.mask.index_put_({sorted_bi, slot}, torch::ones({n, 1}, p.mask.options()));
  return p;
}

DetectionLoss::DetectionLoss(int nc, std::vector<int64_t> strides, LossOptions opts)
    : nc_(nc), strides_(std::move(strides)), opts_(opts), assigner_(opts.topk, nc, opts.alpha, opts.beta) {
  YQ_CHECK_USAGE(nc >= 1, "loss: nc must be >= 1, got {}", nc);
  YQ_CHECK_USAGE(!strides_.empty(), "loss: at least one stride is needed");
  YQ_CHECK_USAGE(opts_.reg_max >= 2, "loss: reg_max must be >= 2, got {}", opts_.reg_max);
}

LossOutput DetectionLoss::operator()(const std::vector<torch::Tensor>& feats, const torch::Tensor& targets,
                                     int64_t img_h, int64_t img_w) const {
  const int64_t R = opts_.reg_max, no = 4 * R + nc_;
  YQ_CHECK(feats.size() == strides_.size(), "loss: {} feature levels for {} strides", feats.size(),
           strides_.size());
  const int64_t B = feats[0].size(0);
  std::vector<torch::Tensor> flat;
  std::vector<std::pair<int64_t, int64_t>> sizes;
  for (size_t i = 0; i < feats.size(); ++i) {
    const auto& f = feats[i];
    YQ_CHECK(f.dim() == 4 && f.size(0) == B && f.size(1) == no,
             "loss: level {} must be [{}, {} = 4 * {} + {}, H, W], got {}", i, B, no, R, nc_,
             c10::str(f.sizes()));
    sizes.emplace_back(f.size(2), f.size(3));
    flat.push_back(f.flatten(2).permute({0, 2, 1}));  // [B, H * W, no] (a view)
  }
  // One copy into anchor-major layout; split (not two narrows) so that backward is a single cat.
  auto parts_in = torch::cat(flat, 1).split_with_sizes({4 * R, int64_t(nc_)}, 2);
  auto pred_dist = parts_in[0];    // [B, A, 4 R] (strided view)
  auto pred_scores = parts_in[1];  // [B, A, nc] (strided view)
  const int64_t A = pred_dist.size(1);
  const auto fdt = pred_dist.scalar_type();

  auto [anchors, stride_t] = model::make_anchors(sizes, strides_, fdt, pred_dist.device());  // [A, 2], [A, 1]

  // Decode: softmax expectation over the bins -> (l, t, r, b) in stride units -> xyxy in grid units.
  auto proj = torch::arange(R, pred_dist.options().requires_grad(false));
  auto dist = pred_dist.view({B, A, 4, R}).softmax(3).matmul(proj);    // [B, A, 4]
  auto pred_bboxes = model::dist2bbox(dist, anchors, /*xywh=*/false);  // [B, A, 4]

  auto gt = pad_targets(targets.to(pred_dist.device()), B, img_h, img_w);
  if (gt.labels.numel() > 0) {
    auto cls_ids = gt.labels.masked_select(gt.mask);
    const double cmin = cls_ids.min().item<double>(), cmax = cls_ids.max().item<double>();
    YQ_CHECK(cmin >= 0 && cmax < nc_, "loss: target class ids must lie in [0, {}), found {}..{}", nc_, cmin,
             cmax);
  }

  AssignResult as =
      assigner_(pred_scores.detach().sigmoid(), (pred_bboxes.detach() * stride_t).to(gt.boxes.dtype()),
                anchors * stride_t, gt.labels, gt.boxes, gt.mask);
  auto target_scores = as.target_scores.to(fdt);
  auto tss = target_scores.sum().clamp_min(1.0);  // normalizer of all three parts

  auto cls_loss =
      torch::binary_cross_entropy_with_logits(pred_scores, target_scores, {}, {}, at::Reduction::None).sum() /
      tss;

  auto zero = torch::zeros({}, pred_dist.options());
  torch::Tensor box_loss = zero, dfl_loss = zero;
  auto fg = as.fg_mask.nonzero();  // [P, 2]: b, a of the positives
  if (fg.size(0) > 0) {
    auto fb = fg.index({Slice(), 0}), fa = fg.index({Slice(), 1});
    auto weight = target_scores.index({fb, fa}).sum(-1);                                // [P]
    auto tb = as.target_bboxes.index({fb, fa}).to(fdt) / stride_t.index_select(0, fa);  // [P, 4] grid units
    auto ciou = bbox_iou(pred_bboxes.index({fb, fa}), tb, IouKind::kCIoU);              // [P]
    box_loss = ((1.0 - ciou) * weight).sum() / tss;

    // Target distances in bins, clamped to [0, R - 1.01] (14.99 for 16 bins).
    auto target_ltrb = model::bbox2dist(anchors.index_select(0, fa), tb, double(R - 1));        // [P, 4]
    auto d = distribution_focal_loss(pred_dist.index({fb, fa}).view({-1, 4, R}), target_ltrb);  // [P]
    dfl_loss = (d * weight).sum() / tss;
  }

  auto parts = torch::stack({box_loss * opts_.box, cls_loss * opts_.cls, dfl_loss * opts_.dfl});  // [3]
  LossOutput out;
  out.total = parts.sum() * double(B);
  out.items = parts.detach();
  return out;
}

}  // namespace yq::train
