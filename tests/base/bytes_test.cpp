#include "base/bytes.h"

#include <gtest/gtest.h>

namespace cml {
namespace {

TEST(Hex, RoundTripAndRejects) {
  Bytes b = {0x00, 0x01, 0xab, 0xff};
  EXPECT_EQ(to_hex(b), "0001abff");
  EXPECT_EQ(*from_hex("0001ABff"), b);
  EXPECT_EQ(*from_hex("0x0001abff"), b);
  EXPECT_FALSE(from_hex("abc").is_ok());
  EXPECT_FALSE(from_hex("zz").is_ok());
  EXPECT_TRUE(from_hex("")->empty());
}

TEST(ByteReader, ReadsBothEndiannessAndStopsAtEnd) {
  Bytes b = {0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 0x01};
  ByteReader r(b);
  EXPECT_EQ(*r.u16_be("a"), 0x1234);
  EXPECT_EQ(*r.u16_le("b"), 0x7856);
  EXPECT_EQ(*r.u32_be("c"), 0x9abcdef0u);
  EXPECT_EQ(r.remaining(), 1u);
  auto fail = r.u32_le("the length field");
  ASSERT_FALSE(fail.is_ok());
  EXPECT_NE(fail.status().message().find("the length field"), std::string::npos);
  EXPECT_EQ(r.remaining(), 1u);  // a failed read consumes nothing
  EXPECT_FALSE(r.expect_end("x").is_ok());
  EXPECT_EQ(*r.u8("d"), 1);
  EXPECT_TRUE(r.expect_end("x").is_ok());
  EXPECT_FALSE(r.take(1, "e").is_ok());
}

TEST(ByteWriter, WritesWhatReaderReads) {
  ByteWriter w;
  w.u64_be(0x0102030405060708ull);
  w.u32_le(0xdeadbeef);
  w.u16_be(7);
  ByteReader r(w.data());
  EXPECT_EQ(*r.u64_be("a"), 0x0102030405060708ull);
  EXPECT_EQ(*r.u32_le("b"), 0xdeadbeefu);
  EXPECT_EQ(*r.u16_be("c"), 7);
}

TEST(ConstantTimeEqual, ComparesContentAndLength) {
  Bytes a = {1, 2, 3}, b = {1, 2, 3}, c = {1, 2, 4}, d = {1, 2};
  EXPECT_TRUE(constant_time_equal(a, b));
  EXPECT_FALSE(constant_time_equal(a, c));
  EXPECT_FALSE(constant_time_equal(a, d));
}

TEST(ReadFile, RefusesOversizeAndMissing) {
  EXPECT_EQ(read_file("/nonexistent/file", 10).status().code(), StatusCode::kNotFound);
  std::string p = ::testing::TempDir() + "/cml_bytes_test.bin";
  ASSERT_TRUE(write_file(p, Bytes(100, 7)).is_ok());
  EXPECT_EQ(read_file(p, 99).status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(read_file(p, 100)->size(), 100u);
}

}  // namespace
}  // namespace cml
