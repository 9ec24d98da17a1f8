#include "core/tensorboard.h"

#include <unistd.h>

#include <array>
#include <chrono>

#include "core/error.h"
#include "core/tensorboard.pb.h"

namespace yq {

namespace {

constexpr uint32_t kCrc32cPoly = 0x82F63B78u;  // 0x1EDC6F41 bit-reversed
constexpr uint32_t kCrcMaskDelta = 0xa282ead8u;

// table[k][b]: CRC of byte b followed by k zero bytes, for slicing by 4 bytes at a time.
struct Crc32cTables {
  std::array<std::array<uint32_t, 256>, 4> t{};
  Crc32cTables() {
    for (uint32_t b = 0; b < 256; ++b) {
      uint32_t c = b;
      for (int i = 0; i < 8; ++i) c = (c & 1u) ? (c >> 1) ^ kCrc32cPoly : c >> 1;
      t[0][b] = c;
    }
    for (uint32_t b = 0; b < 256; ++b)
      for (size_t k = 1; k < 4; ++k) t[k][b] = (t[k - 1][b] >> 8) ^ t[0][t[k - 1][b] & 0xffu];
  }
};

const Crc32cTables& crc_tables() {
  static const Crc32cTables tables;
  return tables;
}

void put_le32(std::string& s, uint32_t v) {
  for (int i = 0; i < 4; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xffu));
}

void put_le64(std::string& s, uint64_t v) {
  for (int i = 0; i < 8; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xffu));
}

double unix_seconds() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

std::string host_name() {
  std::array<char, 256> buf{};
  if (::gethostname(buf.data(), buf.size() - 1) != 0 || buf[0] == '\0') return "localhost";
  std::string h(buf.data());
  for (char& c : h)
    if (c == '/' || c == '\\') c = '_';  // keep it one path component
  return h;
}

}  // namespace

uint32_t crc32c(const void* data, size_t n, uint32_t crc) {
  const auto& t = crc_tables().t;
  const auto* p = static_cast<const unsigned char*>(data);
  uint32_t c = ~crc;
  for (; n >= 4; n -= 4, p += 4) {
    c ^= uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
    c = t[3][c & 0xffu] ^ t[2][(c >> 8) & 0xffu] ^ t[1][(c >> 16) & 0xffu] ^ t[0][c >> 24];
  }
  for (; n > 0; --n, ++p) c = (c >> 8) ^ t[0][(c ^ *p) & 0xffu];
  return ~c;
}

uint32_t masked_crc32c(const void* data, size_t n) {
  uint32_t c = crc32c(data, n);
  return ((c >> 15) | (c << 17)) + kCrcMaskDelta;
}

uint32_t unmask_crc32c(uint32_t masked) {
  uint32_t r = masked - kCrcMaskDelta;
  return (r >> 17) | (r << 15);
}

std::string tfrecord_frame(const std::string& data) {
  std::string rec;
  rec.reserve(data.size() + 16);
  put_le64(rec, data.size());
  put_le32(rec, masked_crc32c(rec.data(), 8));
  rec += data;
  put_le32(rec, masked_crc32c(data.data(), data.size()));
  return rec;
}

TensorBoardWriter::TensorBoardWriter(const fs::path& logdir) {
  with_context("while creating a TensorBoard event file in " + logdir.string(), [&] {
    fs::create_directories(logdir);
    double now = unix_seconds();
    std::string base = "events.out.tfevents." + std::to_string(static_cast<int64_t>(now)) + "." + host_name();
    path_ = logdir / base;
    for (int i = 2; fs::exists(path_); ++i) path_ = logdir / (base + "." + std::to_string(i));
    out_.open(path_, std::ios::binary | std::ios::trunc);
    YQ_CHECK(out_.is_open(), "cannot open {} for writing", path_.string());

    tb::Event ev;
    ev.set_wall_time(now);
    ev.set_step(0);
    ev.set_file_version("brain.Event:2");
    write_event(ev.SerializeAsString());
    flush();
  });
}

TensorBoardWriter::~TensorBoardWriter() {
  // A destructor must not throw; a failed final flush only loses what the OS had not taken yet.
  if (out_.is_open()) out_.flush();
}

void TensorBoardWriter::add_scalar(const std::string& tag, double value, int64_t step) {
  tb::Event ev;
  ev.set_wall_time(unix_seconds());
  ev.set_step(step);
  tb::Summary::Value* v = ev.mutable_summary()->add_value();
  v->set_tag(tag);
  v->set_simple_value(static_cast<float>(value));
  write_event(ev.SerializeAsString());
}

void TensorBoardWriter::flush() {
  out_.flush();
  YQ_CHECK(out_.good(), "writing TensorBoard events to {} failed (disk full?)", path_.string());
}

void TensorBoardWriter::write_event(const std::string& serialized_event) {
  std::string rec = tfrecord_frame(serialized_event);
  out_.write(rec.data(), static_cast<std::streamsize>(rec.size()));
  YQ_CHECK(out_.good(), "writing TensorBoard events to {} failed (disk full?)", path_.string());
}

}  // namespace yq
