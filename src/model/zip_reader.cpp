#include "model/zip_reader.h"

#include <zlib.h>

#include <fstream>
#include <limits>

#include "core/error.h"

namespace yq::model {
namespace {

constexpr uint32_t kLocalSig = 0x04034b50;
constexpr uint32_t kCentralSig = 0x02014b50;
constexpr uint32_t kEndSig = 0x06054b50;
constexpr uint32_t kEnd64Sig = 0x06064b50;
constexpr uint32_t kEnd64LocatorSig = 0x07064b50;
constexpr size_t kEndSize = 22;
constexpr size_t kCentralSize = 46;
constexpr size_t kLocalSize = 30;
constexpr size_t kEnd64LocatorSize = 20;
constexpr size_t kEnd64Size = 56;

// Little-endian reads at an absolute position, each checked against the buffer's end.
class Bytes {
 public:
  Bytes(std::string_view data, const std::string& name) : d_(data), name_(name) {}

  void need(uint64_t pos, uint64_t n, const char* what) const {
    YQ_CHECK(pos <= d_.size() && n <= d_.size() - pos,
             "{}: truncated or corrupt zip: {} at byte {} (+{}) is past the end of the file ({} bytes)",
             name_, what, pos, n, d_.size());
  }
  uint64_t le(uint64_t pos, int n, const char* what) const {
    need(pos, n, what);
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(d_[pos + i]);
    return v;
  }
  uint16_t u16(uint64_t pos, const char* what) const { return static_cast<uint16_t>(le(pos, 2, what)); }
  uint32_t u32(uint64_t pos, const char* what) const { return static_cast<uint32_t>(le(pos, 4, what)); }
  uint64_t u64(uint64_t pos, const char* what) const { return le(pos, 8, what); }
  std::string_view str(uint64_t pos, uint64_t n, const char* what) const {
    need(pos, n, what);
    return d_.substr(pos, n);
  }
  uint64_t size() const { return d_.size(); }

