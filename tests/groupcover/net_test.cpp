// GroupCover over the real transport (SecureChannel on loopback TCP): two TEE stages share one worker,
// a worker that dies mid-request gives a clear error and the next request succeeds once it is back,
// and the RANK / WORLD_SIZE / WORKER launch convention.
#include <gtest/gtest.h>

#include <map>
#include <thread>

#include "attest/mock.h"
#include "groupcover/backend.h"
#include "groupcover/net_link.h"
#include "groupcover/offload.h"
#include "groupcover/protocol.h"
#include "net/stream.h"
#include "test_util.h"

namespace cml::groupcover {
namespace {

using testing::random_matrix;

struct Model {
  std::vector<float> a = random_matrix(64, 96, 1, 0.1f), b = random_matrix(96, 64, 2, 0.1f);
  ObfuscatedModel om;
  Model() {
    std::vector<NamedMatrix> nm = {{"a", {a.data(), tensor::DType::kF32, 64, 96, false}, nullptr},
                                   {"b", {b.data(), tensor::DType::kF32, 96, 64, false}, nullptr}};
    om = *obfuscate_model(nm, {});
  }
  model::LinearPart part(bool first) const {
    model::LinearPart p;
    p.name = first ? "a" : "b";
    p.out_features = first ? 64 : 96;
    p.in_features = first ? 96 : 64;
    p.weight = first ? a.data() : b.data();
    return p;
  }
};

// A worker-side channel link and the TEE-side raw channel over an in-memory pipe (handshake as in
// worker_connector / WorkerServer: one-way, the worker presents the mock document).
struct LinkOverPipe {
  attest::MockProvider provider{attest::mock_measurements(kWorkerIdentity)};
  std::unique_ptr<net::SecureChannel> tee;
  std::unique_ptr<MessageLink> worker;
  LinkOverPipe() {
    auto pipe = net::make_pipe(8u << 20);
    net::ChannelConfig ci, cr;
    ci.mode = cr.mode = net::HandshakeMode::kOneWay;
    ci.verifiers = attest::mock_verifier_set();
    ci.peer_policy = attest::mock_policy(kWorkerIdentity);
    ci.peer_policy.allow_debug = true;
    cr.provider = &provider;
    Result<std::unique_ptr<net::SecureChannel>> responder = internal_error("not run");
    std::thread t([&] { responder = net::SecureChannel::accept(std::move(pipe.second), cr); });
    auto initiator = net::SecureChannel::connect(std::move(pipe.first), ci);
    t.join();
    EXPECT_TRUE(initiator.is_ok() && responder.is_ok());
    if (!initiator.is_ok() || !responder.is_ok()) return;
    tee = std::move(initiator).value();
    worker = make_channel_link(std::move(responder).value());
  }
  // Sends `data` as a raw byte tensor (what a link message with a payload is on the wire).
  Status send_raw(const Bytes& data, tensor::DType dtype = tensor::DType::kU8) {
    const uint32_t shape[1] = {uint32_t(data.size() / tensor::dtype_size(dtype))};
    net::TensorView v;
    v.name = "";
    v.dtype = dtype;
    v.shape = shape;
    v.data = {data.data(), data.size()};
    return tee->send_tensor(v, Deadline::after(std::chrono::seconds(20)));
  }
};

TEST(GroupCoverLink, MessagesRoundTripInOneRecordEach) {
  LinkOverPipe p;
  ASSERT_TRUE(p.tee && p.worker);
  std::unique_ptr<MessageLink> tee = make_channel_link(std::move(p.tee));
  const Deadline d = Deadline::after(std::chrono::seconds(20));
  const Bytes header = {0x47, 0x43, 6, 1, 2, 3, 4, 5};
  for (size_t n : {size_t(0), size_t(1), size_t(768), size_t(300'000)}) {  // the last spans several records
    std::vector<float> payload(n);
    for (size_t i = 0; i < n; ++i) payload[i] = float(i) * 0.25f - 3.0f;
    std::thread sender([&] { ASSERT_TRUE(tee->send(header, payload, d).is_ok()); });
    LinkMessage m;
    ASSERT_TRUE(p.worker->recv(m, n, d).is_ok()) << n;
    sender.join();
    EXPECT_EQ(m.header, header);
    EXPECT_EQ(m.payload, payload);
  }
  // A payload above the receiver's bound is refused.
  std::vector<float> big(10, 1.0f);
  ASSERT_TRUE(tee->send(header, big, d).is_ok());
  LinkMessage m;
  EXPECT_EQ(p.worker->recv(m, 9, d).code(), StatusCode::kResourceExhausted);
}

TEST(GroupCoverLink, MessagesWhoseSizesDoNotAddUpAreRefused) {
  const Deadline d = Deadline::after(std::chrono::seconds(20));
  auto message = [](uint64_t count, uint32_t header_len, size_t header_bytes, size_t payload_bytes) {
    Bytes b(12 + header_bytes + payload_bytes, 0x11);
    store_u64_be(b.data(), count);
    store_u32_be(b.data() + 8, header_len);
    return b;
  };
  const std::vector<Bytes> bad = {
      message(2, 3, 3, 4),          // payload shorter than the count says
      message(1, 3, 3, 8),          // longer
      message(1, 4, 3, 4),          // header length past the data
      message(0, 3, 3, 0),          // a payload message without payload
      message(1, 2, 2, 4),          // header too short to hold magic and type
      message(1, 0xffffffff, 3, 4)  // header length overflow
  };
  for (const Bytes& b : bad) {
    LinkOverPipe p;
    ASSERT_TRUE(p.tee && p.worker);
    ASSERT_TRUE(p.send_raw(b).is_ok());
    LinkMessage m;
    EXPECT_EQ(p.worker->recv(m, 1 << 20, d).code(), StatusCode::kProtocol);
  }
  {  // The former two-record form's tensor (dtype F32) is not a message.
    LinkOverPipe p;
    ASSERT_TRUE(p.tee && p.worker);
    ASSERT_TRUE(p.send_raw(Bytes(16, 0), tensor::DType::kF32).is_ok());
    LinkMessage m;
    EXPECT_EQ(p.worker->recv(m, 1 << 20, d).code(), StatusCode::kProtocol);
  }
  {  // A well-formed one is accepted.
    LinkOverPipe p;
    ASSERT_TRUE(p.tee && p.worker);
    ASSERT_TRUE(p.send_raw(message(1, 3, 3, 4)).is_ok());
    LinkMessage m;
    ASSERT_TRUE(p.worker->recv(m, 1, d).is_ok());
    EXPECT_EQ(m.header.size(), 3u);
    EXPECT_EQ(m.payload.size(), 1u);
  }
}

TEST(GroupCoverNet, ListeningOnABusyPortIsAClearErrorNotACrash) {
  WorkerService service;
  auto first = WorkerServer::start("tcp://127.0.0.1:0", service);
  ASSERT_TRUE(first.is_ok()) << first.status().to_string();
  auto second = WorkerServer::start((*first)->local_endpoint(), service);  // the port is taken
  ASSERT_FALSE(second.is_ok());
  EXPECT_EQ(second.status().code(), StatusCode::kUnavailable) << second.status().to_string();
}

TEST(GroupCoverNet, TwoStagesShareOneWorkerOverTcp) {
  Model m;
  WorkerService service;
  auto server = WorkerServer::start("tcp://127.0.0.1:0", service);
  ASSERT_TRUE(server.is_ok()) << server.status().to_string();
  auto connect = worker_connector((*server)->local_endpoint());
  ASSERT_TRUE(connect.is_ok());
  BackendConfig c;
  c.freivalds = true;
  GroupCoverBackend s1(c, m.om.secrets, m.om.worker, *connect), s2(c, m.om.secrets, m.om.worker, *connect);
  auto pa = m.part(true), pb = m.part(false);
  auto i1 = s1.add(std::span<const model::LinearPart>(&pa, 1));
  auto i2 = s2.add(std::span<const model::LinearPart>(&pb, 1));
  ASSERT_TRUE(s1.finalize().is_ok());
  ASSERT_TRUE(s2.finalize().is_ok());
  std::atomic<int> bad{0};
  auto stage = [&](GroupCoverBackend& be, model::LinearId id, const std::vector<float>& w, int64_t in, int64_t out,
                   uint64_t seed) {
    for (int i = 0; i < 100; ++i) {
      auto x = random_matrix(4, in, seed + i);
      std::vector<float> y(size_t(4 * out));
      if (!be.run(id, x.data(), 4, y.data()).is_ok() ||
          testing::max_row_rel_error(y.data(), testing::reference(w, nullptr, x.data(), 4, out, in), 4, out) > 1e-4)
        ++bad;
    }
  };
  std::thread t1(stage, std::ref(s1), *i1, std::cref(m.a), 96, 64, 100);
  std::thread t2(stage, std::ref(s2), *i2, std::cref(m.b), 64, 96, 200);
  t1.join();
  t2.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(service.stats().uploads, 1u);
  EXPECT_EQ(service.stats().requests, 200u);
}

TEST(GroupCoverNet, WorkerKilledMidRequestThenBack) {
  Model m;
  auto service = std::make_unique<WorkerService>();
  auto server = WorkerServer::start("tcp://127.0.0.1:0", *service);
  ASSERT_TRUE(server.is_ok());
  const std::string ep = (*server)->local_endpoint();
  std::atomic<bool> kill{false};
  WorkerServer* raw = server->get();
  service->set_on_request([&](const ComputeRequest&) {
    if (kill.exchange(false)) raw->crash();  // dies while this request is open
  });
  auto connect = worker_connector(ep);
  BackendConfig c;
  c.timeout = std::chrono::seconds(5);
  c.worker_label = ep;
  GroupCoverBackend be(c, m.om.secrets, m.om.worker, *connect);
  auto pa = m.part(true);
  auto id = be.add(std::span<const model::LinearPart>(&pa, 1));
  ASSERT_TRUE(be.finalize().is_ok());
  auto x = random_matrix(2, 96, 9);
  std::vector<float> y(128);
  ASSERT_TRUE(be.run(*id, x.data(), 2, y.data()).is_ok());
  kill = true;
  Status st = be.run(*id, x.data(), 2, y.data());
  server->reset();
  EXPECT_FALSE(st.is_ok());
  EXPECT_TRUE(st.code() == StatusCode::kUnavailable || st.code() == StatusCode::kTimeout) << st.to_string();
  EXPECT_NE(st.message().find("groupcover worker"), std::string::npos) << st.to_string();
  // Down: a clear UNAVAILABLE naming the worker.
  st = be.run(*id, x.data(), 2, y.data());
  EXPECT_EQ(st.code(), StatusCode::kUnavailable) << st.to_string();
  // Back on the same address (a fresh process would have no model: the backend re-uploads it).
  WorkerService fresh;
  auto again = WorkerServer::start(ep, fresh);
  ASSERT_TRUE(again.is_ok()) << again.status().to_string();
  ASSERT_TRUE(be.run(*id, x.data(), 2, y.data()).is_ok());
  EXPECT_LT(testing::max_row_rel_error(y.data(), testing::reference(m.a, nullptr, x.data(), 2, 64, 96), 2, 64), 1e-4);
  EXPECT_EQ(fresh.stats().uploads, 1u);
}

TEST(GroupCoverNet, LaunchEnvironmentConvention) {
  std::map<std::string, std::string> vars;
  EnvLookup env = [&](const char* n) -> std::optional<std::string> {
    auto it = vars.find(n);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
  EXPECT_EQ(worker_listen_from_env(env).status().code(), StatusCode::kNotFound);
  vars = {{"RANK", "1"}, {"WORLD_SIZE", "2"}, {"MASTER_PORT", "30000"}};
  EXPECT_EQ(*worker_listen_from_env(env), "tcp://127.0.0.1:30001");
  vars = {{"RANK", "0"}, {"WORLD_SIZE", "3"}, {"WORKER", "2"}, {"MASTER_ADDR", "10.0.0.5"}};
  EXPECT_EQ(*worker_address_from_env(env), "tcp://10.0.0.5:22224");
  vars["WORKER"] = "0";  // the prototype's bug: targeting its own rank
  EXPECT_EQ(worker_address_from_env(env).status().code(), StatusCode::kInvalidArgument);
  vars["WORKER"] = "3";
  EXPECT_FALSE(worker_address_from_env(env).is_ok());
  vars = {{"RANK", "x"}, {"WORLD_SIZE", "2"}};
  EXPECT_FALSE(worker_listen_from_env(env).is_ok());
  vars = {{"RANK", "0"}, {"WORLD_SIZE", "2"}};
  EXPECT_FALSE(worker_listen_from_env(env).is_ok());
}

}  // namespace
}  // namespace cml::groupcover
