// Image + box transforms of the training and validation pipelines (OpenCV only, no LibTorch):
// letterbox, resize to the long side, 4-image mosaic, random affine/perspective, HSV jitter and flips,
// and the whole training-time chain for one sample.
//
// Conventions:
//  - Images are BGR uint8 (CV_8UC3). Boxes are BoxPx in pixels with continuous pixel-edge coordinates:
//    pixel column i covers [i, i + 1), so a box x1 = 10, x2 = 20 covers columns 10..19 exactly.
//    Every transform maps the image and the boxes with the same geometric map in that convention
//    (warps are conjugated by the half-pixel shift OpenCV's pixel-centre convention needs), so a box
//    drawn on the image before a transform lands on the transformed box.
//  - Everything random draws only from the given yq::Rng, so a sample is the same for a given seed
//    whatever thread computes it.
//  - Functions that return a new image never share pixels with their input (later steps work in place).
#pragma once

#include <array>
#include <functional>
#include <opencv2/core.hpp>
#include <vector>

#include "core/rng.h"
#include "data/boxes.h"

namespace yq::data {

// An image with its boxes.
struct Annotated {
  cv::Mat image;             // [H, W] CV_8UC3, BGR
  std::vector<BoxPx> boxes;  // pixels of `image`
};

// Augmentation strengths; names and defaults are the YOLOv8 training keys (SPEC-YOLOV8.md).
struct AugmentOptions {
  double hsv_h = 0.015;    // hue gain: hue scaled by a factor uniform in [1 - h, 1 + h] (wraps at 180)
  double hsv_s = 0.7;      // saturation gain (factor in [1 - s, 1 + s], clipped to 255)
  double hsv_v = 0.4;      // value gain (factor in [1 - v, 1 + v], clipped to 255)
  double degrees = 0;      // rotation, uniform in [-degrees, degrees]
  double translate = 0.1;  // centre placed at (0.5 +- translate) of the output, per axis
  double scale = 0.5;      // zoom factor uniform in [1 - scale, 1 + scale]
  double shear = 0;        // shear angles (degrees) uniform in [-shear, shear], per axis
  double perspective = 0;  // perspective coefficients uniform in [-perspective, perspective]
  double fliplr = 0.5;     // probability of a left-right flip (subject to the flip map)
  double flipud = 0;       // probability of an up-down flip
  double mosaic = 1.0;     // probability of a 4-image mosaic
};

// How letterbox mapped the original image: letterboxed = original * ratio + pad.
struct LetterboxInfo {
  double ratio = 1;             // scale applied to the original image
  double pad_x = 0, pad_y = 0;  // left and top padding in letterboxed pixels (whole pixels)
  int out_w = 0, out_h = 0;     // letterboxed image size
};

// Grey of the padding and of the areas a warp uncovers (the reference's 114).
constexpr int kPadGrey = 114;

// Resizes `img` keeping its aspect ratio so it fits out_w x out_h (ratio = min(out_w / w, out_h / h),
// capped at 1 when !scaleup) and pads with grey 114 to exactly out_w x out_h; the padding is split
// evenly (odd pixel at the right/bottom) when `center`, else it all goes to the right/bottom.
// Fills *info when non-null.
cv::Mat letterbox(const cv::Mat& img, int out_w, int out_h, LetterboxInfo* info, bool scaleup = true,
                  bool center = true);
// Original pixels -> letterboxed pixels.
void letterbox_boxes(std::vector<BoxPx>& boxes, const LetterboxInfo& info);
// Letterboxed pixels -> original pixels, clipped to [0, orig_w] x [0, orig_h].
void unletterbox_boxes(std::vector<BoxPx>& boxes, const LetterboxInfo& info, int orig_w, int orig_h);

// Resizes so the long side equals imgsz (bilinear), keeping the aspect ratio; boxes follow exactly
// (per-axis factors of the rounded size). The first step before mosaic or the affine, as in the reference.
Annotated resize_long_side(const Annotated& a, int imgsz);

// 4-image mosaic on a 2*imgsz x 2*imgsz grey canvas: a centre (xc, yc) is drawn uniformly in
// [imgsz/2, 3*imgsz/2]; parts 0..3 are placed with their bottom-right, bottom-left, top-right, top-left
// corner at the centre (top-left, top-right, bottom-left, bottom-right quadrants), cropped by the canvas.
// Boxes are shifted and clipped to the canvas; boxes left with no area are dropped. Parts are used at their
// size (callers resize them with resize_long_side first).
Annotated mosaic4(const std::array<Annotated, 4>& parts, int imgsz, Rng& rng);

// Draws the random geometric transform of random_affine for an in_w x in_h input and an out_w x out_h
// output: M = T * S * R * P * C, where C moves the input centre to the origin, P is the perspective, R the
// rotation and scale, S the shear and T moves the origin to (0.5 +- translate) of the output.
// Maps continuous pixel-edge coordinates (x, y, 1) of the input to the output (homogeneous).
cv::Matx33d random_affine_matrix(const AugmentOptions& o, int in_w, int in_h, int out_w, int out_h, Rng& rng);

// Warps the image with M (bilinear, grey 114 border) to out_w x out_h (a perspective warp when the last row
// of M is not (0, 0, 1)) and maps the boxes: the 4 corners are transformed, the enclosing box is taken and
// clipped to the output, and a box is kept only if its clipped width and height are > 2 px, its clipped area
// is > 0.1 of the unclipped enclosing box's area, and its aspect ratio is < 100.
void warp_annotated(Annotated& a, const cv::Matx33d& M, int out_w, int out_h);

// Random affine (rotation `degrees`, scale 1 +- scale, shear, translation 0.5 +- translate of the output,
// optional perspective) to an out_w x out_h output. The reference's `border` is implied by the sizes: a
// 2*imgsz mosaic canvas warped to imgsz x imgsz is cropped around its centre (border = -imgsz/2);
// equal sizes are border 0. Boxes as in warp_annotated.
void random_affine(Annotated& a, const AugmentOptions& o, int out_w, int out_h, Rng& rng);

// HSV jitter in place: hue, saturation and value are each multiplied by a factor uniform in
// [1 - gain, 1 + gain] through lookup tables (hue wraps at 180, OpenCV's 8-bit hue range; S and V clip
// at 255). All gains zero leaves the image untouched and draws nothing.
void augment_hsv(cv::Mat& bgr, double h_gain, double s_gain, double v_gain, Rng& rng);

// Horizontal flip with a per-class flip map: class c becomes flip_map[c]; if any box's class maps to -1
// the image is not flipped and false is returned. An empty map means every class is its own mirror.
// Throws yq::UsageError when a box's class is outside a non-empty map.
bool flip_lr(Annotated& a, const std::vector<int>& flip_map);
// Vertical flip (classes unchanged).
void flip_ud(Annotated& a);

// The training-time chain for one sample, output imgsz x imgsz:
//  - with probability o.mosaic: load(index) and load(k) for 3 indices k drawn in [0, n); each resized with
//    resize_long_side, then mosaic4 and random_affine to imgsz x imgsz (crop of the canvas centre);
//  - otherwise: resize_long_side, letterbox to imgsz x imgsz, random_affine (border 0);
//  - then HSV jitter, the up-down flip (probability o.flipud), the left-right flip (o.fliplr, flip map).
// `load(k)` returns sample k at its original size (it may return shared pixels: they are not modified).
Annotated augment_sample(int index, int n, const std::function<Annotated(int)>& load, int imgsz,
                         const AugmentOptions& o, const std::vector<int>& flip_map, Rng& rng);

}  // namespace yq::data
