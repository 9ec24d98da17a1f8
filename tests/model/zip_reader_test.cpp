#include "model/zip_reader.h"

#include <gtest/gtest.h>

#include <string>

#include "core/error.h"
#include "model/pickle_test_util.h"

namespace yq::model {
namespace {

using yq::testing::fixture_dir;
using yq::testing::ZipBytes;

void expect_refused(const std::string& bytes, const std::string& needle) {
  try {
    ZipReader z(bytes, "t.zip");
    for (const ZipEntry& e : z.entries()) z.read(e);
    FAIL() << "accepted a zip that should be refused (" << needle << ")";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(ZipReader, ReadsStoredAndDeflateEntries) {
  std::string text(5000, 'a');
  for (size_t i = 0; i < text.size(); i += 7) text[i] = static_cast<char>('a' + i % 26);
  std::string zip =
      ZipBytes().add("arch/data.pkl", "hello").add("arch/data/0", text, true).add("e", "").build();
  ZipReader z(zip, "t.zip");
  ASSERT_EQ(z.entries().size(), 3u);
  EXPECT_EQ(z.read(*z.find("arch/data.pkl")), "hello");
  EXPECT_EQ(z.view_stored(*z.find("arch/data.pkl")), "hello");
  const ZipEntry* d = z.find("arch/data/0");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->method, 8);
  EXPECT_LT(d->compressed_size, d->size);
  EXPECT_EQ(z.read(*d), text);
  EXPECT_EQ(z.read(*z.find("e")), "");
  EXPECT_EQ(z.find("missing"), nullptr);
  EXPECT_EQ(zip_crc32("123456789"), 0xCBF43926u);  // the standard check value
}

TEST(ZipReader, ReadsZip64Records) {
  std::string zip = ZipBytes().add("a/data.pkl", "abc").add("a/data/1", "xyz", true).build(/*zip64=*/true);
  ZipReader z(zip, "t.zip");
  ASSERT_EQ(z.entries().size(), 2u);
  EXPECT_EQ(z.read(*z.find("a/data.pkl")), "abc");
  EXPECT_EQ(z.read(*z.find("a/data/1")), "xyz");
}

TEST(ZipReader, ReadsTorchSaveArchives) {
  ZipReader z = ZipReader::open(fixture_dir() + "/views.pt");
  const ZipEntry* pkl = z.find("views/data.pkl");
  ASSERT_NE(pkl, nullptr);
  EXPECT_EQ(pkl->method, 0);
  EXPECT_EQ(z.read(*pkl).substr(0, 2), "\x80\x02");
  EXPECT_EQ(z.read(*z.find("views/version")).substr(0, 1), "3");
}

TEST(ZipReader, RefusesEveryTruncation) {
  std::string zip =
      ZipBytes().add("a/data.pkl", "hello world").add("a/data/0", std::string(100, 'x')).build();
  for (size_t n = 0; n < zip.size(); ++n) {
    EXPECT_THROW(
        {
          ZipReader z(zip.substr(0, n), "t.zip");
          for (const ZipEntry& e : z.entries()) z.read(e);
        },
        Error)
        << "prefix of " << n << " bytes";
  }
}

TEST(ZipReader, RefusesCorruptHeaders) {
  std::string zip = ZipBytes().add("a/data.pkl", "hello world").build();
  expect_refused("not a zip file at all, just some text that is long enough", "no end-of-central-directory");
  expect_refused("PK", "not a zip archive");

  std::string crc = zip;
  crc[30 + 10] ^= 1;  // a data byte of the first entry
  expect_refused(crc, "CRC-32 mismatch");

  std::string method = zip;
  method[8] = 9;  // the local header's method no longer matches the central header
  expect_refused(method, "does not match its central header");

  std::string enc = zip;
  size_t cd = zip.find("PK\x01\x02");
  enc[cd + 8] = 1;  // encrypted flag in the central header
  expect_refused(enc, "encrypted");

  std::string lzma = zip;
  lzma[cd + 10] = 14;
  expect_refused(lzma, "compression method 14");

  std::string big = zip;
  big[cd + 20] = 0x7f;  // compressed size past the central directory
  expect_refused(big, "STORED entry");
  big[cd + 24] = 0x7f;
  expect_refused(big, "runs past byte");

  std::string off = zip;
  off[cd + 42] = 0x40;  // local header offset inside nowhere
  expect_refused(off, "no local header");

  std::string count = zip;
  size_t end = zip.find("PK\x05\x06");
  count[end + 10] = 0x50;
  count[end + 8] = 0x50;
  expect_refused(count, "cannot fit");

  expect_refused(ZipBytes().add("x", "1").add("x", "2").build(), "two entries named 'x'");
}

TEST(ZipReader, RefusesDeflateBombsAndBadStreams) {
  std::string zip = ZipBytes().add("d", std::string(1000, 'z'), true).build();
  size_t cd = zip.find("PK\x01\x02");
  std::string bomb = zip;
  bomb[cd + 27] = 0x7f;  // claims ~2 GB from a few compressed bytes
  expect_refused(bomb, "claims");
  std::string shorter = zip;
  shorter[cd + 24] = static_cast<char>(0xe7);  // 999 instead of 1000 bytes
  shorter[cd + 25] = 0x03;
  expect_refused(shorter, "DEFLATE data gave");
  std::string garbage = zip;
  garbage[30 + 1] = static_cast<char>(0xff);  // inside the deflate stream
  garbage[30 + 2] = static_cast<char>(0xff);
  expect_refused(garbage, "corrupt");
}

}  // namespace
}  // namespace yq::model
