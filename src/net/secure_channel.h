// SecureChannel: an attested, encrypted, ordered message channel over any Stream.
//
// Handshake (handshake.h, docs/protocol.md §4): X25519 ephemeral keys and 32-byte nonces; each attesting
// side produces evidence through its attest::Provider that binds its public key and nonce; the peer
// verifies it with an attest::VerifierSet, checks the binding, and appraises the claims with the
// caller's attest::Policy (the *peer's* expected measurements). The initiator offers AEAD suites in
// preference order and the responder picks the first it accepts. Keys come from HKDF-SHA256 salted with
// a transcript hash that covers everything both sides said (suites included, so no downgrade); both
// sides send a Finished MAC, so each knows the other derived the same keys. The responder sends its
// ServerHello before it derives and its Finished in a message of its own (ServerFinished), so the two
// X25519 derivations run at the same time. In one-way mode only the responder attests.
//
// Records (docs/protocol.md §5): every frame after the handshake is AEAD-sealed; nonce = 0^4 ‖ seq(u64
// BE), AAD = the 13-byte frame header ‖ session id; sequences are strictly consecutive per direction, so
// a replayed, reordered or dropped frame fails; a stream that ends without a Shutdown record is reported
// as truncated. Each direction switches to a fresh key (KeyUpdate) before a record or byte limit.
// Tensors larger than one record travel as a kTensor frame (sub-header) followed by kTensorChunk frames;
// the receiver checks the declared size against its bound before allocating, and decrypts each chunk in
// place in the destination buffer.
//
// Threads (blocking I/O, one thread per connection; see stream.h): after the handshake, one thread may
// send while another receives. Send functions must not be called concurrently with each other, nor
// recv with recv. abort() is thread-safe. Accessors are safe from any thread once established. Destroy
// the channel only after the threads using it have returned (call abort() first to unblock them).
//
// Errors: any authentication, sequence or format failure on receive is sticky (every later recv
// returns it); the caller should drop the channel.
//
// Typical use (a stage accepting its upstream, then forwarding tensors downstream):
//
//   attest::NitroProvider self(...);                       // or MockProvider in tests
//   ChannelConfig cfg;
//   cfg.provider = &self;
//   cfg.verifiers = verifiers;                             // shared VerifierSet for the peer's evidence
//   cfg.peer_policy.expected_measurements = manifest_pcrs;  // the PEER's measurements
//   auto listener = listen(parse_endpoint("vsock://any:5000").value());
//   auto up = SecureChannel::accept((*listener)->accept(Deadline::never()).value(), cfg);
//   auto down = SecureChannel::connect_with_retry(next_stage, cfg, RetryPolicy{}, Deadline::after(30s));
//   Message m;
//   while ((*up)->recv(m, Deadline::after(60s)).is_ok() && m.kind != Message::Kind::kShutdown) {
//     if (m.kind == Message::Kind::kTensor) (*down)->send_tensor(run_layers(m.tensor).view(), ...);
//     else if (m.sentinel() == Sentinel::kEnd) (*down)->send_end(...);
//   }
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "attest/attest.h"
#include "base/bytes.h"
#include "base/clock.h"
#include "base/status.h"
#include "crypto/aead.h"
#include "net/frame.h"
#include "net/handshake.h"
#include "net/stream.h"
#include "net/tensor_codec.h"

namespace cml::net {

// AES-256-GCM first (hardware AES on x86 servers), then ChaCha20-Poly1305.
std::vector<crypto::AeadSuite> default_suites();

// Per-key limits of the record layer (docs/protocol.md §5): a key seals at most kMaxRecordsPerKey records
// (its KeyUpdate included) and switches once kMaxBytesPerKey plaintext bytes are reached.
constexpr uint64_t kMaxRecordsPerKey = uint64_t(1) << 24;
constexpr uint64_t kMaxBytesPerKey = uint64_t(1) << 36;

struct ChannelConfig {
  // Own evidence. Required for the responder, and for the initiator in mutual mode; must outlive the
  // handshake.
  attest::Provider* provider = nullptr;
  // Verifiers for the peer's evidence (required unless this side is the responder of a one-way session).
  std::shared_ptr<const attest::VerifierSet> verifiers;
  // Applied to the peer's verified claims: the peer's expected measurements, debug, TCB.
  attest::Policy peer_policy;
  // Wall clock for evidence verification.
  const Clock* clock = &Clock::system();

