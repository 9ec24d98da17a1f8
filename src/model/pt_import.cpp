#include "model/pt_import.h"

#include <cstring>
#include <map>

#include "core/error.h"

namespace yq::model {

using pickle::DType;
using pickle::Kind;
using pickle::TensorRecord;
using pickle::Value;

namespace {

torch::ScalarType scalar_type(DType t) {
  switch (t) {
    case DType::Float16:
      return torch::kFloat16;
    case DType::BFloat16:
      return torch::kBFloat16;
    case DType::Float32:
      return torch::kFloat32;
    case DType::Float64:
      return torch::kFloat64;
    case DType::UInt8:
      return torch::kUInt8;
    case DType::Int8:
      return torch::kInt8;
    case DType::Int16:
      return torch::kInt16;
    case DType::Int32:
      return torch::kInt32;
    case DType::Int64:
      return torch::kInt64;
    case DType::Bool:
      return torch::kBool;
  }
  return torch::kFloat32;
}

// A whole storage as a 1-D tensor with its own (aligned) memory.
torch::Tensor load_storage(const PtArchive& archive, const TensorRecord& r) {
  std::string bytes = archive.storage_bytes(r);
  YQ_ASSERT(bytes.size() == static_cast<uint64_t>(r.storage_numel) * pickle::dtype_size(r.dtype));
  // Bool storages are read as bytes and compared with 0, so any byte value gives a valid bool.
  torch::ScalarType st = r.dtype == DType::Bool ? torch::kUInt8 : scalar_type(r.dtype);
  torch::Tensor s = torch::empty({r.storage_numel}, torch::TensorOptions().dtype(st));
  if (!bytes.empty()) std::memcpy(s.data_ptr(), bytes.data(), bytes.size());
  return r.dtype == DType::Bool ? s.ne(0) : s;
}

torch::Tensor view_of(const torch::Tensor& storage, const TensorRecord& r, bool keep_dtype) {
  // pickle::parse checked that offset + sum((size - 1) * stride) lies inside the storage.
  torch::Tensor t = storage.as_strided(r.sizes, r.strides, r.offset).clone(at::MemoryFormat::Contiguous);
  if (!keep_dtype && t.is_floating_point() && t.scalar_type() != torch::kFloat32) t = t.to(torch::kFloat32);
  return t;
}

bool valid_utf8(const std::string& s) {
  for (size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    i += n;
  }
  return true;
}

nlohmann::json json_of(const Value* v, size_t depth, size_t max_depth) {
  YQ_CHECK(depth <= max_depth, "value nested deeper than {} levels (or containing itself)", max_depth);
  switch (v->kind) {
    case Kind::None:
      return nullptr;
    case Kind::Bool:
      return v->boolean;
    case Kind::Int:
      return v->integer;
    case Kind::Float:
      return v->real;
    case Kind::String:
      return valid_utf8(v->text) ? nlohmann::json(v->text) : nlohmann::json("<invalid UTF-8>");
    case Kind::List:
    case Kind::Tuple:
    case Kind::Set: {
      nlohmann::json a = nlohmann::json::array();
      for (const Value* i : v->items) a.push_back(json_of(i, depth + 1, max_depth));
      return a;
    }
    case Kind::Dict: {
      bool plain = true;
      for (const auto& [k, x] : v->entries) plain = plain && (k->is(Kind::String) || k->is(Kind::Int));
      if (!plain) {
        nlohmann::json a = nlohmann::json::array();
        for (const auto& [k, x] : v->entries)
          a.push_back({json_of(k, depth + 1, max_depth), json_of(x, depth + 1, max_depth)});
        return a;
      }
      nlohmann::json o = nlohmann::json::object();
      for (const auto& [k, x] : v->entries) {
        std::string key = k->is(Kind::Int) ? std::to_string(k->integer) : k->text;
        o[valid_utf8(key) ? key : "<invalid UTF-8>"] = json_of(x, depth + 1, max_depth);
      }
      return o;
    }
    case Kind::Object:
      if (v->state && v->state->is(Kind::Dict)) {
        nlohmann::json o = json_of(v->state, depth + 1, max_depth);
        if (o.is_object()) o["__class__"] = v->text;
        return o;
      }
      return pickle::describe(v);
    case Kind::Bytes:
    case Kind::Global:
    case Kind::Storage:
    case Kind::Tensor:
      return pickle::describe(v);
  }
  return nullptr;
}

std::vector<std::string> class_names(const Value* names, const std::string& where) {
  std::vector<std::string> out;
  if (names == nullptr || names->is(Kind::None)) return out;
  if (names->is(Kind::List) || names->is(Kind::Tuple)) {
    for (const Value* n : names->items) {
      YQ_CHECK(n->is(Kind::String), "{}: class name {} is {}, not a string", where, out.size(),
               pickle::describe(n));
      out.push_back(n->text);
    }
    return out;
  }
  YQ_CHECK(names->is(Kind::Dict), "{}: `names` is {}, expected a dict or list", where,
           pickle::describe(names));
  std::map<int64_t, std::string> by_id;
  for (const auto& [k, n] : names->entries) {
    YQ_CHECK(k->is(Kind::Int) && n->is(Kind::String), "{}: `names` entry {} -> {} is not int -> str", where,
             pickle::describe(k), pickle::describe(n));
    by_id[k->integer] = n->text;  // a repeated id: the last one wins, as in Python
  }
  int64_t expect = 0;
  for (const auto& [id, n] : by_id) {
    YQ_CHECK(id == expect, "{}: class ids in `names` must be 0..{}, found {}", where, by_id.size() - 1, id);
    out.push_back(n);
    ++expect;
  }
  return out;
}

}  // namespace

const torch::Tensor* PtCheckpoint::find(const std::string& name) const {
  for (const auto& [n, t] : tensors)
    if (n == name) return &t;
  return nullptr;
}

torch::Tensor materialize(const PtArchive& archive, const TensorRecord& record, bool keep_dtype) {
  return view_of(load_storage(archive, record), record, keep_dtype);
}

nlohmann::json to_json(const Value* v, size_t max_depth) {
  YQ_CHECK(v != nullptr, "no value");
  return json_of(v, 0, max_depth);
}

PtCheckpoint read_pt_checkpoint(const PtArchive& archive, const PtImportOptions& options) {
  return with_context("while importing " + archive.name(), [&] {
    PtCheckpoint ck;
    ck.path = archive.name();
    const Value* root = archive.root();
    const Value* module = checkpoint_module(root, &ck.module_key);
    if (module->is(Kind::Object)) ck.model_class = module->text;

    std::map<std::string, torch::Tensor> storages;
    auto tensor_of = [&](const TensorRecord& r, bool keep) {
      auto it = storages.find(r.storage_key);
      if (it == storages.end()) it = storages.emplace(r.storage_key, load_storage(archive, r)).first;
      return view_of(it->second, r, keep);
    };
    for (const NamedRecord& e : module_state(module))
      ck.tensors.emplace_back(e.name, tensor_of(*e.tensor->tensor, options.keep_dtype));

    if (module->is(Kind::Object)) {
      ck.names = class_names(module->attr("names"), "`names` of " + ck.model_class);
      if (const Value* y = module->attr("yaml"); y && !y->is(Kind::None)) ck.yaml = to_json(y);
      if (const Value* n = module->attr("nc"); n && n->is(Kind::Int)) ck.nc = n->integer;
      if (const Value* s = module->attr("stride"); s && s->is(Kind::Tensor)) {
        torch::Tensor st = tensor_of(*s->tensor, true).to(torch::kFloat64).flatten();
        for (int64_t i = 0; i < st.numel(); ++i) ck.stride.push_back(st[i].item<double>());
      }
      if (const Value* a = module->attr("args"); a && !a->is(Kind::None)) ck.train_args = to_json(a);
    }
    if (!ck.nc && ck.yaml.is_object() && ck.yaml.contains("nc") && ck.yaml["nc"].is_number_integer())
      ck.nc = ck.yaml["nc"].get<int64_t>();
    if (!ck.nc && !ck.names.empty()) ck.nc = static_cast<int64_t>(ck.names.size());
    if (ck.nc && !ck.names.empty())
      YQ_CHECK(*ck.nc == static_cast<int64_t>(ck.names.size()), "nc is {} but `names` has {} classes", *ck.nc,
               ck.names.size());

    if (root->is(Kind::Dict)) {
      if (const Value* a = root->get("train_args"); a && !a->is(Kind::None)) ck.train_args = to_json(a);
      ck.info = nlohmann::json::object();
      for (const char* k : {"epoch", "best_fitness", "updates", "date", "version"})
        if (const Value* v = root->get(k)) ck.info[k] = to_json(v);
    }
    return ck;
  });
}

PtCheckpoint read_pt_checkpoint(const std::filesystem::path& path, const PtImportOptions& options) {
  return with_context("while reading checkpoint " + path.string(),
                      [&] { return read_pt_checkpoint(PtArchive::open(path, options.limits), options); });
}

}  // namespace yq::model
