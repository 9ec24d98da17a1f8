// TensorBoard event files (scalars), written without TensorFlow.
//
// An event file is a TFRecord stream: each record is
//   uint64 length (little-endian) | uint32 masked_crc32c(length bytes) | data | uint32 masked_crc32c(data)
// and each record's data is a serialized Event message (src/core/tensorboard.proto). The first
// record of a file is an Event with file_version "brain.Event:2"; every scalar is one more Event
// with a Summary holding one tagged simple_value. TensorBoard reads every file whose name contains
// "tfevents" in the folder it is pointed at (`tensorboard --logdir logs/tensorboard`).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

namespace yq {

namespace fs = std::filesystem;

// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) of `n` bytes; `crc` continues an earlier
// call (crc32c(b, crc32c(a)) == crc32c(a + b)). crc32c("123456789") == 0xE3069283.
uint32_t crc32c(const void* data, size_t n, uint32_t crc = 0);

// The CRC as TFRecord stores it: rotated right by 15 bits plus 0xa282ead8.
uint32_t masked_crc32c(const void* data, size_t n);
uint32_t unmask_crc32c(uint32_t masked);

// Frames `data` as one TFRecord (header, data, footer), as it is written to an event file.
std::string tfrecord_frame(const std::string& data);

class TensorBoardWriter {
 public:
  // Creates `logdir` (and its parents) and the file events.out.tfevents.<unix time>.<hostname>
  // in it (".2", ".3", ... appended when that name is taken), and writes the file_version event.
  // Throws yq::Error naming the file when it cannot be created.
  explicit TensorBoardWriter(const fs::path& logdir);
  ~TensorBoardWriter();  // flushes; never throws

  TensorBoardWriter(const TensorBoardWriter&) = delete;
  TensorBoardWriter& operator=(const TensorBoardWriter&) = delete;

  // One point of the series `tag` ("train/box_loss", "metrics/mAP50-95(B)") at x = `step`.
  // TensorBoard stores scalars as float32. Throws yq::Error when the write fails.
  void add_scalar(const std::string& tag, double value, int64_t step);

  // Pushes what was written so far to the file (TensorBoard then sees it).
  void flush();

  const fs::path& path() const { return path_; }

 private:
  void write_event(const std::string& serialized_event);

  fs::path path_;
  std::ofstream out_;
};

}  // namespace yq
