// Helpers for the checkpoint-reader tests: a byte-level pickle builder and a small zip writer, so
// that malformed and hostile inputs are written by the tests themselves.
#pragma once

#include <zlib.h>

#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/fs.h"

namespace yq::testing {

inline std::string fixture_dir() {
  return std::string(YOLOQAT_SOURCE_DIR) + "/tests/model/fixtures";
}

inline std::string read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void put_le(std::string& s, uint64_t v, int n) {
  for (int i = 0; i < n; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

// Builds a pickle opcode by opcode.
class PickleBytes {
 public:
  PickleBytes() { op(0x80).raw(std::string(1, '\x02')); }
  PickleBytes& op(int code) {
    s_.push_back(static_cast<char>(code));
    return *this;
  }
  PickleBytes& raw(const std::string& b) {
    s_ += b;
    return *this;
  }
  PickleBytes& str(const std::string& v) {  // BINUNICODE
    op('X');
    put_le(s_, v.size(), 4);
    s_ += v;
    return *this;
  }
  PickleBytes& i(int32_t v) {  // BININT
    op('J');
    put_le(s_, static_cast<uint32_t>(v), 4);
    return *this;
  }
  PickleBytes& global(const std::string& module, const std::string& name) {
    op('c');
    s_ += module + "\n" + name + "\n";
    return *this;
  }
  PickleBytes& put(int idx) { return op('q').raw(std::string(1, static_cast<char>(idx))); }
  PickleBytes& get(int idx) { return op('h').raw(std::string(1, static_cast<char>(idx))); }
  // A persistent-id storage reference ('storage', cls, key, 'cpu', numel) via BINPERSID.
  PickleBytes& storage(const std::string& cls, const std::string& key, int32_t numel) {
    op('(').str("storage").global("torch", cls).str(key).str("cpu").i(numel).op('t').op('Q');
    return *this;
  }
  // torch._utils._rebuild_tensor_v2(storage, offset, sizes, strides, False, OrderedDict()).
  PickleBytes& tensor(const std::string& cls, const std::string& key, int32_t numel, int32_t offset,
                      const std::vector<int32_t>& sizes, const std::vector<int32_t>& strides) {
    global("torch._utils", "_rebuild_tensor_v2").op('(');
    storage(cls, key, numel).i(offset);
    op('(');
    for (int32_t v : sizes) i(v);
    op('t').op('(');
    for (int32_t v : strides) i(v);
    op('t').op(0x89).global("collections", "OrderedDict").op(')').op('R').op('t').op('R');
    return *this;
  }
  std::string stop() const { return s_ + "."; }
  const std::string& bytes() const { return s_; }

 private:
  std::string s_;
};

// Writes a zip archive: STORED or DEFLATE entries, optionally with zip64 end records.
class ZipBytes {
 public:
  ZipBytes& add(const std::string& name, const std::string& data, bool deflate = false) {
    entries_.push_back({name, data, deflate});
    return *this;
  }
  std::string build(bool zip64 = false) const {
    std::string out, cd;
    for (const Entry& e : entries_) {
      std::string payload = e.deflate ? raw_deflate(e.data) : e.data;
      uint32_t crc = static_cast<uint32_t>(
          ::crc32(0, reinterpret_cast<const Bytef*>(e.data.data()), static_cast<uInt>(e.data.size())));
      uint64_t local = out.size();
      uint16_t method = e.deflate ? 8 : 0;
      put_le(out, 0x04034b50, 4);
      put_le(out, 20, 2);
      put_le(out, 0, 2);
      put_le(out, method, 2);
      put_le(out, 0, 4);
      put_le(out, crc, 4);
      put_le(out, payload.size(), 4);
      put_le(out, e.data.size(), 4);
      put_le(out, e.name.size(), 2);
      put_le(out, 0, 2);
      out += e.name + payload;
      put_le(cd, 0x02014b50, 4);
      put_le(cd, 20, 2);
      put_le(cd, 20, 2);
      put_le(cd, 0, 2);
      put_le(cd, method, 2);
      put_le(cd, 0, 4);
      put_le(cd, crc, 4);
      put_le(cd, zip64 ? 0xFFFFFFFF : payload.size(), 4);
      put_le(cd, zip64 ? 0xFFFFFFFF : e.data.size(), 4);
      put_le(cd, e.name.size(), 2);
      put_le(cd, zip64 ? 28 : 0, 2);
      put_le(cd, 0, 2);
      put_le(cd, 0, 2);
      put_le(cd, 0, 2);
      put_le(cd, 0, 4);
      put_le(cd, zip64 ? 0xFFFFFFFF : local, 4);
      cd += e.name;
      if (zip64) {
        put_le(cd, 0x0001, 2);
        put_le(cd, 24, 2);
        put_le(cd, e.data.size(), 8);
        put_le(cd, payload.size(), 8);
        put_le(cd, local, 8);
      }
    }
    uint64_t cd_offset = out.size();
    out += cd;
    if (zip64) {
      uint64_t rec = out.size();
      put_le(out, 0x06064b50, 4);
      put_le(out, 44, 8);
      put_le(out, 45, 2);
      put_le(out, 45, 2);
      put_le(out, 0, 4);
      put_le(out, 0, 4);
      put_le(out, entries_.size(), 8);
      put_le(out, entries_.size(), 8);
      put_le(out, cd.size(), 8);
      put_le(out, cd_offset, 8);
      put_le(out, 0x07064b50, 4);
      put_le(out, 0, 4);
      put_le(out, rec, 8);
      put_le(out, 1, 4);
    }
    put_le(out, 0x06054b50, 4);
    put_le(out, 0, 2);
    put_le(out, 0, 2);
    put_le(out, zip64 ? 0xFFFF : entries_.size(), 2);
    put_le(out, zip64 ? 0xFFFF : entries_.size(), 2);
    put_le(out, zip64 ? 0xFFFFFFFF : cd.size(), 4);
    put_le(out, zip64 ? 0xFFFFFFFF : cd_offset, 4);
    put_le(out, 0, 2);
    return out;
  }

  static std::string raw_deflate(const std::string& data) {
    z_stream zs{};
    deflateInit2(&zs, 6, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
    std::string out(deflateBound(&zs, data.size()), '\0');
    zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
    zs.avail_in = static_cast<uInt>(data.size());
    zs.next_out = reinterpret_cast<Bytef*>(out.data());
    zs.avail_out = static_cast<uInt>(out.size());
    deflate(&zs, Z_FINISH);
    out.resize(zs.total_out);
    deflateEnd(&zs);
    return out;
  }

 private:
  struct Entry {
    std::string name, data;
    bool deflate;
  };
  std::vector<Entry> entries_;
};

}  // namespace yq::testing
