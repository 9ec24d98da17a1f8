#include "model/pickle.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <unordered_map>

#include "core/error.h"

namespace yq::model::pickle {

size_t dtype_size(DType t) {
  switch (t) {
    case DType::Float16:
    case DType::BFloat16:
    case DType::Int16:
      return 2;
    case DType::Float32:
    case DType::Int32:
      return 4;
    case DType::Float64:
    case DType::Int64:
      return 8;
    case DType::UInt8:
    case DType::Int8:
    case DType::Bool:
      return 1;
  }
  return 1;
}

namespace {

struct StorageClass {
  const char* cls;
  const char* name;
  DType dtype;
};
constexpr std::array<StorageClass, 10> kStorageClasses{{
    {"torch.HalfStorage", "float16", DType::Float16},
    {"torch.BFloat16Storage", "bfloat16", DType::BFloat16},
    {"torch.FloatStorage", "float32", DType::Float32},
    {"torch.DoubleStorage", "float64", DType::Float64},
    {"torch.ByteStorage", "uint8", DType::UInt8},
    {"torch.CharStorage", "int8", DType::Int8},
    {"torch.ShortStorage", "int16", DType::Int16},
    {"torch.IntStorage", "int32", DType::Int32},
    {"torch.LongStorage", "int64", DType::Int64},
    {"torch.BoolStorage", "bool", DType::Bool},
}};

}  // namespace

const char* dtype_name(DType t) {
  for (const StorageClass& s : kStorageClasses)
    if (s.dtype == t) return s.name;
  return "?";
}

std::optional<DType> dtype_of_storage_class(std::string_view cls) {
  for (const StorageClass& s : kStorageClasses)
    if (cls == s.cls) return s.dtype;
  return std::nullopt;
}

int64_t TensorRecord::numel() const {
  int64_t n = 1;
  for (int64_t s : sizes) n *= s;  // checked against overflow when the record was built
  return n;
}

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::None:
      return "None";
    case Kind::Bool:
      return "bool";
    case Kind::Int:
      return "int";
    case Kind::Float:
      return "float";
    case Kind::String:
      return "str";
    case Kind::Bytes:
      return "bytes";
    case Kind::List:
      return "list";
    case Kind::Tuple:
      return "tuple";
    case Kind::Set:
      return "set";
    case Kind::Dict:
      return "dict";
    case Kind::Global:
      return "global";
    case Kind::Storage:
      return "storage";
    case Kind::Tensor:
      return "tensor";
    case Kind::Object:
      return "object";
  }
  return "?";
}

const Value* Value::get(std::string_view key) const {
  if (kind != Kind::Dict) return nullptr;
  // Keys may repeat (SETITEM twice); as in Python, the last one wins.
  for (auto it = entries.rbegin(); it != entries.rend(); ++it)
    if (it->first->kind == Kind::String && it->first->text == key) return it->second;
  return nullptr;
}

const Value* Value::attr(std::string_view key) const {
  if (kind != Kind::Object || state == nullptr) return nullptr;
  return state->get(key);
}

std::string describe(const Value* v) {
  if (v == nullptr) return "nothing";
  switch (v->kind) {
    case Kind::Bool:
      return v->boolean ? "True" : "False";
    case Kind::Int:
      return fmt::format("int {}", v->integer);
    case Kind::Float:
      return fmt::format("float {}", v->real);
    case Kind::String:
      return fmt::format("str '{}'", v->text.substr(0, 64));
    case Kind::Bytes:
      return fmt::format("bytes ({} bytes)", v->text.size());
    case Kind::List:
    case Kind::Tuple:
    case Kind::Set:
      return fmt::format("{} ({} items)", kind_name(v->kind), v->items.size());
    case Kind::Dict:
      return fmt::format("dict ({} entries)", v->entries.size());
    case Kind::Global:
      return fmt::format("global {}", v->text);
    case Kind::Object:
      return fmt::format("object {}", v->text);
    case Kind::Storage:
      return fmt::format("storage '{}'", v->text);
    case Kind::Tensor: {
      const TensorRecord& t = *v->tensor;
      return fmt::format("tensor {} [{}]", dtype_name(t.dtype), fmt::join(t.sizes, ", "));
    }
    case Kind::None:
      break;
  }
  return "None";
}

