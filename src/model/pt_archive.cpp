#include "model/pt_archive.h"

#include <unordered_set>

#include "core/error.h"

namespace yq::model {

using pickle::Kind;
using pickle::Value;

namespace {

std::string find_prefix(const ZipReader& zip) {
  std::string prefix;
  int found = 0;
  for (const ZipEntry& e : zip.entries()) {
    constexpr std::string_view kPkl = "/data.pkl";
    std::string_view n = e.name;
    if (n.size() > kPkl.size() && n.substr(n.size() - kPkl.size()) == kPkl &&
        n.find('/') == n.size() - kPkl.size()) {
      prefix = std::string(n.substr(0, n.size() - kPkl.size()));
      ++found;
    }
  }
  YQ_CHECK(found == 1, "{}: {} is not a PyTorch checkpoint: expected one '<folder>/data.pkl' entry, found {}",
           zip.name(), zip.name(), found);
  return prefix;
}

}  // namespace

PtArchive::PtArchive(ZipReader zip, const pickle::PickleLimits& limits) : zip_(std::move(zip)) {
  prefix_ = find_prefix(zip_);
  if (const ZipEntry* bo = zip_.find(prefix_ + "/byteorder")) {
    std::string order = zip_.read(*bo);
    YQ_CHECK(order == "little", "{}: storages are stored in '{}' byte order; only little-endian is supported",
             zip_.name(), order.substr(0, 16));
  }
  std::string pkl = zip_.read(*zip_.find(prefix_ + "/data.pkl"));
  pickle_ = pickle::parse(pkl, zip_.name() + ":" + prefix_ + "/data.pkl", limits);
  for (const Value* v : pickle_.tensors()) {
    const pickle::TensorRecord& t = *v->tensor;
    std::string entry = prefix_ + "/data/" + t.storage_key;
    const ZipEntry* e = zip_.find(entry);
    YQ_CHECK(e != nullptr, "{}: storage '{}' of a tensor has no entry '{}'", zip_.name(), t.storage_key,
             entry);
    uint64_t want = static_cast<uint64_t>(t.storage_numel) * pickle::dtype_size(t.dtype);
    YQ_CHECK(e->size == want, "{}: storage entry '{}' has {} bytes; {} {} elements need {}", zip_.name(),
             entry, e->size, t.storage_numel, pickle::dtype_name(t.dtype), want);
  }
}

PtArchive PtArchive::open(const std::filesystem::path& path, const pickle::PickleLimits& limits) {
  return PtArchive(ZipReader::open(path), limits);
}

std::string PtArchive::storage_bytes(const pickle::TensorRecord& t) const {
  const ZipEntry* e = zip_.find(prefix_ + "/data/" + t.storage_key);
  YQ_CHECK(e != nullptr, "{}: no storage '{}'", zip_.name(), t.storage_key);
  return zip_.read(*e);
}

namespace {

void walk(const Value* module, const std::string& prefix, size_t depth, size_t max_depth,
          std::vector<NamedRecord>& out, std::unordered_set<std::string>& seen) {
  YQ_CHECK(depth <= max_depth, "module tree deeper than {} levels at '{}' (or a module contains itself)",
           max_depth, prefix);
  auto add = [&](const std::string& name, const Value* t) {
    YQ_CHECK(seen.insert(name).second, "state-dict name '{}' appears twice", name);
    out.push_back({name, t});
  };
  auto key_of = [&](const Value* k, const char* dict) {
    YQ_CHECK(k->kind == Kind::String && !k->text.empty() && k->text.find('.') == std::string::npos,
             "module '{}': {} has an invalid key ({})", prefix, dict, pickle::describe(k));
    return k->text;
  };

  if (module->kind == Kind::Dict) {  // a state_dict: names -> tensors
    for (const auto& [k, v] : module->entries) {
      YQ_CHECK(k->kind == Kind::String && !k->text.empty(), "state dict has a non-string key ({})",
               pickle::describe(k));
      YQ_CHECK(v->kind == Kind::Tensor, "state dict entry '{}' is {}, not a tensor", k->text,
               pickle::describe(v));
      add(prefix + k->text, v);
    }
    return;
  }
  YQ_CHECK(module->kind == Kind::Object && module->state != nullptr && module->state->kind == Kind::Dict,
           "'{}' is {}, not a pickled torch.nn.Module", prefix.empty() ? "<root>" : prefix,
           pickle::describe(module));
  const Value* params = module->attr("_parameters");
  const Value* buffers = module->attr("_buffers");
  const Value* modules = module->attr("_modules");
  YQ_CHECK(params && buffers && modules && params->is(Kind::Dict) && buffers->is(Kind::Dict) &&
               modules->is(Kind::Dict),
           "{} at '{}' has no _parameters/_buffers/_modules dicts: not a torch.nn.Module", module->text,
           prefix);

  for (const auto& [k, v] : params->entries) {
    std::string name = key_of(k, "_parameters");
    if (v->kind == Kind::None) continue;  // e.g. a Conv2d without bias
    YQ_CHECK(v->kind == Kind::Tensor, "parameter '{}{}' is {}, not a tensor", prefix, name,
             pickle::describe(v));
    add(prefix + name, v);
  }
  std::unordered_set<std::string> transient;
  if (const Value* np = module->attr("_non_persistent_buffers_set"); np && np->is(Kind::Set))
    for (const Value* n : np->items)
      if (n->is(Kind::String)) transient.insert(n->text);
  for (const auto& [k, v] : buffers->entries) {
    std::string name = key_of(k, "_buffers");
    if (v->kind == Kind::None || transient.count(name)) continue;
    YQ_CHECK(v->kind == Kind::Tensor, "buffer '{}{}' is {}, not a tensor", prefix, name, pickle::describe(v));
    add(prefix + name, v);
  }
  for (const auto& [k, v] : modules->entries) {
    std::string name = key_of(k, "_modules");
    if (v->kind == Kind::None) continue;
    walk(v, prefix + name + ".", depth + 1, max_depth, out, seen);
  }
}

}  // namespace

std::vector<NamedRecord> module_state(const Value* module, const std::string& prefix, size_t max_depth) {
  YQ_CHECK(module != nullptr, "no module");
  std::vector<NamedRecord> out;
  std::unordered_set<std::string> seen;
  walk(module, prefix, 0, max_depth, out, seen);
  return out;
}

const Value* checkpoint_module(const Value* root, std::string* key) {
  YQ_CHECK(root != nullptr, "empty checkpoint");
  if (root->kind == Kind::Object) {
    if (key) *key = "";
    return root;
  }
  YQ_CHECK(root->kind == Kind::Dict, "the checkpoint is {}, expected a dict with 'model' or 'ema'",
           pickle::describe(root));
  for (const char* k : {"ema", "model"}) {
    const Value* m = root->get(k);
    if (m != nullptr && m->kind != Kind::None) {
      if (key) *key = k;
      return m;
    }
  }
  // torch.save(model.state_dict()): the root dict is the state dict.
  bool all_tensors = !root->entries.empty();
  for (const auto& [k, v] : root->entries) all_tensors = all_tensors && v->kind == Kind::Tensor;
  YQ_CHECK(all_tensors, "the checkpoint has neither 'ema' nor 'model' and is not a state dict ({})",
           pickle::describe(root));
  if (key) *key = "";
  return root;
}

}  // namespace yq::model
