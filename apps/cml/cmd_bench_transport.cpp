// `cml bench transport`: handshake latency, 1 KiB round trips (in-process and TCP loopback) and 1 MiB
// channel throughput per AEAD suite, each beside the bare AEAD seal throughput of the same buffers
// measured in the same run (the bound the channel is judged against).
#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>
#include <vector>

#include "apps/cml/commands.h"
#include "attest/mock.h"
#include "crypto/aead.h"
#include "crypto/random.h"
#include "net/secure_channel.h"

namespace cml::app {
namespace {

using Clock = std::chrono::steady_clock;
using net::SecureChannel;

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}
// The nearest-rank percentile (q in [0, 1]).
double percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(q * double(v.size())))];
}
// CPU time of the calling thread, in seconds.
double thread_cpu_s() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
}

// Wall-clock rate, and the rate the same work reaches when every thread has a core of its own
// (bytes / the busiest thread's CPU time) — independent of other load on the machine.
struct Rate {
  double wall_gbps = 0;
  double cpu_gbps = 0;
};

double us_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
}
Deadline soon() {
  return Deadline::after(std::chrono::seconds(60));
}

struct Sides {
  std::shared_ptr<attest::Provider> client_provider =
      std::make_shared<attest::MockProvider>(attest::mock_measurements("bench-client"));
  std::shared_ptr<attest::Provider> server_provider =
      std::make_shared<attest::MockProvider>(attest::mock_measurements("bench-server"));
  net::ChannelConfig client, server;
  explicit Sides(crypto::AeadSuite suite = crypto::AeadSuite::kAes256Gcm) {
    client.provider = client_provider.get();
    client.verifiers = attest::mock_verifier_set();
    client.peer_policy = attest::mock_policy("bench-server");
    client.suites = {suite};
    server = client;
    server.provider = server_provider.get();
    server.peer_policy = attest::mock_policy("bench-client");
  }
};

struct Pair {
  std::unique_ptr<SecureChannel> initiator, responder;
};

Result<Pair> establish(std::unique_ptr<net::Stream> a, std::unique_ptr<net::Stream> b, const Sides& s) {
  Result<std::unique_ptr<SecureChannel>> resp = internal_error("not run");
  std::thread t([&] { resp = SecureChannel::accept(std::move(b), s.server); });
  auto init = SecureChannel::connect(std::move(a), s.client);
  t.join();
  if (!init.is_ok()) return init.status();
  if (!resp.is_ok()) return resp.status();
  return Pair{std::move(init).value(), std::move(resp).value()};
}

Result<Pair> establish_pipe(const Sides& s) {
  auto pipe_a = net::make_pipe();
  auto& a = pipe_a.first;
  auto& b = pipe_a.second;
  return establish(std::move(a), std::move(b), s);
}

// Two CPUs this process may run on, or none when it may use only one.
std::optional<std::pair<int, int>> two_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return std::nullopt;
  int found[2] = {-1, -1};
  for (int c = 0, n = 0; c < CPU_SETSIZE && n < 2; ++c) {
    if (CPU_ISSET(c, &set)) found[n++] = c;
  }
  if (found[1] < 0) return std::nullopt;
  return std::pair{found[0], found[1]};
}

// Pins the calling thread to one CPU until destroyed, then gives it back its CPUs.
class PinThread {
 public:
  explicit PinThread(std::optional<int> cpu) {
    if (!cpu || pthread_getaffinity_np(pthread_self(), sizeof(saved_), &saved_) != 0) return;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(*cpu, &one);
    pinned_ = pthread_setaffinity_np(pthread_self(), sizeof(one), &one) == 0;
  }
  ~PinThread() {
    if (pinned_) (void)pthread_setaffinity_np(pthread_self(), sizeof(saved_), &saved_);
  }
  PinThread(const PinThread&) = delete;
  PinThread& operator=(const PinThread&) = delete;

 private:
  cpu_set_t saved_{};
  bool pinned_ = false;
};

// `count` handshakes, back to back, each the initiator's connect() (ClientHello to installed keys)
// against one responder thread accepting from an in-memory listener as a stage's accept loop does;
// with `cpus`, the initiator runs on the first and the responder on the second. The first is left out
// (warm-up).
Result<std::vector<double>> handshake_series(const Sides& sides, int count, std::optional<std::pair<int, int>> cpus) {
  std::vector<double> hs;
  net::PipeListener listener("bench");
  Status server_st;
  std::thread server([&] {
    PinThread pin(cpus ? std::optional<int>(cpus->second) : std::nullopt);
    for (int k = 0; k < count; ++k) {
      auto s = listener.accept(soon());
      if (!s.is_ok()) {
        server_st = s.status();
        return;
      }
      auto ch = SecureChannel::accept(std::move(s).value(), sides.server);
      if (!ch.is_ok()) {
        server_st = ch.status();
        return;
      }
    }
  });
  PinThread pin(cpus ? std::optional<int>(cpus->first) : std::nullopt);
  Status st;
  for (int k = 0; k < count && server_st.is_ok(); ++k) {
    auto stream = listener.connect();
    if (!stream.is_ok()) break;
    const auto t0 = Clock::now();
    auto ch = SecureChannel::connect(std::move(stream).value(), sides.client);
    const double us = us_since(t0);
    if (!ch.is_ok()) {
      st = ch.status().with_context("handshake");
      listener.close();
      break;
    }
    if (k > 0 || count == 1) hs.push_back(us);
  }
  server.join();
  if (!st.is_ok()) return st;
  if (!server_st.is_ok()) return server_st.with_context("handshake (responder)");
  return hs;
}