bool global_allowed(std::string_view module, std::string_view name) {
  auto in_package = [&](std::string_view pkg) {
    return module == pkg ||
           (module.size() > pkg.size() && module.substr(0, pkg.size()) == pkg && module[pkg.size()] == '.');
  };
  // Packages whose classes appear in YOLOv8 checkpoints. Names are only recorded, never resolved.
  for (std::string_view pkg : {"torch", "collections", "ultralytics", "numpy"})
    if (in_package(pkg)) return true;
  struct Named {
    std::string_view module;
    std::string_view name;
  };
  static constexpr Named kNamed[] = {
      {"builtins", "set"},          {"builtins", "frozenset"},     {"builtins", "bytearray"},
      {"builtins", "slice"},        {"builtins", "complex"},       {"__builtin__", "set"},
      {"__builtin__", "frozenset"}, {"__builtin__", "bytearray"},  {"__builtin__", "slice"},
      {"__builtin__", "complex"},   {"copyreg", "_reconstructor"}, {"copy_reg", "_reconstructor"},
      {"copyreg", "__newobj__"},    {"_codecs", "encode"},         {"pathlib", "PosixPath"},
      {"pathlib", "WindowsPath"},   {"pathlib", "PurePosixPath"},  {"pathlib", "PureWindowsPath"},
      {"types", "SimpleNamespace"}, {"argparse", "Namespace"},     {"datetime", "datetime"},
      {"datetime", "date"},         {"datetime", "timedelta"},
  };
  for (const Named& n : kNamed)
    if (module == n.module && name == n.name) return true;
  return false;
}

// The stack machine. One instance parses one pickle.
class Machine {
 public:
  Machine(std::string_view data, const std::string& name, const PickleLimits& limits)
      : d_(data), name_(name), lim_(limits) {}

  Pickle run() {
    while (true) {
      op_pos_ = pos_;
      op_ = byte();
      if (step()) break;
    }
    check(pos_ == d_.size(), "{} bytes of trailing data after STOP", d_.size() - pos_);
    out_.root_ = stop_value_;
    return std::move(out_);
  }

