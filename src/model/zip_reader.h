// Reads zip archives held in memory: PyTorch's checkpoint format (torch.save) is a zip file whose
// entries are STORED (PyTorch's writer never compresses). DEFLATE entries (a checkpoint re-packed by a
// zip tool) are inflated with zlib. Every header field is checked against the file length before it
// is used, so a truncated or corrupt archive is refused with a yq::Error instead of read out of bounds.
// Zip64 records are read when the archive needs them (entries or offsets past 4 GiB).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace yq::model {

struct ZipEntry {
  std::string name;
  uint16_t method = 0;           // 0 STORED, 8 DEFLATE
  uint32_t crc32 = 0;            // of the uncompressed bytes
  uint64_t compressed_size = 0;  // bytes in the archive
  uint64_t size = 0;             // bytes once read
  uint64_t data_offset = 0;      // of the entry's (compressed) bytes in the archive
};

struct ZipLimits {
  uint64_t max_entries = 1u << 20;
  uint64_t max_entry_size = uint64_t{1} << 34;  // 16 GiB uncompressed per entry
};

class ZipReader {
 public:
  // Takes the archive's bytes; `name` only labels error messages. Parses and checks the central
  // directory and every local header; throws yq::Error naming `name` on anything malformed.
  explicit ZipReader(std::string bytes, std::string name = "<memory>", ZipLimits limits = {});

  // Reads a whole file into memory and parses it.
  static ZipReader open(const std::filesystem::path& path, ZipLimits limits = {});

  const std::vector<ZipEntry>& entries() const { return entries_; }
  const std::string& name() const { return name_; }

  // The entry called exactly `entry_name`, or nullptr.
  const ZipEntry* find(std::string_view entry_name) const;

  // The entry's bytes (inflated if needed), CRC-32 checked.
  std::string read(const ZipEntry& entry) const;

  // The entry's bytes without a copy, for STORED entries (CRC-32 checked once per call).
  std::string_view view_stored(const ZipEntry& entry) const;

 private:
  std::string bytes_;
  std::string name_;
  ZipLimits limits_;
  std::vector<ZipEntry> entries_;
  std::unordered_map<std::string, size_t> index_;  // name -> position in entries_
};

// CRC-32 (the zip polynomial) of `data`.
uint32_t zip_crc32(std::string_view data);

}  // namespace yq::model