 private:
  std::string_view d_;
  const std::string& name_;
};

struct Directory {
  uint64_t entries = 0;
  uint64_t offset = 0;
  uint64_t size = 0;
};

// Finds the end-of-central-directory record (and its zip64 form when the archive has one).
Directory find_directory(const Bytes& b, const std::string& name) {
  YQ_CHECK(b.size() >= kEndSize, "{}: not a zip archive (only {} bytes); PyTorch checkpoints are zip files",
           name, b.size());
  // The record is last, followed by a comment of at most 65535 bytes.
  uint64_t lowest = b.size() >= kEndSize + 0xFFFF ? b.size() - kEndSize - 0xFFFF : 0;
  uint64_t at = std::numeric_limits<uint64_t>::max();
  for (uint64_t p = b.size() - kEndSize + 1; p-- > lowest;) {
    if (b.u32(p, "end record") == kEndSig && p + kEndSize + b.u16(p + 20, "comment length") <= b.size()) {
      at = p;
      break;
    }
  }
  YQ_CHECK(at != std::numeric_limits<uint64_t>::max(),
           "{}: not a zip archive (no end-of-central-directory record); old-style (non-zip) PyTorch "
           "checkpoints are not supported: re-save them with torch.save from PyTorch >= 1.6",
           name);
  uint16_t disk = b.u16(at + 4, "end record"), cd_disk = b.u16(at + 6, "end record");
  Directory d;
  uint64_t disk_entries = b.u16(at + 8, "end record");
  d.entries = b.u16(at + 10, "end record");
  d.size = b.u32(at + 12, "end record");
  d.offset = b.u32(at + 16, "end record");

  bool has_locator =
      at >= kEnd64LocatorSize && b.u32(at - kEnd64LocatorSize, "zip64 locator") == kEnd64LocatorSig;
  if (has_locator) {
    uint64_t loc = at - kEnd64LocatorSize;
    uint64_t rec = b.u64(loc + 8, "zip64 locator");
    YQ_CHECK(b.u32(loc + 16, "zip64 locator") <= 1, "{}: multi-disk zip archives are not supported", name);
    YQ_CHECK(rec <= loc && loc - rec >= kEnd64Size && b.u32(rec, "zip64 end record") == kEnd64Sig,
             "{}: corrupt zip: the zip64 end record offset {} is invalid", name, rec);
    disk = static_cast<uint16_t>(std::min<uint64_t>(b.u32(rec + 16, "zip64 end record"), 0xFFFF));
    cd_disk = static_cast<uint16_t>(std::min<uint64_t>(b.u32(rec + 20, "zip64 end record"), 0xFFFF));
    disk_entries = b.u64(rec + 24, "zip64 end record");
    d.entries = b.u64(rec + 32, "zip64 end record");
    d.size = b.u64(rec + 40, "zip64 end record");
    d.offset = b.u64(rec + 48, "zip64 end record");
    at = rec;  // the central directory must end before the zip64 record
  } else {
    YQ_CHECK(d.entries != 0xFFFF && d.size != 0xFFFFFFFF && d.offset != 0xFFFFFFFF,
             "{}: corrupt zip: the end record asks for zip64 but there is no zip64 locator", name);
  }
  YQ_CHECK(disk == 0 && cd_disk == 0 && disk_entries == d.entries,
           "{}: multi-disk zip archives are not supported", name);
  YQ_CHECK(d.offset <= at && d.size <= at - d.offset,
           "{}: corrupt zip: central directory at {} (+{}) overlaps the end record at {}", name, d.offset,
           d.size, at);
  return d;
}

// Reads the zip64 extended-information extra field for the values that are saturated in the header.
void read_zip64_extra(const Bytes& b, uint64_t pos, uint64_t len, ZipEntry& e, uint64_t& local_offset,
                      bool need_size, bool need_csize, bool need_offset, const std::string& name) {
  uint64_t end = pos + len;
  while (pos + 4 <= end) {
    uint16_t id = b.u16(pos, "extra field"), n = b.u16(pos + 2, "extra field");
    YQ_CHECK(n <= end - pos - 4, "{}: corrupt zip: extra field of entry '{}' overruns its header", name,
             e.name);
    if (id == 0x0001) {
      uint64_t p = pos + 4, stop = p + n;
      auto next = [&](uint64_t& out) {
        YQ_CHECK(p + 8 <= stop, "{}: corrupt zip: short zip64 field in entry '{}'", name, e.name);
        out = b.u64(p, "zip64 field");
        p += 8;
      };
      if (need_size) next(e.size);
      if (need_csize) next(e.compressed_size);
      if (need_offset) next(local_offset);
      return;
    }
    pos += 4 + n;
  }
  YQ_CHECK(!need_size && !need_csize && !need_offset,
           "{}: corrupt zip: entry '{}' has saturated sizes but no zip64 field", name, e.name);
}

}  // namespace

uint32_t zip_crc32(std::string_view data) {
  uLong crc = ::crc32(0L, Z_NULL, 0);
  const auto* p = reinterpret_cast<const Bytef*>(data.data());
  size_t left = data.size();
  while (left > 0) {  // zlib takes 32-bit lengths
    uInt n = static_cast<uInt>(std::min<size_t>(left, 1u << 30));
    crc = ::crc32(crc, p, n);
    p += n;
    left -= n;
  }
  return static_cast<uint32_t>(crc);
}

ZipReader::ZipReader(std::string bytes, std::string name, ZipLimits limits)
    : bytes_(std::move(bytes)), name_(std::move(name)), limits_(limits) {
  Bytes b(bytes_, name_);
  Directory dir = find_directory(b, name_);
  YQ_CHECK(dir.entries <= limits_.max_entries, "{}: zip archive lists {} entries (limit {})", name_,
           dir.entries, limits_.max_entries);
  YQ_CHECK(dir.entries <= dir.size / kCentralSize,
           "{}: corrupt zip: {} entries cannot fit in a central directory of {} bytes", name_, dir.entries,
           dir.size);
  entries_.reserve(dir.entries);
  uint64_t pos = dir.offset, cd_end = dir.offset + dir.size;
  for (uint64_t i = 0; i < dir.entries; ++i) {
    YQ_CHECK(pos + kCentralSize <= cd_end && b.u32(pos, "central header") == kCentralSig,
             "{}: corrupt zip: central directory entry {} at byte {} is not a central header", name_, i, pos);
    uint16_t flags = b.u16(pos + 8, "central header");
    ZipEntry e;
    e.method = b.u16(pos + 10, "central header");
    e.crc32 = b.u32(pos + 16, "central header");
    e.compressed_size = b.u32(pos + 20, "central header");
    e.size = b.u32(pos + 24, "central header");
    uint64_t nlen = b.u16(pos + 28, "central header"), xlen = b.u16(pos + 30, "central header"),
             clen = b.u16(pos + 32, "central header");
    uint64_t local = b.u32(pos + 42, "central header");
    YQ_CHECK(pos + kCentralSize + nlen + xlen + clen <= cd_end,
             "{}: corrupt zip: central directory entry {} overruns the directory", name_, i);
    e.name = std::string(b.str(pos + kCentralSize, nlen, "entry name"));
    read_zip64_extra(b, pos + kCentralSize + nlen, xlen, e, local, e.size == 0xFFFFFFFF,
                     e.compressed_size == 0xFFFFFFFF, local == 0xFFFFFFFF, name_);
    pos += kCentralSize + nlen + xlen + clen;

    YQ_CHECK(!(flags & 0x41), "{}: entry '{}' is encrypted", name_, e.name);
    YQ_CHECK(e.method == 0 || e.method == 8,
             "{}: entry '{}' uses compression method {}; only STORED (0) and DEFLATE (8) are supported",
             name_, e.name, e.method);
    YQ_CHECK(e.method != 0 || e.compressed_size == e.size,
             "{}: corrupt zip: STORED entry '{}' has compressed size {} != size {}", name_, e.name,
             e.compressed_size, e.size);
    YQ_CHECK(e.size <= limits_.max_entry_size, "{}: entry '{}' is {} bytes (limit {})", name_, e.name, e.size,
             limits_.max_entry_size);
    // DEFLATE cannot expand more than ~1032:1; a larger claim is a decompression bomb or corruption.
    YQ_CHECK(e.method != 8 || e.size / 1032 <= e.compressed_size + 1,
             "{}: entry '{}' claims {} bytes from {} compressed bytes", name_, e.name, e.size,
             e.compressed_size);

    // The local header repeats the name and method; its data must lie before the central directory.
    YQ_CHECK(
        local <= dir.offset && kLocalSize <= dir.offset - local && b.u32(local, "local header") == kLocalSig,
        "{}: corrupt zip: entry '{}' has no local header at byte {}", name_, e.name, local);
    uint64_t lnlen = b.u16(local + 26, "local header"), lxlen = b.u16(local + 28, "local header");
    YQ_CHECK(b.u16(local + 8, "local header") == e.method && lnlen == nlen &&
                 b.str(local + kLocalSize, lnlen, "local name") == e.name,
             "{}: corrupt zip: the local header of entry '{}' does not match its central header", name_,
             e.name);
    e.data_offset = local + kLocalSize + lnlen + lxlen;
    YQ_CHECK(e.data_offset <= dir.offset && e.compressed_size <= dir.offset - e.data_offset,
             "{}: truncated or corrupt zip: the data of entry '{}' (byte {}, {} bytes) runs past byte {}",
             name_, e.name, e.data_offset, e.compressed_size, dir.offset);
    YQ_CHECK(index_.emplace(e.name, entries_.size()).second, "{}: zip archive has two entries named '{}'",
             name_, e.name);
    entries_.push_back(std::move(e));
  }
}

ZipReader ZipReader::open(const std::filesystem::path& path, ZipLimits limits) {
  std::ifstream in(path, std::ios::binary);
  YQ_CHECK(in, "cannot open {}", path.string());
  in.seekg(0, std::ios::end);
  std::streamoff n = in.tellg();
  YQ_CHECK(n >= 0, "cannot read {}", path.string());
  in.seekg(0);
  std::string bytes(static_cast<size_t>(n), '\0');
  in.read(bytes.data(), n);
  YQ_CHECK(in.gcount() == n, "cannot read {} ({} of {} bytes)", path.string(), in.gcount(), n);
  return ZipReader(std::move(bytes), path.string(), limits);
}

const ZipEntry* ZipReader::find(std::string_view entry_name) const {
  auto it = index_.find(std::string(entry_name));
  return it == index_.end() ? nullptr : &entries_[it->second];
}

std::string_view ZipReader::view_stored(const ZipEntry& e) const {
  YQ_CHECK(e.method == 0, "{}: entry '{}' is compressed (method {})", name_, e.name, e.method);
  std::string_view data(bytes_.data() + e.data_offset, e.size);
  YQ_CHECK(zip_crc32(data) == e.crc32, "{}: entry '{}' is corrupt (CRC-32 mismatch)", name_, e.name);
  return data;
}

std::string ZipReader::read(const ZipEntry& e) const {
  if (e.method == 0) return std::string(view_stored(e));
  std::string out(e.size, '\0');
  z_stream zs{};
  YQ_CHECK(inflateInit2(&zs, -MAX_WBITS) == Z_OK, "{}: zlib initialisation failed", name_);
  uint64_t in_left = e.compressed_size, out_left = e.size;
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes_.data() + e.data_offset));
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  int rc = Z_OK;
  while (rc == Z_OK) {
    if (zs.avail_in == 0 && in_left > 0) {
      zs.avail_in = static_cast<uInt>(std::min<uint64_t>(in_left, 1u << 30));
      in_left -= zs.avail_in;
    }
    if (zs.avail_out == 0 && out_left > 0) {
      zs.avail_out = static_cast<uInt>(std::min<uint64_t>(out_left, 1u << 30));
      out_left -= zs.avail_out;
    }
    uInt before_in = zs.avail_in, before_out = zs.avail_out;
    rc = inflate(&zs, Z_NO_FLUSH);
    if (rc == Z_BUF_ERROR || (rc == Z_OK && zs.avail_in == before_in && zs.avail_out == before_out)) break;
  }
  uint64_t produced = zs.total_out;
  inflateEnd(&zs);
  YQ_CHECK(rc == Z_STREAM_END && produced == e.size,
           "{}: entry '{}' is corrupt: DEFLATE data gave {} bytes (zlib status {}), expected {}", name_,
           e.name, produced, rc, e.size);
  YQ_CHECK(zip_crc32(out) == e.crc32, "{}: entry '{}' is corrupt (CRC-32 mismatch)", name_, e.name);
  return out;
}

}  // namespace yq::model
