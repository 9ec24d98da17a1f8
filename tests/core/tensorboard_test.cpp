#include "core/tensorboard.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/fs.h"
#include "core/tensorboard.pb.h"
#include "test_util.h"

namespace yq {
namespace {

using yq::testing::TempDir;

uint64_t get_le64(const std::string& s, size_t at) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(s[at + i]);
  return v;
}

uint32_t get_le32(const std::string& s, size_t at) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(s[at + i]);
  return v;
}

// Reads a TFRecord stream back, checking both CRCs of every record (independently of
// tfrecord_frame: the framing is parsed here byte by byte).
std::vector<std::string> read_records(const std::string& bytes) {
  std::vector<std::string> records;
  size_t at = 0;
  while (at < bytes.size()) {
    EXPECT_LE(at + 12, bytes.size()) << "truncated header at byte " << at;
    if (at + 12 > bytes.size()) break;
    uint64_t len = get_le64(bytes, at);
    EXPECT_EQ(get_le32(bytes, at + 8), masked_crc32c(bytes.data() + at, 8)) << "length CRC at " << at;
    EXPECT_LE(at + 12 + len + 4, bytes.size()) << "truncated record at byte " << at;
    if (at + 12 + len + 4 > bytes.size()) break;
    std::string data = bytes.substr(at + 12, len);
    EXPECT_EQ(get_le32(bytes, at + 12 + len), masked_crc32c(data.data(), data.size()))
        << "data CRC at " << at;
    records.push_back(data);
    at += 12 + len + 4;
  }
  return records;
}

TEST(Crc32c, KnownAnswers) {
  EXPECT_EQ(crc32c("123456789", 9), 0xE3069283u);
  EXPECT_EQ(crc32c("", 0), 0u);
  // RFC 3720 (iSCSI) B.4 test vectors: 32 bytes of zeros, of 0xff, and 0, 1, ..., 31.
  std::string zeros(32, '\0'), ones(32, '\xff'), inc(32, '\0');
  for (int i = 0; i < 32; ++i) inc[i] = static_cast<char>(i);
  EXPECT_EQ(crc32c(zeros.data(), 32), 0x8A9136AAu);
  EXPECT_EQ(crc32c(ones.data(), 32), 0x62A8AB43u);
  EXPECT_EQ(crc32c(inc.data(), 32), 0x46DD794Eu);
}

TEST(Crc32c, SlicedPathAgreesWithBytewiseAndChains) {
  // Every length 0..40 and every split point: the 4-byte slicing loop and the byte tail must
  // agree with feeding the bytes one at a time.
  std::string s;
  for (int i = 0; i < 40; ++i) s.push_back(static_cast<char>(i * 37 + 11));
  for (size_t n = 0; n <= s.size(); ++n) {
    uint32_t bytewise = 0;
    for (size_t i = 0; i < n; ++i) bytewise = crc32c(s.data() + i, 1, bytewise);
    EXPECT_EQ(crc32c(s.data(), n), bytewise) << "n=" << n;
    for (size_t k = 0; k <= n; ++k)
      ASSERT_EQ(crc32c(s.data() + k, n - k, crc32c(s.data(), k)), bytewise) << "n=" << n << " k=" << k;
  }
}

TEST(Crc32c, MaskRoundTrip) {
  uint32_t c = crc32c("123456789", 9);
  uint32_t m = masked_crc32c("123456789", 9);
  EXPECT_EQ(m, ((c >> 15) | (c << 17)) + 0xa282ead8u);
  EXPECT_NE(m, c);
  EXPECT_EQ(unmask_crc32c(m), c);
}

TEST(TfRecord, FrameLayout) {
  std::string rec = tfrecord_frame("abc");
  ASSERT_EQ(rec.size(), 8u + 4u + 3u + 4u);
  EXPECT_EQ(get_le64(rec, 0), 3u);
  EXPECT_EQ(rec.substr(12, 3), "abc");
  auto back = read_records(rec + tfrecord_frame("") + tfrecord_frame(std::string(300, 'x')));
  ASSERT_EQ(back.size(), 3u);
  EXPECT_EQ(back[0], "abc");
  EXPECT_EQ(back[1], "");
  EXPECT_EQ(back[2], std::string(300, 'x'));
}

TEST(TfRecord, CorruptionIsDetected) {
  std::string rec = tfrecord_frame("hello");
  rec[13] ^= 0x01;  // flip a bit of the data
  EXPECT_NE(get_le32(rec, 12 + 5), masked_crc32c(rec.data() + 12, 5));
}

