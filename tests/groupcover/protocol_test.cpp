#include "groupcover/protocol.h"

#include <gtest/gtest.h>

namespace cml::groupcover {
namespace {

ModelShapes shapes() {
  return {{{8, 4}, {6, 4}, {4, 6}}};
}

TEST(Protocol, RoundTrips) {
  Hello h;
  h.digest[0] = 7;
  h.model = shapes();
  auto hb = decode_hello(encode_hello(h));
  ASSERT_TRUE(hb.is_ok());
  EXPECT_EQ(hb->digest, h.digest);
  EXPECT_EQ(hb->model.shapes, h.model.shapes);
  EXPECT_EQ(*decode_hello_ok(encode_hello_ok(true)), true);
  ComputeRequest q{42, 3, {0, 1}};
  auto qb = decode_compute(encode_compute(q), shapes(), 3 * 4 + 3 * 4);
  ASSERT_TRUE(qb.is_ok());
  EXPECT_EQ(qb->id, 42u);
  EXPECT_EQ(qb->parts, q.parts);
  EXPECT_TRUE(decode_result(encode_result({42, 3}), q, shapes(), 3 * 8 + 3 * 6).is_ok());
  EXPECT_FALSE(decode_result(encode_result({41, 3}), q, shapes(), 3 * 8 + 3 * 6).is_ok());
  EXPECT_FALSE(decode_result(encode_result({42, 3}), q, shapes(), 3 * 8).is_ok());
  auto u = decode_upload(encode_upload({2, 1, 3}), shapes(), 18);
  ASSERT_TRUE(u.is_ok());
  EXPECT_EQ(u->row0, 1u);
  EXPECT_EQ(*decode_error(encode_error("boom\n")), "boom?");
  EXPECT_EQ(*peek_type(encode_simple(MsgType::kReady)), MsgType::kReady);
}

TEST(Protocol, RefusesHostileHeaders) {
  const ModelShapes m = shapes();
  // Unknown matrix, zero rows, too many rows, payload mismatch, trailing bytes, wrong type, short.
  EXPECT_FALSE(decode_compute(encode_compute({1, 1, {3}}), m, 6).is_ok());
  EXPECT_FALSE(decode_compute(encode_compute({1, 0, {0}}), m, 0).is_ok());
  EXPECT_FALSE(
      decode_compute(encode_compute({1, kMaxRequestRows + 1, {0}}), m, uint64_t(kMaxRequestRows + 1) * 4).is_ok());
  EXPECT_FALSE(decode_compute(encode_compute({1, 2, {0}}), m, 9).is_ok());
  Bytes b = encode_compute({1, 2, {0}});
  b.push_back(0);
  EXPECT_FALSE(decode_compute(b, m, 8).is_ok());
  EXPECT_FALSE(decode_compute(encode_hello({}), m, 0).is_ok());
  EXPECT_FALSE(decode_compute(ByteSpan(b.data(), 2), m, 0).is_ok());
  std::vector<uint32_t> many(kMaxRequestParts + 1, 0);
  EXPECT_FALSE(decode_compute(encode_compute({1, 1, many}), m, 4 * many.size()).is_ok());
  EXPECT_FALSE(decode_upload(encode_upload({0, 7, 2}), m, 8).is_ok());  // past the last row
  EXPECT_FALSE(decode_upload(encode_upload({0, 0, 2}), m, 7).is_ok());
  Hello h;
  h.model = {{{0, 4}}};
  EXPECT_FALSE(decode_hello(encode_hello(h)).is_ok());
  Bytes hb = encode_hello(Hello{{}, m});
  hb.pop_back();
  EXPECT_FALSE(decode_hello(hb).is_ok());
  Bytes bad = encode_simple(MsgType::kReady);
  bad[0] = 0;
  EXPECT_FALSE(peek_type(bad).is_ok());
  bad = encode_simple(MsgType::kReady);
  bad[2] = 99;
  EXPECT_FALSE(peek_type(bad).is_ok());
}

}  // namespace
}  // namespace cml::groupcover
