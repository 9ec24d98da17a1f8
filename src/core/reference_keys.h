// The keys of the reference Python tool (ultralytics YOLOv8, and YOLOv5's spellings its users still
// type) that yoloqat spells differently or answers otherwise: a table used only for the unknown-key
// error ("unknown key 'pretrained': yoloqat calls it 'weights'"). Nothing here is accepted silently:
// yoloqat's own name is the one to type (model= of a checkpoint and device= are real keys, see
// cli/command.h).
#pragma once

#include <string>
#include <vector>

namespace yq {

class Schema;

struct ReferenceKey {
  std::string key;   // as the reference spells it ("pretrained", "conf_thres", "cfg")
  std::string ours;  // yoloqat's key or flag ("weights", "--config"); "" = no equivalent, `note` says why
  std::string note;  // what to know beyond the name ("" = a pure rename)
};

// Every entry, in table order (README's alias table is this list).
const std::vector<ReferenceKey>& reference_keys();

// For a key `schema` does not declare: the reason to show after "unknown key 'X'" (": yoloqat calls it
// 'Y' (note)" or ": note"), or "" when the key is not the reference's. An entry whose `ours` is a key
// applies only where `schema` declares that key (or, for a flag such as --config, everywhere); an
// entry without `ours` applies everywhere; the first that applies wins.
std::string reference_key_hint(const Schema& schema, const std::string& key);

}  // namespace yq
