#include "pipeline/protocol.h"

#include <gtest/gtest.h>

#include "support/test_support.h"

namespace cml::pipeline {
namespace {

ControlMessage round_trip(const ControlMessage& m) {
  auto r = decode_control(encode_control(m));
  EXPECT_TRUE(r.is_ok()) << r.status().to_string();
  return r.is_ok() ? *r : ControlMessage(ctl::Shutdown{});
}

TEST(ControlProtocol, RoundTripsEveryMessage) {
  auto init = std::get<ctl::Init>(round_trip(ctl::Init{std::string(64, 'a'), 2, 77}));
  EXPECT_EQ(init.stage, 2u);
  EXPECT_EQ(init.session, 77u);
  auto link = std::get<ctl::Link>(round_trip(ctl::Link{"tcp://10.0.0.1:5", true}));
  EXPECT_EQ(link.downstream, "tcp://10.0.0.1:5");
  EXPECT_TRUE(link.downstream_is_orchestrator);
  auto start = std::get<ctl::Start>(round_trip(ctl::Start{{{5, Sampling{0.5f, 40, 0.9f, 9}}, {6, Sampling{}}}}));
  ASSERT_EQ(start.seqs.size(), 2u);
  EXPECT_EQ(start.seqs[0].sampling, (Sampling{0.5f, 40, 0.9f, 9}));
  auto ab = std::get<ctl::Abort>(round_trip(ctl::Abort{{1, 2, 3}, "done"}));
  EXPECT_EQ(ab.seqs.size(), 3u);
  EXPECT_EQ(std::get<ctl::Ping>(round_trip(ctl::Ping{42})).nonce, 42u);
  EXPECT_TRUE(std::holds_alternative<ctl::Shutdown>(round_trip(ctl::Shutdown{})));
  EXPECT_EQ(std::get<ctl::Ready>(round_trip(ctl::Ready{1, 2, 3})).tensors_verified, 3u);
  EXPECT_EQ(std::get<ctl::Linked>(round_trip(ctl::Linked{4})).stage, 4u);
  EXPECT_EQ(std::get<ctl::Started>(round_trip(ctl::Started{5})).stage, 5u);
  ctl::Pong p;
  p.nonce = 9;
  p.out_bytes = 1234;
  EXPECT_EQ(std::get<ctl::Pong>(round_trip(p)).out_bytes, 1234u);
  auto e = std::get<ctl::Error>(round_trip(ctl::Error{1, 99, "POLICY", "weight tensor 'x' differs"}));
  EXPECT_EQ(e.step, 99u);
  EXPECT_EQ(e.message, "weight tensor 'x' differs");
  EXPECT_EQ(std::get<ctl::Bye>(round_trip(ctl::Bye{3})).stage, 3u);
}

Status decode_text(std::string_view t, size_t max = kDefaultMaxControlBytes) {
  return decode_control(as_bytes(t), max).status();
}

TEST(ControlProtocol, RefusesMalformedMessages) {
  EXPECT_EQ(decode_text("").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(decode_text("{\"v\":1").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(decode_text("[1]").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(decode_text(R"({"type":"ping","nonce":1})").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(decode_text(R"({"v":2,"type":"pong2"})").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(decode_text(R"({"v":2,"type":"ping","nonce":-1})").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(decode_text(R"({"v":2,"type":"ping","nonce":1,"x":0})").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(decode_text(R"({"v":2,"type":"ping","nonce":"1"})").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(decode_text(R"({"v":2,"type":"start","seqs":[{"seq":1}]})").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(
      decode_text(
          R"({"v":2,"type":"start","seqs":[{"seq":1,"sampling":{"temperature":-1,"top_k":0,"top_p":1,"seed":0}}]})")
          .code(),
      StatusCode::kInvalidArgument);
  auto dup = decode_text(
      R"({"v":2,"type":"start","seqs":[{"seq":1,"sampling":{"temperature":0,"top_k":0,"top_p":1,"seed":0}},{"seq":1,"sampling":{"temperature":0,"top_k":0,"top_p":1,"seed":0}}]})");
  EXPECT_NE(dup.message().find("duplicate"), std::string::npos);
  std::string deep = std::string(1000, '[') + std::string(1000, ']');
  EXPECT_EQ(decode_text(deep).code(), StatusCode::kInvalidArgument);
}

TEST(ControlProtocol, RefusesOtherVersions) {
  // Version 1 closed every data step with an END record; a stage of that version must not be linked.
  Status st = decode_text(R"({"v":1,"type":"ping","nonce":1})");
  EXPECT_EQ(st.code(), StatusCode::kProtocol);
  EXPECT_NE(st.message().find("version 1, this build speaks 2"), std::string::npos) << st.to_string();
  EXPECT_EQ(decode_text(R"({"v":3,"type":"ping","nonce":1})").code(), StatusCode::kProtocol);
  CML_EXPECT_OK(decode_text(R"({"v":2,"type":"ping","nonce":1})"));
}

TEST(ControlProtocol, RefusesOversizedMessagesBeforeParsing) {
  std::string big = R"({"v":2,"type":"abort","seqs":[],"reason":")" + std::string(70000, 'x') + "\"}";
  EXPECT_EQ(decode_text(big).code(), StatusCode::kResourceExhausted);
  // Within a larger limit it is still refused: the reason field is bounded.
  EXPECT_EQ(decode_text(big, 1 << 20).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(decode_text(R"({"v":2,"type":"ping","nonce":1})", 10).code(), StatusCode::kResourceExhausted);
}

TEST(StepHeader, RoundTripsAndRefusesMalformed) {
  StepHeader h{7, {{1, 0, 5}, {2, 9, 1}}};
  EXPECT_EQ(h.total_tokens(), 6u);
  auto v = encode_step_header(h);
  auto back = decode_step_header(v, 64);
  CML_ASSERT_OK(back);
  EXPECT_EQ(*back, h);
  EXPECT_FALSE(decode_step_header(std::vector<int64_t>{7}, 64).is_ok());
  EXPECT_FALSE(decode_step_header(std::vector<int64_t>{0, 1, 1, 0, 1}, 64).is_ok());           // step 0
  EXPECT_FALSE(decode_step_header(std::vector<int64_t>{7, 2, 1, 0, 1}, 64).is_ok());           // short
  EXPECT_FALSE(decode_step_header(std::vector<int64_t>{7, 1, 1, 0, 0}, 64).is_ok());           // len 0
  EXPECT_FALSE(decode_step_header(std::vector<int64_t>{7, 1, 1, 60, 5}, 64).is_ok());          // past max
  EXPECT_FALSE(decode_step_header(std::vector<int64_t>{7, 1, -1, 0, 1}, 64).is_ok());          // negative
  EXPECT_FALSE(decode_step_header(std::vector<int64_t>{7, 2, 1, 0, 1, 1, 1, 1}, 64).is_ok());  // dup
  EXPECT_FALSE(decode_step_header(std::vector<int64_t>{7, 1LL << 40, 1, 0, 1}, 64).is_ok());
}

TEST(StepHeader, ErrorReasonCarriesTheStep) {
  EXPECT_EQ(step_of_error(make_step_error(123, "stage 1: boom")), 123u);
  EXPECT_EQ(step_of_error("garbage"), 0u);
  EXPECT_EQ(step_of_error("12x:y"), 0u);
}

}  // namespace
}  // namespace cml::pipeline
