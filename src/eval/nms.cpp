#include "eval/nms.h"

#include <algorithm>
#include <unordered_map>

#include "core/error.h"

namespace yq::eval {
namespace {

// One candidate of the suppression: its score, the anchor (or box) it comes from and its class.
struct Candidate {
  float score;
  int32_t index;
  int32_t cls;
};

// Descending score; ties by index then class, so that the result never depends on the sort's algorithm.
bool ranks_before(const Candidate& a, const Candidate& b) {
  if (a.score != b.score) return a.score > b.score;
  if (a.index != b.index) return a.index < b.index;
  return a.cls < b.cls;
}

struct Box {
  float x1, y1, x2, y2, area;
};

Box make_box(float x1, float y1, float x2, float y2) {
  return {x1, y1, x2, y2, (x2 - x1) * (y2 - y1)};
}

// IoU in float as torchvision's CPU kernel does it (a degenerate pair gives NaN, which suppresses nothing).
inline float overlap(const Box& a, const Box& b) {
  float w = std::max(0.f, std::min(a.x2, b.x2) - std::max(a.x1, b.x1));
  float h = std::max(0.f, std::min(a.y2, b.y2) - std::max(a.y1, b.y1));
  float inter = w * h;
  return inter / (a.area + b.area - inter);
}

// Greedy suppression in rank order. group_of(c) in [0, n_groups) is the suppression group of a candidate
// (its class, or 0 when agnostic). Only the best `cap` candidates take part (<= 0: all). Each candidate is
// compared with the boxes already kept in its group only. The kept boxes come out in rank order, so
// stopping at max_keep gives exactly the first max_keep boxes of the full suppression; and as that usually
// happens early, the candidates are ranked lazily, a growing chunk at a time (nth_element, then sort of
// the chunk), instead of sorting all of them. Reorders cands; returns the positions (into the reordered
// cands) of the kept candidates.
template <class BoxOf, class GroupOf>
std::vector<int64_t> suppress(std::vector<Candidate>& cands, int64_t cap, BoxOf box_of, GroupOf group_of,
                              int64_t n_groups, double iou, int64_t max_keep) {
  const int64_t limit = cap > 0 ? std::min<int64_t>(cap, int64_t(cands.size())) : int64_t(cands.size());
  std::vector<std::vector<Box>> kept(size_t(std::max<int64_t>(n_groups, 1)));
  std::vector<int64_t> out;
  int64_t ranked = 0, chunk = std::max<int64_t>(1024, 4 * max_keep);
  for (int64_t i = 0; i < limit; ++i) {
    if (max_keep > 0 && int64_t(out.size()) >= max_keep) break;
    if (i == ranked) {  // rank the next chunk: everything before `ranked` outranks everything after it
      const int64_t next = std::min(limit, ranked + chunk);
      if (next < int64_t(cands.size()))
        std::nth_element(cands.begin() + ranked, cands.begin() + next, cands.end(), ranks_before);
      std::sort(cands.begin() + ranked, cands.begin() + next, ranks_before);
      ranked = next;
      chunk *= 2;
    }
    const Box b = box_of(cands[size_t(i)]);
    auto& group = kept[size_t(group_of(cands[size_t(i)]))];
    bool suppressed = false;
    for (const Box& k : group) {
      if (double(overlap(b, k)) > iou) {
        suppressed = true;
        break;
      }
    }
    if (suppressed) continue;
    group.push_back(b);
    out.push_back(i);
  }
  return out;
}

void check_options(const NmsOptions& o, int64_t nc) {
  YQ_CHECK_USAGE(o.conf >= 0 && o.conf <= 1, "NMS: conf must be in [0, 1], got {}", o.conf);
  YQ_CHECK_USAGE(o.iou >= 0 && o.iou <= 1, "NMS: iou must be in [0, 1], got {}", o.iou);
  YQ_CHECK_USAGE(o.max_det >= 1, "NMS: max_det must be at least 1, got {}", o.max_det);
  YQ_CHECK_USAGE(o.max_nms >= 1, "NMS: max_nms must be at least 1, got {}", o.max_nms);
  for (int c : o.classes)
    YQ_CHECK_USAGE(c >= 0 && c < nc, "NMS: classes lists {}, which is not a class of this model (nc = {})", c,
                   nc);
}

// One image: p points at [4 + nc, A] float, contiguous.
torch::Tensor nms_image(const float* p, int64_t nc, int64_t A, const NmsOptions& o,
                        const std::vector<char>& allowed) {
  // The reference compares float32 scores with the threshold cast to float32.
  const float conf = static_cast<float>(o.conf);
  std::vector<Candidate> cands;
  if (o.multi_label) {
    for (int64_t c = 0; c < nc; ++c) {
      if (!allowed[size_t(c)]) continue;
      const float* row = p + (4 + c) * A;
      for (int64_t a = 0; a < A; ++a)
        if (row[a] > conf) cands.push_back({row[a], int32_t(a), int32_t(c)});
    }
  } else {
    // Best class per anchor, scanning class rows contiguously; strict > keeps the first maximum.
    std::vector<float> best(p + 4 * A, p + 5 * A);
    std::vector<int32_t> best_cls(size_t(A), 0);
    for (int64_t c = 1; c < nc; ++c) {
      const float* row = p + (4 + c) * A;
      for (int64_t a = 0; a < A; ++a)
        if (row[a] > best[size_t(a)]) best[size_t(a)] = row[a], best_cls[size_t(a)] = int32_t(c);
    }
    for (int64_t a = 0; a < A; ++a)
      if (best[size_t(a)] > conf && allowed[size_t(best_cls[size_t(a)])])
        cands.push_back({best[size_t(a)], int32_t(a), best_cls[size_t(a)]});
  }

  auto box_of = [&](const Candidate& c) {
    float cx = p[c.index], cy = p[A + c.index], hw = p[2 * A + c.index] / 2, hh = p[3 * A + c.index] / 2;
    return make_box(cx - hw, cy - hh, cx + hw, cy + hh);
  };
  auto group_of = [&](const Candidate& c) { return o.agnostic ? 0 : c.cls; };
  auto keep = suppress(cands, o.max_nms, box_of, group_of, o.agnostic ? 1 : nc, o.iou, o.max_det);

  auto out = torch::empty({int64_t(keep.size()), 6}, torch::kFloat32);
  auto acc = out.accessor<float, 2>();
  for (size_t k = 0; k < keep.size(); ++k) {
    const Candidate& c = cands[size_t(keep[k])];
    Box b = box_of(c);
    acc[int64_t(k)][0] = b.x1;
    acc[int64_t(k)][1] = b.y1;
    acc[int64_t(k)][2] = b.x2;
    acc[int64_t(k)][3] = b.y2;
    acc[int64_t(k)][4] = c.score;
    acc[int64_t(k)][5] = float(c.cls);
  }
  return out;
}

}  // namespace

std::vector<torch::Tensor> non_max_suppression(const torch::Tensor& preds, const NmsOptions& o) {
  YQ_CHECK(preds.defined() && preds.dim() == 3 && preds.size(1) > 4,
           "NMS: expected predictions [B, 4 + nc, A] with nc >= 1, got {}",
           preds.defined() ? c10::str(preds.sizes()) : std::string("an undefined tensor"));
  YQ_CHECK(preds.is_floating_point(), "NMS: expected floating-point predictions, got {}",
           c10::toString(preds.scalar_type()));
  const int64_t B = preds.size(0), nc = preds.size(1) - 4, A = preds.size(2);
  YQ_CHECK(A < (int64_t(1) << 31), "NMS: {} anchors is more than supported", A);
  check_options(o, nc);

  std::vector<char> allowed(size_t(nc), o.classes.empty() ? 1 : 0);
  for (int c : o.classes) allowed[size_t(c)] = 1;

  auto cpu = preds.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  const float* data = cpu.data_ptr<float>();
  std::vector<torch::Tensor> out;
  out.reserve(size_t(B));
  for (int64_t b = 0; b < B; ++b) {
    auto det = nms_image(data + b * (4 + nc) * A, nc, A, o, allowed);
    out.push_back(preds.device().is_cpu() ? det : det.to(preds.device()));
  }
  return out;
}

torch::Tensor nms_indices(const torch::Tensor& boxes, const torch::Tensor& scores,
                          const torch::Tensor& classes, double iou, int64_t max_keep) {
  YQ_CHECK(boxes.dim() == 2 && boxes.size(1) == 4, "nms_indices: expected boxes [n, 4], got {}",
           c10::str(boxes.sizes()));
  const int64_t n = boxes.size(0);
  YQ_CHECK(scores.dim() == 1 && scores.size(0) == n, "nms_indices: expected scores [{}], got {}", n,
           c10::str(scores.sizes()));
  YQ_CHECK(!classes.defined() || (classes.dim() == 1 && classes.size(0) == n),
           "nms_indices: expected classes [{}], got {}", n, c10::str(classes.sizes()));
  YQ_CHECK(n < (int64_t(1) << 31), "nms_indices: {} boxes is more than supported", n);

  auto bx = boxes.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  auto sc = scores.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  const float* bp = bx.data_ptr<float>();
  const float* sp = sc.data_ptr<float>();

  // Dense group ids in order of first appearance.
  std::vector<int32_t> group(size_t(n), 0);
  int64_t n_groups = 1;
  if (classes.defined()) {
    auto cl = classes.detach().to(torch::kCPU, torch::kInt64).contiguous();
    const int64_t* cp = cl.data_ptr<int64_t>();
    std::unordered_map<int64_t, int32_t> ids;
    for (int64_t i = 0; i < n; ++i) group[size_t(i)] = ids.emplace(cp[i], int32_t(ids.size())).first->second;
    n_groups = int64_t(ids.size());
  }

  std::vector<Candidate> cands(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) cands[size_t(i)] = {sp[i], int32_t(i), group[size_t(i)]};
  auto box_of = [&](const Candidate& c) {
    const float* q = bp + 4 * int64_t(c.index);
    return make_box(q[0], q[1], q[2], q[3]);
  };
  auto group_of = [](const Candidate& c) { return c.cls; };
  auto keep = suppress(cands, 0, box_of, group_of, n_groups, iou, max_keep);

  auto out = torch::empty({int64_t(keep.size())}, torch::kInt64);
  auto* op = out.data_ptr<int64_t>();
  for (size_t k = 0; k < keep.size(); ++k) op[k] = cands[size_t(keep[k])].index;
  return out;
}

}  // namespace yq::eval
