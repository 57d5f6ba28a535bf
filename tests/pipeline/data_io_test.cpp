// recv_step against what a neighbouring stage may send: the two records of a step, ERR, a clean close,
// and every way the sequence or the payload can be wrong (each an INVALID_ARGUMENT naming the problem).
#include "pipeline/data_io.h"

#include <gtest/gtest.h>

#include <cstring>
#include <deque>

#include "support/test_support.h"

namespace cml::pipeline {
namespace {

constexpr uint32_t kHidden = 4, kMaxSeq = 64;

// A link that records what is sent and replays it (or a scripted sequence) to recv().
class ScriptLink final : public Link {
 public:
  std::deque<net::Message> queue;
  int corks = 0, uncorks = 0;

  Status send_data(ByteSpan data, Deadline) override {
    net::Message m;
    m.kind = net::Message::Kind::kData;
    m.data.assign(data.begin(), data.end());
    queue.push_back(std::move(m));
    return ok_status();
  }
  Status send_tensor(const net::TensorView& t, Deadline) override {
    net::Message m;
    m.kind = net::Message::Kind::kTensor;
    m.tensor = {std::string(t.name), t.dtype, {t.shape.begin(), t.shape.end()}, Bytes(t.data.begin(), t.data.end())};
    queue.push_back(std::move(m));
    return ok_status();
  }
  void cork() override { ++corks; }
  Status uncork(Deadline) override {
    ++uncorks;
    return ok_status();
  }
  Status recv(net::Message& out, Deadline) override {
    if (queue.empty()) return unavailable("script: nothing more");
    out = std::move(queue.front());
    queue.pop_front();
    return ok_status();
  }
  void close(Deadline) override {}
  void abort() override {}
  LinkInfo info() const override { return {}; }
  LinkCounters counters() const override { return {}; }
};

net::Message tensor_message(std::string name, tensor::DType dt, std::vector<uint32_t> shape, size_t bytes) {
  net::Message m;
  m.kind = net::Message::Kind::kTensor;
  m.tensor = {std::move(name), dt, std::move(shape), Bytes(bytes, 0)};
  return m;
}

net::Message header_message(const StepHeader& h) {
  auto v = encode_step_header(h);
  net::Message m = tensor_message("step", tensor::DType::kI64, {uint32_t(v.size())}, v.size() * 8);
  std::memcpy(m.tensor.data.data(), v.data(), v.size() * 8);
  return m;
}

net::Message data_message(std::string_view s) {
  net::Message m;
  m.kind = net::Message::Kind::kData;
  m.data = to_bytes(s);
  return m;
}

const StepHeader kStep{9, {{1, 0, 2}, {2, 5, 1}}};  // 3 tokens

Status recv_from(std::vector<net::Message> script, StepMessage& out) {
  ScriptLink link;
  for (auto& m : script) link.queue.push_back(std::move(m));
  return recv_step(link, out, Deadline::never(), kMaxSeq, kHidden);
}

TEST(DataSteps, AStepIsTwoRecordsSentTogether) {
  ScriptLink link;
  std::vector<float> x(3 * kHidden, 0.5f);
  const uint32_t shape[2] = {3, kHidden};
  net::TensorView v{"hidden", tensor::DType::kF32, shape,
                    ByteSpan(reinterpret_cast<const uint8_t*>(x.data()), x.size() * 4)};
  CML_ASSERT_OK(send_step(link, kStep, v, Deadline::never()));
  EXPECT_EQ(link.corks, 1);
  EXPECT_EQ(link.uncorks, 1);
  ASSERT_EQ(link.queue.size(), 2u);
  StepMessage got;
  CML_ASSERT_OK(recv_step(link, got, Deadline::never(), kMaxSeq, kHidden));
  EXPECT_EQ(got.kind, StepMessage::Kind::kStep);
  EXPECT_EQ(got.header, kStep);
  EXPECT_EQ(got.payload.name, "hidden");
  EXPECT_EQ(got.payload.data.size(), x.size() * 4);
  EXPECT_TRUE(link.queue.empty());  // nothing of the step is left for the next recv_step
}

TEST(DataSteps, TakesEveryPayloadKind) {
  StepMessage got;
  CML_EXPECT_OK(recv_from({header_message(kStep), tensor_message("tokens", tensor::DType::kU32, {3}, 12)}, got));
  EXPECT_EQ(got.payload.name, "tokens");
  CML_EXPECT_OK(recv_from({header_message(kStep), tensor_message("sampled", tensor::DType::kU32, {2}, 8)}, got));
  EXPECT_EQ(got.payload.name, "sampled");
}

TEST(DataSteps, ErrAndCloseAreNotSteps) {
  StepMessage got;
  CML_ASSERT_OK(recv_from({data_message("ERR:9:stage 1: boom")}, got));
  EXPECT_EQ(got.kind, StepMessage::Kind::kErr);
  EXPECT_EQ(got.err_step, 9u);
  CML_ASSERT_OK(recv_from({data_message("ERR")}, got));
  EXPECT_EQ(got.kind, StepMessage::Kind::kErr);
  EXPECT_EQ(got.err_step, 0u);
  net::Message bye;
  bye.kind = net::Message::Kind::kShutdown;
  CML_ASSERT_OK(recv_from({std::move(bye)}, got));
  EXPECT_EQ(got.kind, StepMessage::Kind::kClosed);
}

void expect_refused(std::vector<net::Message> script, std::string_view why) {
  StepMessage got;
  Status st = recv_from(std::move(script), got);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st.to_string();
  EXPECT_NE(st.message().find(why), std::string::npos) << st.to_string();
}

TEST(DataSteps, RefusesMalformedSequences) {
  const auto hidden3 = [] { return tensor_message("hidden", tensor::DType::kF32, {3, kHidden}, 3 * kHidden * 4); };
  // A version-1 sender's END after its step arrives where the next step should start.
  expect_refused({data_message("END")}, "expected a step tensor or ERR");
  expect_refused({hidden3()}, "expected the I64 \"step\" tensor first");
  expect_refused({tensor_message("step", tensor::DType::kF32, {5}, 20)}, "\"step\" tensor first");
  expect_refused({tensor_message("step", tensor::DType::kI64, {1, 5}, 40)}, "\"step\" tensor first");
  expect_refused({tensor_message("step", tensor::DType::kI64, {5}, 32)}, "step tensor size");
  expect_refused({header_message(kStep), data_message("END")}, "expected the payload tensor");
  expect_refused({header_message(kStep), header_message(kStep)}, "does not match the step");
  expect_refused({header_message(kStep), tensor_message("hidden", tensor::DType::kF32, {2, kHidden}, 32)},
                 "does not match the step");
  expect_refused({header_message(kStep), tensor_message("hidden", tensor::DType::kF32, {3, kHidden + 1}, 60)},
                 "does not match the step");
  expect_refused({header_message(kStep), tensor_message("hidden", tensor::DType::kF16, {3, kHidden}, 24)},
                 "does not match the step");
  expect_refused({header_message(kStep), tensor_message("tokens", tensor::DType::kU32, {2}, 8)},
                 "does not match the step");
  expect_refused({header_message(kStep), tensor_message("sampled", tensor::DType::kU32, {3}, 12)},
                 "does not match the step");
  expect_refused({header_message(kStep), tensor_message(std::string(5000, 'n'), tensor::DType::kU32, {3}, 12)},
                 "does not match the step");
  expect_refused({header_message(StepHeader{9, {{1, 60, 5}}}), hidden3()}, "data link:");  // past max_seq_len
  expect_refused({data_message("{\"v\":2,\"type\":\"ping\",\"nonce\":1}")}, "got a data message");
}

TEST(DataSteps, AStepCutShortIsTheLinksError) {
  StepMessage got;
  Status st = recv_from({header_message(kStep)}, got);
  EXPECT_EQ(st.code(), StatusCode::kUnavailable) << st.to_string();
}

}  // namespace
}  // namespace cml::pipeline
