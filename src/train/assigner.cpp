#include "train/assigner.h"

#include <algorithm>

#include "core/error.h"
#include "train/iou.h"

namespace yq::train {

using torch::indexing::Slice;

TaskAlignedAssigner::TaskAlignedAssigner(int topk, int nc, double alpha, double beta, double eps)
    : topk_(topk), nc_(nc), alpha_(alpha), beta_(beta), eps_(eps) {
  YQ_CHECK_USAGE(topk >= 1, "assigner: topk must be >= 1, got {}", topk);
  YQ_CHECK_USAGE(nc >= 1, "assigner: nc must be >= 1, got {}", nc);
}

AssignResult TaskAlignedAssigner::operator()(const torch::Tensor& pd_scores, const torch::Tensor& pd_bboxes,
                                             const torch::Tensor& anc_points, const torch::Tensor& gt_labels,
                                             const torch::Tensor& gt_bboxes,
                                             const torch::Tensor& mask_gt) const {
  torch::NoGradGuard no_grad;
  YQ_CHECK(pd_scores.dim() == 3 && pd_scores.size(2) == nc_, "assigner: pd_scores must be [B, A, {}], got {}",
           nc_, c10::str(pd_scores.sizes()));
  const int64_t B = pd_scores.size(0), A = pd_scores.size(1);
  YQ_CHECK(pd_bboxes.dim() == 3 && pd_bboxes.size(0) == B && pd_bboxes.size(1) == A && pd_bboxes.size(2) == 4,
           "assigner: pd_bboxes must be [{}, {}, 4], got {}", B, A, c10::str(pd_bboxes.sizes()));
  YQ_CHECK(anc_points.dim() == 2 && anc_points.size(0) == A && anc_points.size(1) == 2,
           "assigner: anc_points must be [{}, 2], got {}", A, c10::str(anc_points.sizes()));
  YQ_CHECK(gt_bboxes.dim() == 3 && gt_bboxes.size(0) == B && gt_bboxes.size(2) == 4,
           "assigner: gt_bboxes must be [{}, M, 4], got {}", B, c10::str(gt_bboxes.sizes()));
  const int64_t M = gt_bboxes.size(1);
  YQ_CHECK(gt_labels.dim() == 3 && gt_labels.size(0) == B && gt_labels.size(1) == M && gt_labels.size(2) == 1,
           "assigner: gt_labels must be [{}, {}, 1], got {}", B, M, c10::str(gt_labels.sizes()));
  YQ_CHECK(mask_gt.dim() == 3 && mask_gt.size(0) == B && mask_gt.size(1) == M && mask_gt.size(2) == 1,
           "assigner: mask_gt must be [{}, {}, 1], got {}", B, M, c10::str(mask_gt.sizes()));

  const auto dev = pd_scores.device();
  const auto fdt = pd_bboxes.scalar_type();
  const auto lopt = torch::TensorOptions().dtype(torch::kLong).device(dev);

  AssignResult r;
  if (M == 0) {
    r.target_labels = torch::full({B, A}, int64_t(nc_), lopt);
    r.target_bboxes = torch::zeros({B, A, 4}, pd_bboxes.options());
    r.target_scores = torch::zeros({B, A, nc_}, pd_scores.options());
    r.fg_mask = torch::zeros({B, A}, lopt.dtype(torch::kBool));
    r.target_gt_idx = torch::zeros({B, A}, lopt);
    return r;
  }

  auto gtb = gt_bboxes.to(fdt);
  auto labels = gt_labels.squeeze(-1).to(torch::kLong);  // [B, M]
  auto valid = mask_gt.squeeze(-1).to(torch::kBool);     // [B, M]

  // 1. Candidates: anchor centre strictly inside the box, by the smallest of its four margins.
  auto ax = anc_points.index({Slice(), 0}).to(fdt).view({1, 1, A});
  auto ay = anc_points.index({Slice(), 1}).to(fdt).view({1, 1, A});
  auto g = gtb.unsqueeze(-1).unbind(2);            // x1, y1, x2, y2, each [B, M, 1]
  auto margin = torch::min(ax - g[0], ay - g[1]);  // [B, M, A]
  margin = torch::min(margin, g[2] - ax);
  margin = torch::min(margin, g[3] - ay);
  auto cand = margin.gt(eps_).logical_and_(valid.unsqueeze(-1));  // [B, M, A] bool
  margin = torch::Tensor();

  // 2. Alignment of the candidate pairs only.
  auto idx = cand.nonzero();  // [K, 3]: b, m, a
  auto ib = idx.index({Slice(), 0}), im = idx.index({Slice(), 1}), ia = idx.index({Slice(), 2});
  auto cls = labels.index({ib, im});  // [K]
  YQ_CHECK(cls.numel() == 0 || (cls.min().item<int64_t>() >= 0 && cls.max().item<int64_t>() < nc_),
           "assigner: gt class ids must lie in [0, {}), found {}..{}", nc_, cls.min().item<int64_t>(),
           cls.max().item<int64_t>());
  auto score = pd_scores.index({ib, ia, cls}).to(fdt);                                               // [K]
  auto iou = bbox_iou(gtb.index({ib, im}), pd_bboxes.index({ib, ia}), IouKind::kCIoU).clamp_min(0);  // [K]
  auto align = score.pow(alpha_) * iou.pow(beta_);                                                   // [K]

  // Dense [B, M, A] metrics: CIoU of candidates (0 elsewhere); alignment of candidates, -1 elsewhere so
  // that every candidate (alignment >= 0) ranks above every non-candidate.
  auto overlaps = torch::zeros({B, M, A}, pd_bboxes.options());
  auto ranked = torch::full({B, M, A}, -1.0, pd_bboxes.options());
  overlaps.index_put_({ib, im, ia}, iou);
  ranked.index_put_({ib, im, ia}, align);
  cand = torch::Tensor();

  // 3. Top-k candidates per box; from here on only the (at most B * M * k) positives are handled.
  const int64_t k = std::min<int64_t>(topk_, A);
  auto top = ranked.topk(k, -1);
  auto top_val = std::get<0>(top), top_idx = std::get<1>(top);  // [B, M, k]
  auto top_iou = overlaps.gather(-1, top_idx);                  // [B, M, k]
  ranked = overlaps = torch::Tensor();
  auto sel = top_val.ge(0).nonzero();  // [P, 3]: b, m, j
  auto pb = sel.index({Slice(), 0}), pm = sel.index({Slice(), 1}), pj = sel.index({Slice(), 2});
  auto pa = top_idx.index({pb, pm, pj});       // [P] anchor
  auto p_align = top_val.index({pb, pm, pj});  // [P]
  auto p_iou = top_iou.index({pb, pm, pj});    // [P]

  // 4. Conflicts: an anchor claimed by several boxes keeps the claimant with the highest IoU (ties: the
  //    lowest box index).
  if (sel.size(0) > 0) {
    auto key = pb * A + pa;  // [P] anchor id in the batch
    auto best_iou = torch::full({B * A}, -1.0, p_iou.options()).scatter_reduce(0, key, p_iou, "amax");
    auto m_if_best = torch::where(p_iou.eq(best_iou.index_select(0, key)), pm, torch::full_like(pm, M));
    auto first_best = torch::full({B * A}, M, lopt).scatter_reduce(0, key, m_if_best, "amin");
    auto winner = pm.eq(first_best.index_select(0, key)).nonzero().squeeze(1);  // [P'] positions kept
    pb = pb.index_select(0, winner);
    pm = pm.index_select(0, winner);
    pa = pa.index_select(0, winner);
    p_align = p_align.index_select(0, winner);
    p_iou = p_iou.index_select(0, winner);
  }
  auto p_cls = labels.index({pb, pm});  // [P]

  r.fg_mask =
      torch::zeros({B, A}, lopt.dtype(torch::kBool)).index_put_({pb, pa}, torch::ones_like(pb, torch::kBool));
  r.target_gt_idx = torch::zeros({B, A}, lopt).index_put_({pb, pa}, pm);
  r.target_labels = torch::full({B, A}, int64_t(nc_), lopt).index_put_({pb, pa}, p_cls);
  r.target_bboxes = torch::zeros({B, A, 4}, gtb.options()).index_put_({pb, pa}, gtb.index({pb, pm}));

  // 5. Soft targets, normalized per box by its best positive (after conflicts).
  auto gkey = pb * M + pm;  // [P] box id in the batch
  auto max_align = torch::zeros({B * M}, p_align.options()).scatter_reduce(0, gkey, p_align, "amax");
  auto max_iou = torch::zeros({B * M}, p_iou.options()).scatter_reduce(0, gkey, p_iou, "amax");
  auto norm = p_align * max_iou.index_select(0, gkey) / (max_align.index_select(0, gkey) + eps_);  // [P]
  r.target_scores = torch::zeros({B, A, nc_}, pd_scores.options())
                        .index_put_({pb, pa, p_cls}, norm.to(pd_scores.scalar_type()));
  return r;
}

}  // namespace yq::train
