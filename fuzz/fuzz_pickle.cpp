// libFuzzer target over the checkpoint reader: the zip reader, the pickle reader and the module walk
// (everything model/pt_import.cpp runs before LibTorch sees a byte). Inputs starting with "PK" are
// read as a whole torch.save archive, others as a bare pickle. A yq::Error is the expected answer to
// bad input; any other exception, a crash, a leak or a sanitizer report is a bug.
//
// Build and run (clang only):  cmake --preset fuzz && cmake --build --preset fuzz
//   build/fuzz/fuzz/fuzz_pickle -dict=fuzz/pickle.dict -max_len=16384 CORPUS_DIR fuzz/corpus
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/error.h"
#include "model/pt_archive.h"

namespace {

yq::model::pickle::PickleLimits fuzz_limits() {
  yq::model::pickle::PickleLimits l;
  l.max_values = 1u << 20;
  l.max_bytes = size_t{256} << 20;
  return l;
}

void walk_pickle(const yq::model::pickle::Pickle& p) {
  using yq::model::pickle::describe;
  for (const auto* t : p.tensors()) (void)describe(t);
  std::string key;
  try {
    const auto* m = yq::model::checkpoint_module(p.root(), &key);
    (void)yq::model::module_state(m);
  } catch (const yq::Error&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  static const yq::model::pickle::PickleLimits limits = fuzz_limits();
  try {
    if (in.size() >= 2 && in[0] == 'P' && in[1] == 'K') {
      yq::model::ZipReader zip{std::string(in), "fuzz.pt"};
      for (const auto& e : zip.entries()) {
        try {
          (void)zip.read(e);
        } catch (const yq::Error&) {
        }
      }
      yq::model::PtArchive archive(std::move(zip), limits);
      walk_pickle(archive.pickle());
      for (const auto* t : archive.pickle().tensors()) (void)archive.storage_bytes(*t->tensor);
    } else {
      walk_pickle(yq::model::pickle::parse(in, "fuzz.pkl", limits));
    }
  } catch (const yq::Error&) {
  }
  return 0;
}