  // Initiator: mode to request. Responder: kOneWay here means "accept initiators without evidence";
  // kMutual refuses them.
  HandshakeMode mode = HandshakeMode::kMutual;
  // Initiator: suites offered in preference order. Responder: suites it accepts.
  std::vector<crypto::AeadSuite> suites = default_suites();

  Duration handshake_timeout = std::chrono::seconds(10);
  // The longest a read of this channel's records polls before it sleeps (at most 10 ms); unset: the
  // process-wide default (AdaptiveSpin::default_max()), which the handshake always uses. A peer whose
  // replies follow its own computation (a GroupCover worker's GEMM, a TEE's layers between requests)
  // warrants less: a spinning thread burns CPU the TEE pays for and may take a core from a process on
  // the same host.
  std::optional<Duration> read_spin;
  // Largest frame payload this side accepts (advertised in the handshake; the peer never sends more).
  uint32_t max_record_payload = 4u << 20;
  // Largest Data message accepted (≤ max_record_payload − 16).
  uint32_t max_data_size = 1u << 20;
  // Largest tensor accepted (data bytes); checked before allocating.
  uint64_t max_tensor_size = uint64_t(2) << 30;
  // Switch to the next key of a direction after this many records or plaintext bytes (whichever first).
  // At most the protocol's limits below.
  uint64_t rekey_after_records = kMaxRecordsPerKey;
  uint64_t rekey_after_bytes = kMaxBytesPerKey;
  // Receiving: the peer must have switched keys by these limits (the protocol's by default); a record
  // past them without a KeyUpdate fails the channel. Lower only in tests.
  uint64_t peer_max_records_per_key = kMaxRecordsPerKey;
  uint64_t peer_max_bytes_per_key = kMaxBytesPerKey;
};

// Validates the configuration for a role (missing provider/verifiers, empty suites, limits).
Status validate_config(const ChannelConfig& config, bool initiator);

// What recv() returns.
struct Message {
  enum class Kind { kData, kTensor, kShutdown };
  Kind kind = Kind::kData;
  Bytes data;     // kData payload
  Tensor tensor;  // kTensor

  Sentinel sentinel(std::string* reason = nullptr) const {
    return kind == Kind::kData ? classify_sentinel(data, reason) : Sentinel::kNone;
  }
};

struct ChannelStats {
  uint64_t records_sent = 0;
  uint64_t records_received = 0;
  uint64_t bytes_sent = 0;  // plaintext
  uint64_t bytes_received = 0;
  uint64_t key_updates_sent = 0;
  uint64_t key_updates_received = 0;
  uint64_t heartbeats_received = 0;
  Duration handshake_time{};
};

// Data bytes per TensorChunk record for a tensor of `data_size` bytes that does not fit one record: a
// quarter of the tensor (rounded up to 4 KiB), at least 32 KiB, at most `max_record_data`. Four chunks
// let the receiver open one while the sender seals the next, so a hop costs about 1¼ seals instead of
// 2 (a 128 KiB tensor through two in-process stages: 41–59 µs less than in one chunk, in blocks
// alternating with it); smaller chunks add records faster than they add overlap.
size_t tensor_chunk_size(size_t data_size, size_t max_record_data);

class SecureChannel {
 public:
  // Runs the initiator's side of the handshake on `stream` (deadline: config.handshake_timeout).
  static Result<std::unique_ptr<SecureChannel>> connect(std::unique_ptr<Stream> stream, const ChannelConfig& config);
  // Runs the responder's side.
  static Result<std::unique_ptr<SecureChannel>> accept(std::unique_ptr<Stream> stream, const ChannelConfig& config);
  // Connects to `endpoint` and runs the initiator's handshake, retrying both under `policy` while the
  // peer is unreachable or slow (UNAVAILABLE, TIMEOUT). Attestation, policy, crypto and protocol failures
  // and peer refusals are returned at once.
  static Result<std::unique_ptr<SecureChannel>> connect_with_retry(const Endpoint& endpoint,
                                                                   const ChannelConfig& config,
                                                                   const RetryPolicy& policy, Deadline deadline,
                                                                   const RetryHooks& hooks = {});

  // Builds an established channel from a key schedule without running the handshake. Only for
  // known-answer tests and interoperability vectors (docs/protocol.md §7); never in production code.
  static std::unique_ptr<SecureChannel> from_key_schedule_for_testing(std::unique_ptr<Stream> stream,
                                                                      const ChannelConfig& config, bool initiator,
                                                                      KeySchedule ks, crypto::AeadSuite suite,
                                                                      uint32_t peer_max_payload);

