// Vietnamese traffic-sign drawing for the synthetic data set (QCVN 41): a catalogue of sign designs
// named by their QCVN 41 codes, and a renderer that draws one design (or a sign-like distractor) as
// a small BGRA sprite whose alpha channel is the sign's coverage.
//
// Looks follow QCVN 41: prohibitory = white disc, red ring, black symbol (some with a red diagonal
// bar); warning = yellow triangle, red border, black symbol; mandatory = blue disc, white symbol;
// indication = blue rectangle, white symbol. Sprites are drawn anti-aliased at about 3x their final
// size and reduced with area averaging, so 8-pixel signs still look like signs.
#pragma once

#include <opencv2/core.hpp>

#include <string>
#include <vector>

#include "core/rng.h"

namespace yq::data {

enum class SignFamily { Prohibitory, Warning, Mandatory, Indication };

// What a horizontally mirrored image of a design shows.
enum class SignMirror {
  Self,      // the same sign (symmetric symbol, or a mirror that keeps its meaning)
  Partner,   // another real sign (`mirror` names it): no left turn <-> no right turn
  Forbidden  // nothing real (digits, text, a roundabout turning the wrong way)
};

struct SignDesign {
  std::string code;  // QCVN 41 code: "P.123a", "P.127-50"
  std::string meaning;
  SignFamily family = SignFamily::Prohibitory;
  SignMirror mirror_kind = SignMirror::Self;
  std::string mirror;  // the partner's code when mirror_kind == Partner
};

// Every design the renderer can draw.
const std::vector<SignDesign>& sign_catalogue();
// Index of `code` in sign_catalogue(), or -1.
int find_sign(const std::string& code);

// Draws design `design` (an index into sign_catalogue()) `width` pixels wide; the height follows the
// design's shape (discs are square, triangles 0.87 of the width). Colour, fading and wear vary
// with `rng`. Returns CV_8UC4 (BGR + coverage alpha).
cv::Mat render_sign(int design, int width, Rng& rng);

// Things that look like signs but are not: plain red or blue discs, circular shop logos, convex
// traffic mirrors, traffic lights. CV_8UC4 like render_sign, at most `width` pixels wide and 1.3 *
// `width` tall.
cv::Mat render_distractor(int width, Rng& rng);

}  // namespace yq::data
