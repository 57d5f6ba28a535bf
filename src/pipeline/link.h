// Links: the message channels of the pipeline, and the Network that opens them.
//
// A Link carries Data messages (control JSON, ERR sentinels) and tensors in order, like
// net::SecureChannel — in production every Link *is* a SecureChannel (SecureNetwork), attested against
// the peer's manifest entry. PlainMemoryNetwork is an unencrypted, unattested in-process network for
// unit tests of the runtime logic only (it refuses any expectation that requires attestation).
//
// PeerExpectation says whom a link must reach: the peer's role (for messages) and the policy its
// evidence must satisfy (nullopt: the peer need not attest — the one-way mode for an unattested
// orchestrator).
//
// Threads: like SecureChannel — one sender and one receiver at a time; abort() from any thread.
// Network and LinkListener: connect() from any thread; one thread per accept(); close() from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "attest/attest.h"
#include "base/bytes.h"
#include "base/clock.h"
#include "base/status.h"
#include "net/secure_channel.h"
#include "net/tensor_codec.h"
#include "pipeline/manifest.h"

namespace cml::pipeline {

struct PeerExpectation {
  std::string role;                      // "stage 1", "orchestrator" — for error messages
  std::optional<attest::Policy> policy;  // nullopt: peer is not required to attest
};

struct LinkCounters {
  uint64_t frames_sent = 0, frames_received = 0;
  uint64_t bytes_sent = 0, bytes_received = 0;  // plaintext bytes
};

struct LinkInfo {
  std::string cipher;  // "aes-256-gcm", "chacha20-poly1305", "none (plain memory)"
  std::string peer;    // transport address
  // Measurement names the peer's evidence was checked against ("image", "pcr0"…); empty if unattested.
  std::vector<std::string> verified_measurements;
  std::string attestation;  // evidence type of the peer, or "none"
};

class Link {
 public:
  virtual ~Link() = default;
  virtual Status send_data(ByteSpan data, Deadline deadline) = 0;
  virtual Status send_tensor(const net::TensorView& t, Deadline deadline) = 0;
  // The sends until uncork() leave together (net::SecureChannel::cork): a message of several parts then
  // costs one write and one wake-up of the peer. uncork() is due after every cork(), also after a failed
  // send. Links that write nothing themselves ignore both.
  virtual void cork() {}
  virtual Status uncork(Deadline) { return ok_status(); }
  // Data, Tensor or Shutdown (the peer closed cleanly). UNAVAILABLE when the peer vanished.
  virtual Status recv(net::Message& out, Deadline deadline) = 0;
  // Clean close of the sending direction (best effort).
  virtual void close(Deadline deadline) = 0;
  virtual void abort() = 0;
  virtual LinkInfo info() const = 0;
  virtual LinkCounters counters() const = 0;
};

class LinkListener {
 public:
  virtual ~LinkListener() = default;
  // Accepts the next connection and runs the handshake; a peer failing `expect` is refused (the error
  // names the role and the failing check) and the listener stays usable.
  virtual Result<std::unique_ptr<Link>> accept(const PeerExpectation& expect, Deadline deadline) = 0;
  virtual std::string local_endpoint() const = 0;
  virtual void close() = 0;
};

class Network {
 public:
  virtual ~Network() = default;
  virtual Result<std::unique_ptr<LinkListener>> listen(const std::string& endpoint) = 0;
  virtual Result<std::unique_ptr<Link>> connect(const std::string& endpoint, const PeerExpectation& expect,
                                                Deadline deadline) = 0;
};

// Settings of a SecureNetwork (own evidence, verifiers, cipher preferences).
struct SecureNetworkConfig {
  attest::Provider* provider = nullptr;  // own evidence; nullptr = this side does not attest
  std::shared_ptr<const attest::VerifierSet> verifiers;
  std::vector<crypto::AeadSuite> suites = net::default_suites();
  Duration handshake_timeout = std::chrono::seconds(10);
  const Clock* clock = &Clock::system();
  uint64_t max_tensor_bytes = uint64_t(1) << 30;
};

// Links over net streams wrapped in SecureChannels. Endpoints: tcp://, vsock://, and mem://NAME for
// in-process pipes (a process-wide registry of PipeListeners).
std::unique_ptr<Network> make_secure_network(SecureNetworkConfig config);

// Unencrypted in-process network for unit tests (mem:// endpoints only, no attestation).
std::unique_ptr<Network> make_plain_memory_network();

// The attest::Policy that a peer with this manifest attestation must satisfy.

attest::Policy policy_for(const StageAttestation& a);

}  // namespace cml::pipeline