// Median round trip of a 1 KiB tensor (F32 [256]) echoed by the responder on its own thread.
Result<double> rtt_1k(Pair& p, int iterations) {
  std::vector<float> v(256, 0.5f);
  const uint32_t shape[] = {256};
  const net::TensorView t{"x", tensor::DType::kF32, shape,
                          ByteSpan(reinterpret_cast<const uint8_t*>(v.data()), v.size() * 4)};
  std::thread echo([&] {
    net::Message m;
    for (;;) {
      if (!p.responder->recv(m, soon()).is_ok() || m.kind != net::Message::Kind::kTensor) return;
      if (!p.responder->send_tensor(m.tensor.view(), soon()).is_ok()) return;
    }
  });
  std::vector<double> samples;
  net::Message m;
  Status st;
  for (int k = 0; k < iterations + 50 && st.is_ok(); ++k) {
    const auto t0 = Clock::now();
    st = p.initiator->send_tensor(t, soon());
    if (st.is_ok()) st = p.initiator->recv(m, soon());
    if (k >= 50) samples.push_back(us_since(t0));  // after warm-up
  }
  (void)p.initiator->shutdown(soon());
  echo.join();
  if (!st.is_ok()) return st;
  return median(samples);
}

// One-way channel throughput of 1 MiB tensors, sender and receiver on their own threads.
Result<Rate> channel_gbps(crypto::AeadSuite suite, int count) {
  Sides s(suite);
  CML_ASSIGN_OR_RETURN(Pair p, establish_pipe(s));
  Bytes data = crypto::random_bytes(1 << 20);
  const uint32_t shape[] = {1u << 20};
  const net::TensorView t{"activations", tensor::DType::kU8, shape, data};
  for (int k = 0; k < 8; ++k) {  // warm-up: buffers reach their final size
    CML_RETURN_IF_ERROR(p.initiator->send_tensor(t, soon()));
    net::Message m;
    CML_RETURN_IF_ERROR(p.responder->recv(m, soon()));
  }
  Status send_st;
  double send_cpu = 0;
  const auto t0 = Clock::now();
  std::thread sender([&] {
    const double c0 = thread_cpu_s();
    for (int k = 0; k < count && send_st.is_ok(); ++k) send_st = p.initiator->send_tensor(t, soon());
    send_cpu = thread_cpu_s() - c0;
  });
  net::Message m;
  Status st;
  const double c0 = thread_cpu_s();
  for (int k = 0; k < count && st.is_ok(); ++k) st = p.responder->recv(m, soon());
  const double recv_cpu = thread_cpu_s() - c0;
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  sender.join();
  CML_RETURN_IF_ERROR(send_st);
  CML_RETURN_IF_ERROR(st);
  const double bytes = double(count) * double(1 << 20);
  return Rate{bytes / secs / 1e9, bytes / std::max(send_cpu, recv_cpu) / 1e9};
}

// Bare AEAD seal of the same 1 MiB buffers (one thread).
Result<Rate> seal_gbps(crypto::AeadSuite suite, int count) {
  CML_ASSIGN_OR_RETURN(crypto::Aead aead, crypto::Aead::create(suite, crypto::random_bytes(32)));
  Bytes data = crypto::random_bytes(1 << 20);
  Bytes out(data.size() + crypto::kAeadTagSize);
  uint8_t nonce[12] = {};
  uint8_t aad[45] = {};
  for (int k = 0; k < 8; ++k) CML_RETURN_IF_ERROR(aead.seal(nonce, aad, data, out));
  const auto t0 = Clock::now();
  const double c0 = thread_cpu_s();
  for (int k = 0; k < count; ++k) {
    nonce[11] = uint8_t(k);
    CML_RETURN_IF_ERROR(aead.seal(nonce, aad, data, out));
  }
  const double cpu = thread_cpu_s() - c0;
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  const double bytes = double(count) * double(1 << 20);
  return Rate{bytes / secs / 1e9, bytes / cpu / 1e9};
}