  ~SecureChannel();
  SecureChannel(const SecureChannel&) = delete;
  SecureChannel& operator=(const SecureChannel&) = delete;

  // ---- sending (one thread) ----
  // A Data record (at most the peer's limit minus the tag).
  Status send_data(ByteSpan data, Deadline deadline);
  // A tensor: one record if it fits, else a kTensor record and kTensorChunk records. Zero-copy from
  // the view's memory into the sealed frame buffer for the chunks.
  Status send_tensor(const TensorView& tensor, Deadline deadline);
  Status send_end(Deadline deadline) { return send_data(as_bytes(kEndSentinel), deadline); }
  Status send_err(std::string_view reason, Deadline deadline);
  Status send_heartbeat(Deadline deadline);
  // Tells the peer this side is aborting (reason ≤ 1 KiB, UTF-8); no more sends afterwards.
  Status send_error(std::string_view reason, Deadline deadline);
  // Clean close of the sending direction: a Shutdown record, then a half-close of the stream (all
  // written bytes are flushed to the peer first). No more sends afterwards.
  Status shutdown(Deadline deadline);
  // Forces a KeyUpdate now (normally automatic).
  Status update_key(Deadline deadline);
  // Gathers the records sent until uncork() into writes of up to 64 KiB (a larger record still goes on
  // its own), so that a message of several records — a pipeline step's header and payload — costs
  // one system call and wakes the reader once instead of once per record. The bytes on the wire are the
  // same. A stream with its own buffer (an in-memory pipe) still takes records straight into it.
  void cork();
  // Writes what the cork holds and ends it. Call it after every cork(), also after a send failed: the
  // records it holds are already sealed, and the peer needs them before any later record. send_error()
  // and shutdown() uncork by themselves.
  Status uncork(Deadline deadline);

  // ---- receiving (one thread) ----
  // The next Data, Tensor or Shutdown. Heartbeats are consumed and counted. `out` is reused (its
  // buffers keep their capacity). A peer Error record returns ABORTED with the peer's reason. After
  // Shutdown every call returns kShutdown again.
  Status recv(Message& out, Deadline deadline);

  // Unblocks both directions (stream abort). Thread-safe.
  void abort();

  // ---- after the handshake (any thread) ----
  bool is_initiator() const { return initiator_; }
  crypto::AeadSuite suite() const { return suite_; }
  const SessionId& session_id() const { return session_id_; }
  // The peer's verified claims; empty for the responder of a one-way session.
  const std::optional<attest::Claims>& peer_claims() const { return peer_claims_; }
  // The largest plaintext the peer accepts in one Data record.
  size_t max_send_data() const;
  ChannelStats stats() const;
  Stream& stream() { return *stream_; }

 private:
  struct Direction;
  SecureChannel(std::unique_ptr<Stream> stream, const ChannelConfig& config, bool initiator);
  static Result<std::unique_ptr<SecureChannel>> establish(std::unique_ptr<Stream> stream, const ChannelConfig& config,
                                                          bool initiator);
  Status run_initiator();
  Status run_responder();
  Status install_keys(KeySchedule& ks, crypto::AeadSuite suite, uint32_t peer_max_payload);
  Status send_record(MsgType type, uint8_t flags, ByteSpan plaintext, Deadline deadline);
  Status send_record_gather(MsgType type, uint8_t flags, ByteSpan head, ByteSpan body, Deadline deadline);
  Status maybe_rekey(Deadline deadline);
  Status flush_cork(Deadline deadline);
  Status recv_one(Message& out, Deadline deadline);
  Status read_record_header(FrameHeader& h, Deadline deadline, bool at_boundary);
  Status open_record_into(const FrameHeader& h, MutableByteSpan plaintext_out, Deadline deadline);
  Status fail_recv(Status st);

  std::unique_ptr<Stream> stream_;
  ChannelConfig config_;
  bool initiator_;
  crypto::AeadSuite suite_ = crypto::AeadSuite::kAes256Gcm;
  SessionId session_id_{};
  std::optional<attest::Claims> peer_claims_;
  uint32_t peer_max_payload_ = 0;
  std::unique_ptr<Direction> tx_;
  std::unique_ptr<Direction> rx_;
  Status recv_error_;
  bool send_closed_ = false;
  bool peer_shutdown_ = false;
  bool idle_timeout_ = false;  // the last recv timed out before reading any byte of a record
  Duration handshake_time_{};
  std::atomic<uint64_t> heartbeats_received_{0};
};

}  // namespace cml::net