TEST(TensorBoardWriter, WritesScalarsThatReadBack) {
  TempDir tmp("scalars");
  fs::path dir = tmp.path() / "logs" / "run1";
  double t0 = static_cast<double>(std::time(nullptr));
  fs::path file;
  {
    TensorBoardWriter tb(dir);
    file = tb.path();
    tb.add_scalar("train/box_loss", 1.25, 1);
    tb.add_scalar("metrics/mAP50-95(B)", 0.0, 1);  // a zero must still be written
    tb.add_scalar("lr/pg0", 3.3e-4, 7);
    tb.add_scalar("train/box_loss", -2.5, 1234567890123LL);
    tb.flush();
  }
  EXPECT_EQ(file.parent_path(), dir);
  std::string name = file.filename().string();
  EXPECT_EQ(name.rfind("events.out.tfevents.", 0), 0u) << name;

  auto records = read_records(read_text(file));
  ASSERT_EQ(records.size(), 5u);

  tb::Event first;
  ASSERT_TRUE(first.ParseFromString(records[0]));
  EXPECT_EQ(first.what_case(), tb::Event::kFileVersion);
  EXPECT_EQ(first.file_version(), "brain.Event:2");
  EXPECT_GE(first.wall_time(), t0 - 1);
  EXPECT_LE(first.wall_time(), t0 + 600);
  // The file name carries the same Unix time.
  EXPECT_EQ(name.substr(20, name.find('.', 20) - 20),
            std::to_string(static_cast<int64_t>(first.wall_time())));

  struct Expect {
    const char* tag;
    float value;
    int64_t step;
  };
  const Expect want[] = {{"train/box_loss", 1.25f, 1},
                         {"metrics/mAP50-95(B)", 0.0f, 1},
                         {"lr/pg0", 3.3e-4f, 7},
                         {"train/box_loss", -2.5f, 1234567890123LL}};
  double prev_time = first.wall_time();
  for (size_t i = 0; i < 4; ++i) {
    tb::Event ev;
    ASSERT_TRUE(ev.ParseFromString(records[i + 1])) << i;
    ASSERT_EQ(ev.what_case(), tb::Event::kSummary) << i;
    EXPECT_EQ(ev.step(), want[i].step) << i;
    EXPECT_GE(ev.wall_time(), prev_time) << i;
    prev_time = ev.wall_time();
    ASSERT_EQ(ev.summary().value_size(), 1) << i;
    const auto& v = ev.summary().value(0);
    EXPECT_EQ(v.tag(), want[i].tag) << i;
    ASSERT_EQ(v.value_case(), tb::Summary::Value::kSimpleValue) << i;
    EXPECT_EQ(v.simple_value(), want[i].value) << i;
  }
}

TEST(TensorBoardWriter, WireBytesMatchTensorBoardFieldNumbers) {
  // Hand-encoded protobuf of Event{step: 3, summary {value {tag: "a", simple_value: 0.5}}}
  // with TensorBoard's field numbers (event.proto: step = 2, summary = 5; summary.proto:
  // value = 1, tag = 1, simple_value = 2), wall_time left out since it changes.
  tb::Event ev;
  ev.set_step(3);
  auto* v = ev.mutable_summary()->add_value();
  v->set_tag("a");
  v->set_simple_value(0.5f);
  const unsigned char want[] = {
      0x10, 0x03,                    // field 2 (step), varint 3
      0x2a, 0x0a,                    // field 5 (summary), 10 bytes
      0x0a, 0x08,                    //   field 1 (value), 8 bytes
      0x0a, 0x01, 'a',               //     field 1 (tag), "a"
      0x15, 0x00, 0x00, 0x00, 0x3f,  //     field 2 (simple_value), fixed32 0.5f
  };
  EXPECT_EQ(ev.SerializeAsString(), std::string(reinterpret_cast<const char*>(want), sizeof(want)));

  tb::Event fv;
  fv.set_wall_time(1.0);
  fv.set_file_version("brain.Event:2");
  std::string s = fv.SerializeAsString();
  ASSERT_EQ(s.size(), 9u + 2u + 13u);
  EXPECT_EQ(static_cast<unsigned char>(s[0]), 0x09);  // field 1 (wall_time), fixed64
  EXPECT_EQ(static_cast<unsigned char>(s[9]), 0x1a);  // field 3 (file_version), length-delimited
  EXPECT_EQ(s.substr(11), "brain.Event:2");
}

TEST(TensorBoardWriter, SecondWriterInSameFolderGetsItsOwnFile) {
  TempDir tmp("two");
  const fs::path& dir = tmp.path();
  TensorBoardWriter a(dir);
  TensorBoardWriter b(dir);
  EXPECT_NE(a.path(), b.path());
  a.add_scalar("x", 1, 0);
  b.add_scalar("x", 2, 0);
  a.flush();
  b.flush();
  EXPECT_EQ(read_records(read_text(a.path())).size(), 2u);
  EXPECT_EQ(read_records(read_text(b.path())).size(), 2u);
}

TEST(TensorBoardWriter, UnwritableFolderNamesThePath) {
  TempDir tmp("blocked");
  const fs::path& dir = tmp.path();
  fs::path blocker = dir / "file";
  atomic_write(blocker, "not a folder");
  try {
    TensorBoardWriter tb(blocker / "sub");
    FAIL() << "expected yq::Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find((blocker / "sub").string()), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace yq
