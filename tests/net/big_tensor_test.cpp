// A 1 GiB tensor crosses a channel whose records are at most 4 MiB: one copy in, one copy out.
#include <gtest/gtest.h>

#include <cstring>
#include <thread>

#include "net/secure_channel.h"
#include "net_test_util.h"

namespace cml::net {
namespace {

TEST(BigTensor, OneGiBInBoundedChunks) {
  auto c = testing::mock_side("client", "server");
  auto s = testing::mock_side("server", "client");
  c.config.suites = {crypto::AeadSuite::kAes256Gcm};
  auto pipe_a = make_pipe(8u << 20);
  auto& a = pipe_a.first;
  auto& b = pipe_a.second;
  auto p = testing::handshake(std::move(a), std::move(b), c.config, s.config);
  NET_ASSERT_OK(p.initiator);
  NET_ASSERT_OK(p.responder);
  auto& tx = **p.initiator;
  auto& rx = **p.responder;

  constexpr size_t kSize = size_t{1} << 30;
  std::vector<uint64_t> words(kSize / 8);
  for (size_t k = 0; k < words.size(); ++k) words[k] = k * 0x9E3779B97F4A7C15ull;
  const ByteSpan data(reinterpret_cast<const uint8_t*>(words.data()), kSize);
  const uint32_t shape[] = {uint32_t(words.size())};

  Status send_status;
  std::thread sender([&] {
    send_status =
        tx.send_tensor({"weights", tensor::DType::kI64, shape, data}, Deadline::after(std::chrono::minutes(5)));
  });
  Message m;
  Status st = rx.recv(m, Deadline::after(std::chrono::minutes(5)));
  sender.join();
  NET_ASSERT_OK(send_status);
  NET_ASSERT_OK(st);
  ASSERT_EQ(m.kind, Message::Kind::kTensor);
  EXPECT_EQ(m.tensor.name, "weights");
  ASSERT_EQ(m.tensor.data.size(), kSize);
  EXPECT_EQ(std::memcmp(m.tensor.data.data(), data.data(), kSize), 0);
  // 1 GiB in records of at most 4 MiB: the header record plus ≥ 256 chunks, never a 1 GiB frame.
  EXPECT_GE(rx.stats().records_received, 257u);
  EXPECT_EQ(rx.stats().bytes_received, kSize + 16);  // + the 16-byte sub-header ("weights", 1 dim)
}

}  // namespace
}  // namespace cml::net