std::string bench_transport(const BenchOptions& opts, nlohmann::json& out) {
  const int handshakes = opts.quick ? 5 : 200;
  const int rtts = opts.quick ? 100 : 5000;
  const int mibs = opts.quick ? 32 : 1024;
  const bool all = opts.only.empty();
  Sides sides;

  // Handshakes against a running server, in rounds that alternate two placements: the two parties
  // on CPUs of their own (two TEEs never share a CPU; the figure), and left to the scheduler, which
  // on a 2-vCPU VM often keeps both threads on one vCPU for a whole run (docs/notes/net.md).
  if (all || opts.only == "handshake") {
    const auto cpus = two_cpus();
    std::vector<double> pinned, unpinned;
    const int rounds = opts.quick ? 1 : 4;
    for (int r = 0; r < rounds; ++r) {
      // Unpinned first, so that threads started on the way (the key stock's) keep every CPU.
      auto u = handshake_series(sides, handshakes / rounds, std::nullopt);
      if (!u.is_ok()) return u.status().to_string();
      unpinned.insert(unpinned.end(), u->begin(), u->end());
      if (!cpus) continue;
      auto p = handshake_series(sides, handshakes / rounds, cpus);
      if (!p.is_ok()) return p.status().to_string();
      pinned.insert(pinned.end(), p->begin(), p->end());
    }
    const auto& main = cpus ? pinned : unpinned;
    out["handshake_us"] = median(main);
    out["handshake_us_p10_p90"] = {percentile(main, 0.1), percentile(main, 0.9)};
    out["handshake_parties_pinned"] = cpus.has_value();
    out["handshake_us_unpinned"] = median(unpinned);
  }

  if (all || opts.only == "rtt") {
    auto inproc = establish_pipe(sides);
    if (!inproc.is_ok()) return "handshake: " + inproc.status().to_string();
    auto rtt_in = rtt_1k(*inproc, rtts);
    if (!rtt_in.is_ok()) return "in-process RTT: " + rtt_in.status().to_string();
    out["rtt_1k_us_inproc"] = *rtt_in;

    auto listener = net::listen(net::parse_endpoint("tcp://127.0.0.1:0").value());
    if (!listener.is_ok()) return "listen: " + listener.status().to_string();
    std::unique_ptr<net::Stream> server;
    std::thread acc([&] {
      auto s = (*listener)->accept(soon());
      if (s.is_ok()) server = std::move(s).value();
    });
    auto client = net::connect(net::parse_endpoint((*listener)->local_endpoint()).value(), soon());
    acc.join();
    if (!client.is_ok() || !server) return "tcp connect failed";
    auto tcp = establish(std::move(client).value(), std::move(server), sides);
    if (!tcp.is_ok()) return "tcp handshake: " + tcp.status().to_string();
    auto rtt_tcp = rtt_1k(*tcp, rtts);
    if (!rtt_tcp.is_ok()) return "TCP RTT: " + rtt_tcp.status().to_string();
    out["rtt_1k_us_tcp"] = *rtt_tcp;
  }

  // Seal bound and channel throughput alternate in rounds, so both see the same machine load; the
  // figures are the medians over rounds.
  const int rounds = opts.quick ? 2 : 8;
  if (all || opts.only == "throughput") {
    for (auto [suite, name] :
         {std::pair{crypto::AeadSuite::kAes256Gcm, "aes"}, std::pair{crypto::AeadSuite::kChaCha20Poly1305, "chacha"}}) {
      std::vector<double> seals, chans, seals_cpu, chans_cpu;
      for (int r = 0; r < rounds; ++r) {
        auto seal = seal_gbps(suite, mibs / rounds);
        auto chan = channel_gbps(suite, mibs / rounds);
        if (!seal.is_ok()) return seal.status().to_string();
        if (!chan.is_ok()) return chan.status().to_string();
        seals.push_back(seal->wall_gbps);
        chans.push_back(chan->wall_gbps);
        seals_cpu.push_back(seal->cpu_gbps);
        chans_cpu.push_back(chan->cpu_gbps);
      }
      const std::string n = name;
      out["throughput_1m_gbps_" + n] = median(chans);
      out["seal_1m_gbps_" + n] = median(seals);
      out["throughput_to_seal_" + n] = median(chans) / median(seals);
      // The same runs by CPU time (one core per thread, whatever else the machine is doing).
      out["throughput_1m_gbps_" + n + "_cpu"] = median(chans_cpu);
      out["seal_1m_gbps_" + n + "_cpu"] = median(seals_cpu);
      out["throughput_to_seal_" + n + "_cpu"] = median(chans_cpu) / median(seals_cpu);
    }
  }
  out["samples"] = {{"handshakes", handshakes}, {"round_trips", rtts}, {"mib_per_suite", mibs}};
  out["hardware_threads"] = std::thread::hardware_concurrency();
  // Context for the figures: other work competing for the cores during this run.
  if (FILE* f = std::fopen("/proc/loadavg", "r")) {
    double l1 = 0;
    if (std::fscanf(f, "%lf", &l1) == 1) out["loadavg_1m"] = l1;
    std::fclose(f);
  }
  return {};
}

const BenchRegistrar kRegistrar(
    "transport", "SecureChannel handshake, 1 KiB round trips (in-process, TCP), 1 MiB throughput vs bare AEAD seal",
    bench_transport, {"handshake", "rtt", "throughput"});

}  // namespace
}  // namespace cml::app
