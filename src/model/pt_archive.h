// A torch.save archive read without LibTorch: the zip, its pickle (model/pickle.h) and its storages,
// plus the walk of a pickled nn.Module tree to state-dict names. Everything here is plain C++ so the
// fuzzer (fuzz/fuzz_pickle.cpp) covers it; model/pt_import.h turns the records into tensors.
//
// Layout written by torch.save (PyTorch >= 1.6): <prefix>/data.pkl (the pickle), <prefix>/data/<key>
// (one raw little-endian storage per key), <prefix>/version, and from PyTorch 2.x <prefix>/byteorder.
// The prefix is the file's stem at save time ("archive", "yolov8n", ...), so it is found, not assumed.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "model/pickle.h"
#include "model/zip_reader.h"

namespace yq::model {

class PtArchive {
 public:
  // Finds `*/data.pkl`, parses it, and checks that every tensor's storage entry exists and holds
  // exactly numel * element-size bytes. Throws yq::Error naming the archive.
  explicit PtArchive(ZipReader zip, const pickle::PickleLimits& limits = {});
  static PtArchive open(const std::filesystem::path& path, const pickle::PickleLimits& limits = {});

  const std::string& name() const { return zip_.name(); }
  const std::string& prefix() const { return prefix_; }  // "tiny" for tiny/data.pkl
  const pickle::Pickle& pickle() const { return pickle_; }
  const pickle::Value* root() const { return pickle_.root(); }

  // The raw bytes of the storage a tensor record views (already size-checked).
  std::string storage_bytes(const pickle::TensorRecord& t) const;

 private:
  ZipReader zip_;
  std::string prefix_;
  pickle::Pickle pickle_;
};

// One state-dict entry found by the module walk.
struct NamedRecord {
  std::string name;             // "model.0.conv.weight"
  const pickle::Value* tensor;  // Kind::Tensor
};

// Walks a pickled nn.Module (an Object whose state holds `_parameters`, `_buffers`, `_modules`) to
// its state-dict entries, in PyTorch's order (a module's parameters, its persistent buffers, then its
// children). A module that is a plain dict of tensors (a saved state_dict) yields its entries.
// Throws yq::Error on a malformed tree, a non-tensor parameter, a repeated name or nesting past
// `max_depth`.
std::vector<NamedRecord> module_state(const pickle::Value* module, const std::string& prefix = "",
                                      size_t max_depth = 64);

// The module a reference checkpoint's loader uses: `ema` when present and not None, else `model`.
// A pickle whose root is itself a module (torch.save(model)) is its own module. `key` receives
// "ema", "model" or "" (root). Throws when there is none.
const pickle::Value* checkpoint_module(const pickle::Value* root, std::string* key = nullptr);

}  // namespace yq::model