 private:
  // ---- errors and input ----
  template <class... A>
  void check(bool ok, fmt::format_string<A...> f, A&&... a) {
    if (!ok)
      throw Error(fmt::format("{}: pickle opcode 0x{:02x} at byte {}: {}", name_, op_, op_pos_,
                              fmt::format(f, std::forward<A>(a)...)));
  }
  void need(uint64_t n) {
    check(n <= d_.size() - pos_, "truncated pickle: needs {} more bytes, {} left", n, d_.size() - pos_);
  }
  uint8_t byte() {
    need(1);
    return static_cast<uint8_t>(d_[pos_++]);
  }
  uint64_t le(int n) {
    need(n);
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(d_[pos_ + i]);
    pos_ += n;
    return v;
  }
  std::string_view take(uint64_t n) {
    need(n);
    std::string_view s = d_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  std::string_view line() {
    size_t end = d_.find('\n', pos_);
    check(end != std::string_view::npos, "truncated pickle: no newline after a text argument");
    std::string_view s = d_.substr(pos_, end - pos_);
    pos_ = end + 1;
    return s;
  }

  // ---- values ----
  void charge(size_t bytes) {
    bytes_ += bytes;
    check(bytes_ <= lim_.max_bytes, "the pickle allocates more than {} bytes", lim_.max_bytes);
  }
  Value* make(Kind k) {
    check(out_.values_.size() < lim_.max_values, "the pickle creates more than {} values", lim_.max_values);
    charge(sizeof(Value));
    out_.values_.push_back(std::make_unique<Value>());
    Value* v = out_.values_.back().get();
    v->kind = k;
    return v;
  }
  Value* make_text(Kind k, std::string_view s) {
    charge(s.size());
    Value* v = make(k);
    v->text.assign(s.data(), s.size());
    return v;
  }
  Value* make_int(int64_t i) {
    Value* v = make(Kind::Int);
    v->integer = i;
    return v;
  }
  // Records that `child` now sits inside `parent`, enforcing the nesting and size limits.
  void adopt(Value* parent, const Value* child, size_t count) {
    check(count <= lim_.max_container, "a {} grows past {} items", kind_name(parent->kind),
          lim_.max_container);
    charge(sizeof(void*) * 2);
    uint32_t d = child->depth + 1;
    if (d > parent->depth) parent->depth = d;
    check(parent->depth <= lim_.max_depth, "containers nest deeper than {} levels", lim_.max_depth);
  }
  void add_item(Value* c, Value* item) {
    adopt(c, item, c->items.size() + 1);
    c->items.push_back(item);
  }
  void add_entry(Value* dict, Value* k, Value* v) {
    adopt(dict, k, dict->entries.size() + 1);
    adopt(dict, v, dict->entries.size() + 1);
    dict->entries.emplace_back(k, v);
  }

  // ---- stack ----
  void push(Value* v) {
    check(stack_.size() < lim_.max_container, "the stack grows past {} items", lim_.max_container);
    stack_.push_back(v);
  }
  size_t floor() const { return marks_.empty() ? 0 : marks_.back(); }
  Value* pop() {
    check(stack_.size() > floor(), "stack underflow");
    Value* v = stack_.back();
    stack_.pop_back();
    return v;
  }
  Value* top() {
    check(stack_.size() > floor(), "stack underflow");
    return stack_.back();
  }
  std::vector<Value*> pop_mark() {
    check(!marks_.empty(), "no MARK on the stack");
    size_t m = marks_.back();
    marks_.pop_back();
    std::vector<Value*> items(stack_.begin() + static_cast<std::ptrdiff_t>(m), stack_.end());
    stack_.resize(m);
    return items;
  }
  Value* tuple_of(const std::vector<Value*>& items) {
    Value* t = make(Kind::Tuple);
    t->items.reserve(items.size());
    for (Value* v : items) add_item(t, v);
    return t;
  }

  // ---- memo ----
  void memo_put(uint64_t idx, Value* v) {
    check(memo_.size() < lim_.max_memo || memo_.count(idx), "the memo grows past {} entries", lim_.max_memo);
    memo_[idx] = v;
  }
  Value* memo_get(uint64_t idx) {
    auto it = memo_.find(idx);
    check(it != memo_.end(), "memo entry {} was never stored", idx);
    return it->second;
  }

  // ---- calls (recorded, never executed) ----
  int64_t as_int(const Value* v, const char* what) {
    check(v->kind == Kind::Int || v->kind == Kind::Bool, "{} must be an int, found {}", what, describe(v));
    return v->kind == Kind::Int ? v->integer : v->boolean;
  }
  std::vector<int64_t> int_tuple(const Value* v, const char* what) {
    check(v->kind == Kind::Tuple || v->kind == Kind::List, "{} must be a tuple of ints, found {}", what,
          describe(v));
    check(v->items.size() <= lim_.max_tensor_dims, "{} has {} dimensions (limit {})", what, v->items.size(),
          lim_.max_tensor_dims);
    std::vector<int64_t> out;
    for (const Value* i : v->items) out.push_back(as_int(i, what));
    return out;
  }

  // persistent_load: torch.save writes ('storage', storage class, key, location, numel).
  Value* persistent_load(Value* pid) {
    check(pid->kind == Kind::Tuple && pid->items.size() == 5 && pid->items[0]->kind == Kind::String &&
              pid->items[0]->text == "storage",
          "unsupported persistent id {}: expected ('storage', type, key, location, numel)", describe(pid));
    const Value* cls = pid->items[1];
    const Value* key = pid->items[2];
    const Value* loc = pid->items[3];
    check(cls->kind == Kind::Global, "storage type must be a class, found {}", describe(cls));
    std::optional<DType> dt = dtype_of_storage_class(cls->text);
    check(dt.has_value(), "unsupported storage type {}", cls->text);
    check(key->kind == Kind::String && loc->kind == Kind::String, "storage key and location must be strings");
    int64_t numel = as_int(pid->items[4], "storage numel");
    check(numel >= 0 && static_cast<uint64_t>(numel) <= (uint64_t{1} << 62) / dtype_size(*dt),
          "storage '{}' has an invalid size of {} elements", key->text, numel);
    auto [it, fresh] = storages_.emplace(key->text, std::make_pair(*dt, numel));
    check(fresh || (it->second.first == *dt && it->second.second == numel),
          "storage '{}' is described twice with different types or sizes", key->text);
    Value* s = make_text(Kind::Storage, key->text);
    s->tensor = std::make_unique<TensorRecord>();
    s->tensor->storage_key = key->text;
    s->tensor->dtype = *dt;
    s->tensor->location = loc->text;
    s->tensor->storage_numel = numel;
    return s;
  }

  Value* rebuild_tensor(const std::vector<Value*>& a) {
    check(a.size() >= 4, "_rebuild_tensor_v2 takes (storage, offset, size, stride, ...), got {} args",
          a.size());
    check(a[0]->kind == Kind::Storage, "_rebuild_tensor_v2 needs a storage, found {}", describe(a[0]));
    auto t = std::make_unique<TensorRecord>(*a[0]->tensor);
    t->offset = as_int(a[1], "tensor storage offset");
    t->sizes = int_tuple(a[2], "tensor size");
    t->strides = int_tuple(a[3], "tensor stride");
    if (a.size() > 4) t->requires_grad = as_int(a[4], "requires_grad") != 0;
    check(t->sizes.size() == t->strides.size(), "tensor has {} sizes but {} strides", t->sizes.size(),
          t->strides.size());
    check(t->offset >= 0 && t->offset <= t->storage_numel,
          "tensor offset {} is outside its storage of {} elements", t->offset, t->storage_numel);
    int64_t numel = 1, last = t->offset;
    bool empty = false;
    for (size_t i = 0; i < t->sizes.size(); ++i) {
      int64_t s = t->sizes[i], st = t->strides[i];
      check(s >= 0 && st >= 0, "tensor has a negative size or stride ({}, {})", s, st);
      if (s == 0) empty = true;
      check(!__builtin_mul_overflow(numel, s, &numel), "tensor size overflows");
    }
    if (!empty) {
      for (size_t i = 0; i < t->sizes.size(); ++i) {
        int64_t reach = 0;
        check(!__builtin_mul_overflow(t->sizes[i] - 1, t->strides[i], &reach) &&
                  !__builtin_add_overflow(last, reach, &last),
              "tensor extent overflows");
      }
      check(last < t->storage_numel,
            "tensor (offset {}, size [{}], stride [{}]) reaches element {} of storage '{}' that has {} "
            "elements",
            t->offset, fmt::join(t->sizes, ", "), fmt::join(t->strides, ", "), last, t->storage_key,
            t->storage_numel);
    }
    charge(sizeof(TensorRecord) + 16 * t->sizes.size());
    Value* v = make(Kind::Tensor);
    v->text = t->storage_key;
    v->tensor = std::move(t);
    out_.tensors_.push_back(v);
    return v;
  }

  Value* set_from(const std::vector<Value*>& a, const std::string& what) {
    check(a.size() <= 1, "{} takes at most one argument", what);
    Value* s = make(Kind::Set);
    if (!a.empty()) {
      check(a[0]->kind == Kind::List || a[0]->kind == Kind::Tuple || a[0]->kind == Kind::Set,
            "{} of {} is not supported", what, describe(a[0]));
      for (Value* i : a[0]->items) add_item(s, i);
    }
    return s;
  }

  Value* latin1_bytes(const std::vector<Value*>& a) {
    check(a.size() == 2 && a[0]->kind == Kind::String && a[1]->kind == Kind::String,
          "_codecs.encode takes (str, encoding)");
    const std::string& enc = a[1]->text;
    check(enc == "latin1" || enc == "latin-1" || enc == "iso-8859-1", "_codecs.encode with encoding '{}'",
          enc);
    // Protocol 2 writes bytes as the latin-1 decoding of the bytes, itself encoded as UTF-8.
    std::string out;
    const std::string& s = a[0]->text;
    for (size_t i = 0; i < s.size(); ++i) {
      auto c = static_cast<unsigned char>(s[i]);
      if (c < 0x80) {
        out.push_back(static_cast<char>(c));
      } else {
        check((c == 0xC2 || c == 0xC3) && i + 1 < s.size() &&
                  (static_cast<unsigned char>(s[i + 1]) & 0xC0) == 0x80,
              "_codecs.encode: character outside latin-1 at {}", i);
        out.push_back(static_cast<char>(((c & 0x03) << 6) | (static_cast<unsigned char>(s[i + 1]) & 0x3F)));
        ++i;
      }
    }
    return make_text(Kind::Bytes, out);
  }

  Value* object(const std::string& cls, const std::vector<Value*>& args) {
    Value* o = make_text(Kind::Object, cls);
    for (Value* a : args) add_item(o, a);
    return o;
  }

  // REDUCE / NEWOBJ: `fn` applied to `args`, as a record.
  Value* call(const Value* fn, const std::vector<Value*>& args, int nesting = 0) {
    check(fn->kind == Kind::Global, "can only call a class or function named by GLOBAL, found {}",
          describe(fn));
    const std::string& f = fn->text;
    if (f == "torch._utils._rebuild_tensor_v2" || f == "torch._utils._rebuild_tensor")
      return rebuild_tensor(args);
    if (f == "torch._utils._rebuild_parameter" || f == "torch._utils._rebuild_parameter_with_state") {
      check(!args.empty() && args[0]->kind == Kind::Tensor, "{} needs a tensor, found {}", f,
            args.empty() ? "no argument" : describe(args[0]));
      if (args.size() > 1) args[0]->tensor->requires_grad = as_int(args[1], "requires_grad") != 0;
      return args[0];
    }
    if (f == "torch._tensor._rebuild_from_type_v2" || f == "torch._tensor._rebuild_from_type") {
      check(nesting == 0 && args.size() >= 3 && args[2]->kind == Kind::Tuple, "malformed {}", f);
      return call(args[0], args[2]->items, nesting + 1);
    }
    if (f == "collections.OrderedDict") {
      Value* d = make(Kind::Dict);
      check(args.size() <= 1, "OrderedDict takes at most one argument");
      if (!args.empty()) {
        check(args[0]->kind == Kind::List || args[0]->kind == Kind::Tuple,
              "OrderedDict of {} is not supported", describe(args[0]));
        for (Value* kv : args[0]->items) {
          check((kv->kind == Kind::Tuple || kv->kind == Kind::List) && kv->items.size() == 2,
                "OrderedDict items must be pairs, found {}", describe(kv));
          add_entry(d, kv->items[0], kv->items[1]);
        }
      }
      return d;
    }
    if (f == "builtins.set" || f == "__builtin__.set" || f == "builtins.frozenset" ||
        f == "__builtin__.frozenset")
      return set_from(args, f);
    if (f == "_codecs.encode") return latin1_bytes(args);
    if (f == "copyreg._reconstructor" || f == "copy_reg._reconstructor") {
      check(!args.empty() && args[0]->kind == Kind::Global, "malformed {}", f);
      return object(args[0]->text, {args.begin() + 1, args.end()});
    }
    if (f == "copyreg.__newobj__") {
      check(!args.empty() && args[0]->kind == Kind::Global, "malformed {}", f);
      return object(args[0]->text, {args.begin() + 1, args.end()});
    }
    return object(f, args);
  }

  void build(Value* state) {
    Value* target = top();
    if (state->kind == Kind::None) return;  // as in Python: a false state changes nothing
    if (target->kind == Kind::Tensor || target->kind == Kind::Dict)
      return;  // subclass attributes: not needed
    check(target->kind == Kind::Object, "BUILD on a {}", kind_name(target->kind));
    // State may be (dict, slots-dict); both are attributes here.
    if (state->kind == Kind::Tuple && state->items.size() == 2) {
      Value* merged = make(Kind::Dict);
      for (Value* part : state->items) {
        check(part->kind == Kind::Dict || part->kind == Kind::None, "BUILD state part is {}", describe(part));
        for (auto& [k, v] : part->entries) add_entry(merged, k, v);
      }
      state = merged;
    }
    if (target->state == state) return;
    if (target->state != nullptr && target->state->kind == Kind::Dict && state->kind == Kind::Dict) {
      auto entries = state->entries;  // a copy: `state` may be nested inside target->state
      for (auto& [k, v] : entries) add_entry(target->state, k, v);
      return;
    }
    check(target->state == nullptr, "BUILD twice on {}", describe(target));
    adopt(target, state, target->items.size() + 1);
    target->state = state;
  }

  int64_t signed_le(std::string_view bytes) {
    check(bytes.size() <= 8, "integer of {} bytes does not fit in 64 bits", bytes.size());
    if (bytes.empty()) return 0;
    uint64_t v = 0;
    for (size_t i = bytes.size(); i-- > 0;) v = (v << 8) | static_cast<unsigned char>(bytes[i]);
    if (bytes.size() < 8 && (static_cast<unsigned char>(bytes.back()) & 0x80))
      v |= ~uint64_t{0} << (8 * bytes.size());  // sign-extend
    int64_t out;
    std::memcpy(&out, &v, sizeof(out));
    return out;
  }

  // Executes one opcode; true at STOP.
  bool step() {
    switch (op_) {
      case 0x80: {  // PROTO
        uint8_t p = byte();
        check(p <= 5, "unsupported pickle protocol {}", p);
        return false;
      }
      case 0x95:  // FRAME: a length hint; the frame's bytes follow inline
        check(le(8) <= d_.size() - pos_, "frame is longer than the data");
        return false;
      case '.':  // STOP
        stop_value_ = pop();
        return true;
      case '(':  // MARK
        check(marks_.size() < lim_.max_depth, "MARKs nest deeper than {}", lim_.max_depth);
        marks_.push_back(stack_.size());
        return false;
      case '0':  // POP
        if (!marks_.empty() && stack_.size() == marks_.back())
          marks_.pop_back();
        else
          pop();
        return false;
      case '1':  // POP_MARK
        pop_mark();
        return false;
      case '2':  // DUP
        push(top());
        return false;

      case 'N':
        push(make(Kind::None));
        return false;
      case 0x88:
      case 0x89: {  // NEWTRUE, NEWFALSE
        Value* v = make(Kind::Bool);
        v->boolean = op_ == 0x88;
        push(v);
        return false;
      }
      case 'J':
        push(make_int(signed_le(take(4))));
        return false;  // BININT
      case 'K':
        push(make_int(static_cast<int64_t>(le(1))));
        return false;  // BININT1
      case 'M':
        push(make_int(static_cast<int64_t>(le(2))));
        return false;  // BININT2
      case 0x8a: {     // LONG1
        uint64_t n = le(1);
        push(make_int(signed_le(take(n))));
        return false;
      }
      case 0x8b: {  // LONG4
        int64_t n = signed_le(take(4));
        check(n >= 0 && n <= 8, "integer of {} bytes does not fit in 64 bits", n);
        push(make_int(signed_le(take(static_cast<uint64_t>(n)))));
        return false;
      }
      case 'G': {  // BINFLOAT: big-endian IEEE double
        std::string_view b = take(8);
        uint64_t bits = 0;
        for (char c : b) bits = (bits << 8) | static_cast<unsigned char>(c);
        Value* v = make(Kind::Float);
        std::memcpy(&v->real, &bits, sizeof(double));
        push(v);
        return false;
      }

      case 'X':
        push(make_text(Kind::String, take(le(4))));
        return false;  // BINUNICODE
      case 0x8c:
        push(make_text(Kind::String, take(le(1))));
        return false;  // SHORT_BINUNICODE
      case 0x8d:
        push(make_text(Kind::String, take(le(8))));
        return false;  // BINUNICODE8
      case 'U':
        push(make_text(Kind::String, take(le(1))));
        return false;  // SHORT_BINSTRING
      case 'T': {      // BINSTRING
        int64_t n = signed_le(take(4));
        check(n >= 0, "negative string length {}", n);
        push(make_text(Kind::String, take(static_cast<uint64_t>(n))));
        return false;
      }
      case 'B':
        push(make_text(Kind::Bytes, take(le(4))));
        return false;  // BINBYTES
      case 'C':
        push(make_text(Kind::Bytes, take(le(1))));
        return false;  // SHORT_BINBYTES
      case 0x8e:       // BINBYTES8
      case 0x96:
        push(make_text(Kind::Bytes, take(le(8))));
        return false;  // BYTEARRAY8

      case '}':
        push(make(Kind::Dict));
        return false;
      case ']':
        push(make(Kind::List));
        return false;
      case ')':
        push(make(Kind::Tuple));
        return false;
      case 0x8f:
        push(make(Kind::Set));
        return false;
      case 0x85:
      case 0x86:
      case 0x87: {  // TUPLE1..3
        size_t n = op_ - 0x84u;
        check(stack_.size() >= floor() + n, "stack underflow");
        std::vector<Value*> items(stack_.end() - static_cast<std::ptrdiff_t>(n), stack_.end());
        stack_.resize(stack_.size() - n);
        push(tuple_of(items));
        return false;
      }
      case 't':
        push(tuple_of(pop_mark()));
        return false;  // TUPLE
      case 'l': {      // LIST
        std::vector<Value*> items = pop_mark();
        Value* l = make(Kind::List);
        for (Value* v : items) add_item(l, v);
        push(l);
        return false;
      }
      case 'd': {  // DICT
        std::vector<Value*> items = pop_mark();
        check(items.size() % 2 == 0, "DICT with an odd number of items");
        Value* d = make(Kind::Dict);
        for (size_t i = 0; i < items.size(); i += 2) add_entry(d, items[i], items[i + 1]);
        push(d);
        return false;
      }
      case 0x91: {  // FROZENSET
        std::vector<Value*> items = pop_mark();
        Value* s = make(Kind::Set);
        for (Value* v : items) add_item(s, v);
        push(s);
        return false;
      }
      case 'a': {  // APPEND
        Value* v = pop();
        Value* l = top();
        check(l->kind == Kind::List, "APPEND to a {}", kind_name(l->kind));
        add_item(l, v);
        return false;
      }
      case 'e': {  // APPENDS
        std::vector<Value*> items = pop_mark();
        Value* l = top();
        check(l->kind == Kind::List, "APPENDS to a {}", kind_name(l->kind));
        for (Value* v : items) add_item(l, v);
        return false;
      }
      case 0x90: {  // ADDITEMS
        std::vector<Value*> items = pop_mark();
        Value* s = top();
        check(s->kind == Kind::Set, "ADDITEMS to a {}", kind_name(s->kind));
        for (Value* v : items) add_item(s, v);
        return false;
      }
      case 's': {  // SETITEM
        Value* v = pop();
        Value* k = pop();
        Value* d = top();
        check(d->kind == Kind::Dict, "SETITEM on a {}", kind_name(d->kind));
        add_entry(d, k, v);
        return false;
      }
      case 'u': {  // SETITEMS
        std::vector<Value*> items = pop_mark();
        check(items.size() % 2 == 0, "SETITEMS with an odd number of items");
        Value* d = top();
        check(d->kind == Kind::Dict, "SETITEMS on a {}", kind_name(d->kind));
        for (size_t i = 0; i < items.size(); i += 2) add_entry(d, items[i], items[i + 1]);
        return false;
      }

      case 'q':
        memo_put(le(1), top());
        return false;  // BINPUT
      case 'r':
        memo_put(le(4), top());
        return false;  // LONG_BINPUT
      case 0x94:
        memo_put(memo_.size(), top());
        return false;  // MEMOIZE
      case 'h':
        push(memo_get(le(1)));
        return false;  // BINGET
      case 'j':
        push(memo_get(le(4)));
        return false;  // LONG_BINGET

      case 'c': {  // GLOBAL "module\nname\n"
        std::string_view module = line();
        std::string_view name = line();
        push(global(module, name));
        return false;
      }
      case 0x93: {  // STACK_GLOBAL
        Value* name = pop();
        Value* module = pop();
        check(module->kind == Kind::String && name->kind == Kind::String, "STACK_GLOBAL needs two strings");
        push(global(module->text, name->text));
        return false;
      }
      case 'R': {  // REDUCE
        Value* args = pop();
        Value* fn = pop();
        check(args->kind == Kind::Tuple, "REDUCE arguments must be a tuple, found {}", describe(args));
        push(call(fn, args->items));
        return false;
      }
      case 0x81: {  // NEWOBJ
        Value* args = pop();
        Value* cls = pop();
        check(args->kind == Kind::Tuple, "NEWOBJ arguments must be a tuple, found {}", describe(args));
        push(call(cls, args->items));
        return false;
      }
      case 0x92: {  // NEWOBJ_EX (keyword arguments are dropped)
        Value* kwargs = pop();
        Value* args = pop();
        Value* cls = pop();
        check(args->kind == Kind::Tuple && kwargs->kind == Kind::Dict, "NEWOBJ_EX needs (cls, tuple, dict)");
        push(call(cls, args->items));
        return false;
      }
      case 'b':
        build(pop());
        return false;  // BUILD
      case 'Q':
        push(persistent_load(pop()));
        return false;  // BINPERSID

      default:
        check(false, "unsupported or unsafe opcode (only the binary opcodes of protocols 2-5 are read)");
        return false;
    }
  }

  Value* global(std::string_view module, std::string_view name) {
    check(global_allowed(module, name),
          "refusing to load: the pickle names {}.{}, which is not a class a YOLOv8 checkpoint uses (nothing "
          "was "
          "imported or executed)",
          module, name);
    std::string full;
    full.reserve(module.size() + 1 + name.size());
    full.append(module).append(".").append(name);
    return make_text(Kind::Global, full);
  }

  std::string_view d_;
  const std::string& name_;
  const PickleLimits& lim_;
  size_t pos_ = 0;
  size_t op_pos_ = 0;
  uint8_t op_ = 0;
  size_t bytes_ = 0;
  Pickle out_;
  std::vector<Value*> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, Value*> memo_;
  std::unordered_map<std::string, std::pair<DType, int64_t>> storages_;
  Value* stop_value_ = nullptr;
};

Pickle parse(std::string_view data, const std::string& name, const PickleLimits& limits) {
  Machine m(data, name, limits);
  return m.run();
}

}  // namespace yq::model::pickle
