// A pickle reader that builds plain data and never executes anything.
//
// Python's pickle is a small stack machine whose GLOBAL/REDUCE opcodes import and call arbitrary
// functions, which is why torch.load on an untrusted file can run code. This reader interprets the
// opcodes that torch.save (protocol 2) writes, plus the protocol 3-5 ones that are cheap to read, and
// turns every call into a record:
//   - GLOBAL "module name" is kept as the name "module.name", only if the module is on the allow list
//     (torch, collections, ultralytics, numpy, ...); os.system, builtins.eval, subprocess, ... are refused;
//   - REDUCE of torch._utils._rebuild_tensor_v2 on a persistent-id storage becomes a Tensor record
//     (storage key, dtype, offset, sizes, strides), checked to lie inside its storage;
//     torch._utils._rebuild_parameter unwraps to its tensor; collections.OrderedDict becomes a Dict;
//     builtins.set / frozenset become a Set; _codecs.encode(str, "latin1") (protocol 2's bytes) becomes
//     Bytes;
//   - every other REDUCE / NEWOBJ becomes an Object {class name, args}, and BUILD sets its state.
// Limits bound the nesting depth, container sizes, memo and total allocations, so hostile input is
// refused with a yq::Error naming the opcode and its byte offset.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace yq::model::pickle {

// Element types of PyTorch storages (torch.HalfStorage, torch.FloatStorage, ...).
enum class DType { Float16, BFloat16, Float32, Float64, UInt8, Int8, Int16, Int32, Int64, Bool };

size_t dtype_size(DType t);
const char* dtype_name(DType t);  // "float16", ...
// The dtype of a storage class name ("torch.HalfStorage"), or nullopt.
std::optional<DType> dtype_of_storage_class(std::string_view cls);

// A tensor as torch.save describes it: a view (offset, sizes, strides in elements) of a storage
// that lives in the archive as `<prefix>/data/<storage_key>`.
struct TensorRecord {
  std::string storage_key;
  DType dtype = DType::Float32;
  std::string location;       // "cpu", "cuda:0", ...
  int64_t storage_numel = 0;  // elements in the storage
  int64_t offset = 0;
  std::vector<int64_t> sizes;
  std::vector<int64_t> strides;
  bool requires_grad = false;

  int64_t numel() const;
};

enum class Kind {
  None,
  Bool,
  Int,
  Float,
  String,
  Bytes,
  List,
  Tuple,
  Set,
  Dict,
  Global,
  Storage,
  Tensor,
  Object
};
const char* kind_name(Kind k);

// One pickled value. Values are owned by their Pickle; containers hold pointers, so a value that the
// pickle memoized and used twice (a shared tensor, a shared dict) is the same Value in both places.
// Containers can therefore form cycles: anything that recurses must bound its depth.
struct Value {
  Kind kind = Kind::None;
  bool boolean = false;
  int64_t integer = 0;
  double real = 0.0;
  // String: UTF-8 text. Bytes: raw bytes. Global: "module.name". Object: class name.
  // Storage: the storage key.
  std::string text;
  std::vector<Value*> items;                       // List, Tuple, Set; Object: the constructor args
  std::vector<std::pair<Value*, Value*>> entries;  // Dict, in insertion order
  Value* state = nullptr;                          // Object: what BUILD set (usually a Dict), or nullptr
  std::unique_ptr<TensorRecord> tensor;            // Tensor; Storage (only dtype, key, location, numel)
  uint32_t depth = 1;  // nesting depth as built (limits; may be stale after mutation)

  bool is(Kind k) const { return kind == k; }
  // Dict lookup by string key; nullptr when this is not a Dict or the key is absent.
  const Value* get(std::string_view key) const;
  // For an Object: its state's entry `key` (state is a Dict); nullptr otherwise.
  const Value* attr(std::string_view key) const;
};

// A short description for error messages: "dict (12 entries)", "object torch.nn.modules.conv.Conv2d".
std::string describe(const Value* v);

struct PickleLimits {
  size_t max_depth = 200;              // nesting of containers, and of MARKs
  size_t max_container = 1u << 24;     // items in one list/tuple/set/dict, and on the stack
  size_t max_memo = 1u << 24;          // memo entries
  size_t max_values = 1u << 24;        // values created in total
  size_t max_bytes = size_t{1} << 31;  // bytes held by strings, bytes and containers in total
  size_t max_tensor_dims = 16;
};

// The parsed result: owns every Value.
class Pickle {
 public:
  Pickle() = default;
  Pickle(Pickle&&) = default;
  Pickle& operator=(Pickle&&) = default;
  Pickle(const Pickle&) = delete;
  Pickle& operator=(const Pickle&) = delete;

  const Value* root() const { return root_; }
  size_t num_values() const { return values_.size(); }
  // Every tensor record, in the order the pickle built them.
  const std::vector<const Value*>& tensors() const { return tensors_; }

 private:
  friend class Machine;
  std::vector<std::unique_ptr<Value>> values_;
  std::vector<const Value*> tensors_;
  const Value* root_ = nullptr;
};

// Parses one pickle (up to and including its STOP opcode; trailing bytes are an error).
// `name` labels error messages. Throws yq::Error on malformed, truncated, over-limit or refused input.
Pickle parse(std::string_view data, const std::string& name = "<pickle>", const PickleLimits& limits = {});

// Whether GLOBAL may name `module.name` (the allow list; exposed for tests and messages).
bool global_allowed(std::string_view module, std::string_view name);

}  // namespace yq::model::pickle
