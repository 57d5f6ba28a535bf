// `cml demo` (interim): an attested, encrypted exchange between two processes. The demo starts a copy
// of this binary as `cml demo-peer` (a stand-in for a TEE stage), connects to it over TCP loopback,
// runs the mutual-attestation handshake with mock evidence and pinned measurements, exchanges tensors,
// and prints what it verified and what it measured. The pipeline's multi-stage demo replaces it.
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "apps/cml/commands.h"
#include "attest/mock.h"
#include "net/secure_channel.h"

extern char** environ;

namespace cml::app {
namespace {

constexpr std::string_view kClientLabel = "cml-demo-orchestrator";
constexpr std::string_view kPeerLabel = "cml-demo-stage";

using Clock = std::chrono::steady_clock;

net::ChannelConfig demo_config(attest::Provider* self, std::string_view expected_peer, crypto::AeadSuite suite) {
  net::ChannelConfig c;
  c.provider = self;
  c.verifiers = attest::mock_verifier_set();
  c.peer_policy = attest::mock_policy(expected_peer);
  c.suites = {suite, suite == crypto::AeadSuite::kAes256Gcm ? crypto::AeadSuite::kChaCha20Poly1305
                                                            : crypto::AeadSuite::kAes256Gcm};
  c.handshake_timeout = std::chrono::seconds(10);
  return c;
}

int fail(const char* what, const Status& st) {
  std::fprintf(stderr, "cml demo: %s: %s\n", what, st.to_string().c_str());
  return 1;
}

// ---- the peer (child process) ----
int run_peer(const std::string& listen_at, int connections) {
  auto ep = net::parse_endpoint(listen_at);
  if (!ep.is_ok()) return fail("peer endpoint", ep.status());
  auto listener = net::listen(*ep);
  if (!listener.is_ok()) return fail("peer listen", listener.status());
  std::printf("LISTENING %s\n", (*listener)->local_endpoint().c_str());
  std::fflush(stdout);
  attest::MockProvider provider(attest::mock_measurements(kPeerLabel));
  for (int conn = 0; conn < connections; ++conn) {
    auto stream = (*listener)->accept(Deadline::after(std::chrono::seconds(30)));
    if (!stream.is_ok()) return fail("peer accept", stream.status());
    auto ch = net::SecureChannel::accept(std::move(stream).value(),
                                         demo_config(&provider, kClientLabel, crypto::AeadSuite::kAes256Gcm));
    if (!ch.is_ok()) return fail("peer handshake", ch.status());
    net::Message m;
    for (;;) {
      Status st = (*ch)->recv(m, Deadline::after(std::chrono::seconds(30)));
      if (!st.is_ok()) return fail("peer recv", st);
      if (m.kind == net::Message::Kind::kShutdown) break;
      if (m.kind == net::Message::Kind::kTensor && m.tensor.dtype == tensor::DType::kF32) {
        // The "stage" computes something checkable: every element doubled.
        for (size_t i = 0; i + 4 <= m.tensor.data.size(); i += 4) {
          float v;
          std::memcpy(&v, m.tensor.data.data() + i, 4);
          v *= 2;
          std::memcpy(m.tensor.data.data() + i, &v, 4);
        }
        st = (*ch)->send_tensor(m.tensor.view(), Deadline::after(std::chrono::seconds(30)));
        if (!st.is_ok()) return fail("peer send", st);
      }
    }
    Status st = (*ch)->shutdown(Deadline::after(std::chrono::seconds(5)));
    if (!st.is_ok()) return fail("peer shutdown", st);
  }
  return 0;
}

// Reads one line from fd within the deadline.
Result<std::string> read_line(int fd, Deadline d) {
  std::string line;
  while (line.size() < 256) {
    pollfd p{fd, POLLIN, 0};
    const int ms = int(std::chrono::duration_cast<std::chrono::milliseconds>(d.remaining()).count());
    if (ms <= 0 || ::poll(&p, 1, ms) <= 0) return timeout_error("peer did not report its endpoint");
    char c;
    const ssize_t n = ::read(fd, &c, 1);
    if (n <= 0) return unavailable("peer exited before reporting its endpoint");
    if (c == '\n') return line;
    line.push_back(c);
  }
  return protocol_error("peer output line too long");
}

std::string hex_prefix(ByteSpan b, size_t n = 8) {
  return to_hex(b.first(std::min(n, b.size()))) + "…";
}

// ---- the demo (parent process) ----
int run_demo(int round_trips, const std::string& suite_name) {
  auto suite = crypto::parse_aead_suite(suite_name);
  if (!suite.is_ok()) return fail("--suite", suite.status());
  int out_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) return fail("pipe", internal_error(std::strerror(errno)));
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, out_pipe[1], STDOUT_FILENO);
  std::string self = "/proc/self/exe";
  std::vector<std::string> args = {"cml", "demo-peer", "--listen", "tcp://127.0.0.1:0", "--connections", "2"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, self.c_str(), &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  ::close(out_pipe[1]);
  if (rc != 0) return fail("spawn peer", internal_error(std::strerror(rc)));
  auto reap = [&] {
    int status = 0;
    ::waitpid(pid, &status, 0);
    ::close(out_pipe[0]);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
  };
  auto line = read_line(out_pipe[0], Deadline::after(std::chrono::seconds(10)));
  if (!line.is_ok() || line->rfind("LISTENING ", 0) != 0) {
    ::kill(pid, SIGKILL);
    reap();
    return fail("peer start", line.is_ok() ? protocol_error("unexpected peer output: " + *line) : line.status());
  }
  const std::string endpoint = line->substr(10);
  std::printf("cml demo: started peer process %d (cml demo-peer) listening on %s\n", int(pid), endpoint.c_str());

  attest::MockProvider provider(attest::mock_measurements(kClientLabel));
  const net::ChannelConfig cfg = demo_config(&provider, kPeerLabel, *suite);
  // Two sessions: the first pays both processes' one-time library initialisation; the second is timed
  // as a steady-state handshake and carries the exchange.
  double hs_us[2] = {0, 0};
  std::unique_ptr<net::SecureChannel> session;
  for (int conn = 0; conn < 2; ++conn) {
    auto stream = net::connect_with_retry(net::parse_endpoint(endpoint).value(), net::RetryPolicy{},
                                          Deadline::after(std::chrono::seconds(10)));
    if (!stream.is_ok()) {
      ::kill(pid, SIGKILL);
      reap();
      return fail("connect", stream.status());
    }
    const auto t0 = Clock::now();
    auto ch = net::SecureChannel::connect(std::move(stream).value(), cfg);
    hs_us[conn] = std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
    if (!ch.is_ok()) {
      ::kill(pid, SIGKILL);
      reap();
      return fail("handshake", ch.status());
    }
    session = std::move(ch).value();
    if (conn == 0) {
      net::Message bye;
      Status st = session->shutdown(Deadline::after(std::chrono::seconds(5)));
      if (st.is_ok()) st = session->recv(bye, Deadline::after(std::chrono::seconds(5)));
      if (!st.is_ok()) {
        reap();
        return fail("first session shutdown", st);
      }
    }
  }
  auto& c = *session;
  const attest::Claims& peer = *c.peer_claims();
  std::printf("\nverified:\n");
  std::printf("  peer evidence type     %s (development backend: documents are not signed)\n",
              std::string(attest::evidence_type_name(peer.type)).c_str());
  for (const auto& [name, expected] : cfg.peer_policy.expected_measurements) {
    std::printf("  measurement %-10s %s matches the pinned value\n", name.c_str(),
                hex_prefix(peer.measurements.at(name)).c_str());
  }
  std::printf("  key binding            peer's X25519 key and a nonce derived from ours are inside its evidence\n");
  std::printf("  key confirmation       both Finished MACs verified (same keys on both sides)\n");
  std::printf("  AEAD suite             %s\n", std::string(crypto::aead_suite_name(c.suite())).c_str());
  std::printf("  session id             %s\n", hex_prefix(c.session_id()).c_str());

  std::vector<float> values(256);
  for (size_t i = 0; i < values.size(); ++i) values[i] = float(i) * 0.5f;
  const uint32_t shape[] = {1, 256};
  const net::TensorView tv{"activations", tensor::DType::kF32, shape,
                           ByteSpan(reinterpret_cast<const uint8_t*>(values.data()), values.size() * 4)};
  std::vector<double> rtts;
  net::Message m;
  bool correct = true;
  for (int k = 0; k < round_trips; ++k) {
    const auto s = Clock::now();
    Status st = c.send_tensor(tv, Deadline::after(std::chrono::seconds(10)));
    if (st.is_ok()) st = c.recv(m, Deadline::after(std::chrono::seconds(10)));
    if (!st.is_ok()) {
      reap();
      return fail("exchange", st);
    }
    rtts.push_back(std::chrono::duration<double, std::micro>(Clock::now() - s).count());
    for (size_t i = 0; i < values.size() && correct; ++i) {
      float v;
      std::memcpy(&v, m.tensor.data.data() + 4 * i, 4);
      correct = m.kind == net::Message::Kind::kTensor && v == values[i] * 2;
    }
  }
  Status st = c.shutdown(Deadline::after(std::chrono::seconds(5)));
  if (st.is_ok()) st = c.recv(m, Deadline::after(std::chrono::seconds(5)));
  const int peer_exit = reap();
  std::sort(rtts.begin(), rtts.end());
  std::printf("\nmeasured:\n");
  std::printf(
      "  handshake              %.0f us (mutual mock attestation, TCP loopback, two processes;\n"
      "                         the first one, with one-time library start-up, took %.0f us)\n",
      hs_us[1], hs_us[0]);
  std::printf("  1 KiB tensor RTT       %.1f us median over %d round trips (min %.1f, max %.1f)\n",
              rtts[rtts.size() / 2], round_trips, rtts.front(), rtts.back());
  std::printf("  peer's results         %s (each element doubled by the peer)\n", correct ? "correct" : "WRONG");
  std::printf("  clean shutdown         %s; peer exit status %d\n",
              st.is_ok() && m.kind == net::Message::Kind::kShutdown ? "both directions" : st.to_string().c_str(),
              peer_exit);
  return correct && st.is_ok() && peer_exit == 0 ? 0 : 1;
}

const CommandRegistrar kDemo("demo", [](CLI::App& root) {
  auto* cmd = root.add_subcommand("demo", "Attested encrypted exchange between two processes (mock attestation)");
  auto rounds = std::make_shared<int>(1000);
  auto suite = std::make_shared<std::string>("aes-256-gcm");
  cmd->add_option("--round-trips", *rounds, "Tensor round trips to time")->capture_default_str();
  cmd->add_option("--suite", *suite, "Preferred AEAD: aes-256-gcm or chacha20-poly1305")->capture_default_str();
  cmd->callback([rounds, suite] { set_exit_code(run_demo(std::max(1, *rounds), *suite)); });
});

const CommandRegistrar kDemoPeer("demo-peer", [](CLI::App& root) {
  auto* cmd = root.add_subcommand("demo-peer", "Peer process of `cml demo` (internal)");
  cmd->group("");  // hidden from --help
  auto at = std::make_shared<std::string>("tcp://127.0.0.1:0");
  auto connections = std::make_shared<int>(1);
  cmd->add_option("--listen", *at, "Endpoint to listen on");
  cmd->add_option("--connections", *connections, "Sessions to serve before exiting");
  cmd->callback([at, connections] { set_exit_code(run_peer(*at, std::max(1, *connections))); });
});

}  // namespace
}  // namespace cml::app
