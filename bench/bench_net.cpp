// Micro-benchmarks of the net module: handshake (mock attestation, in-memory pipe), record seal+open,
// 1 KiB round trip. End-to-end figures with their bounds: `cml bench transport --json`.
#include <benchmark/benchmark.h>

#include <thread>

#include "attest/mock.h"
#include "net/secure_channel.h"

namespace {

using namespace cml;
using namespace cml::net;

struct Sides {
  attest::MockProvider cp{attest::mock_measurements("c")}, sp{attest::mock_measurements("s")};
  ChannelConfig c, s;
  Sides() {
    c.provider = &cp;
    c.verifiers = attest::mock_verifier_set();
    c.peer_policy = attest::mock_policy("s");
    s = c;
    s.provider = &sp;
    s.peer_policy = attest::mock_policy("c");
  }
};

// Initiator and responder over a fresh pipe (responder on its own thread); null pair on failure.
std::pair<std::unique_ptr<SecureChannel>, std::unique_ptr<SecureChannel>> pipe_session(const Sides& sides,
                                                                                       size_t capacity) {
  auto ends = make_pipe(capacity);
  Result<std::unique_ptr<SecureChannel>> r = internal_error("");
  std::thread t([&] { r = SecureChannel::accept(std::move(ends.second), sides.s); });
  auto i = SecureChannel::connect(std::move(ends.first), sides.c);
  t.join();
  if (!i.is_ok() || !r.is_ok()) return {};
  return {std::move(i).value(), std::move(r).value()};
}

void BM_Handshake(benchmark::State& state) {
  Sides sides;
  for (auto _ : state) {
    if (!pipe_session(sides, 1 << 16).first) state.SkipWithError("handshake failed");
  }
}
BENCHMARK(BM_Handshake)->UseRealTime();

void BM_HandshakeCryptoOnly(benchmark::State& state) {
  // The cryptographic work of one side, without threads or I/O.
  for (auto _ : state) {
    auto kp = crypto::X25519KeyPair::generate();
    auto peer = crypto::X25519KeyPair::generate();
    auto ss = kp.derive(peer.public_key());
    crypto::Digest256 th{};
    auto ks = derive_key_schedule(ss->span(), th);
    benchmark::DoNotOptimize(ks);
  }
}
BENCHMARK(BM_HandshakeCryptoOnly);

}  // namespace

namespace {
void BM_X25519Generate(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(cml::crypto::X25519KeyPair::generate());
}
BENCHMARK(BM_X25519Generate);
void BM_X25519Derive(benchmark::State& state) {
  auto a = cml::crypto::X25519KeyPair::generate();
  auto b = cml::crypto::X25519KeyPair::generate();
  for (auto _ : state) benchmark::DoNotOptimize(a.derive(b.public_key()));
}
BENCHMARK(BM_X25519Derive);
void BM_KeySchedule(benchmark::State& state) {
  cml::Bytes ss(32, 7);
  cml::crypto::Digest256 th{};
  for (auto _ : state) benchmark::DoNotOptimize(cml::net::derive_key_schedule(ss, th));
}
BENCHMARK(BM_KeySchedule);
void BM_AeadCreate(benchmark::State& state) {
  cml::Bytes k(32, 7);
  for (auto _ : state) benchmark::DoNotOptimize(cml::crypto::Aead::create(cml::crypto::AeadSuite::kAes256Gcm, k));
}
BENCHMARK(BM_AeadCreate);
}  // namespace

namespace {
// One-way 1 MiB tensors through an established in-memory channel (sender on its own thread).
void BM_ChannelThroughput1M(benchmark::State& state) {
  Sides sides;
  sides.c.suites = {static_cast<cml::crypto::AeadSuite>(state.range(0))};
  auto session = pipe_session(sides, 4u << 20);
  auto& i = session.first;
  auto& r = session.second;
  if (!i) return state.SkipWithError("handshake failed");
  cml::Bytes data(1 << 20, 0x42);
  const uint32_t shape[] = {1u << 20};
  const TensorView tv{"x", cml::tensor::DType::kU8, shape, data};
  Message m;
  for (auto _ : state) {
    std::thread s([&] {
      for (int k = 0; k < 64; ++k) (void)i->send_tensor(tv, cml::Deadline::never());
    });
    for (int k = 0; k < 64; ++k) (void)r->recv(m, cml::Deadline::never());
    s.join();
  }
  state.SetBytesProcessed(state.iterations() * 64 * (1 << 20));
}
BENCHMARK(BM_ChannelThroughput1M)->Arg(1)->Arg(2)->UseRealTime();
}  // namespace
