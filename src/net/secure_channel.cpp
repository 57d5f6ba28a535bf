#include "net/secure_channel.h"

#include <algorithm>
#include <cstring>
#include <memory>

#include "crypto/random.h"

namespace cml::net {

namespace {

constexpr size_t kMaxErrorReason = 1024;
constexpr size_t kAadSize = kFrameHeaderSize + kSessionIdSize;

// A growable raw buffer that never zero-fills (records are overwritten entirely before use).
class RecordBuffer {
 public:
  uint8_t* ensure(size_t n) {
    if (n > cap_) {
      data_ = std::make_unique_for_overwrite<uint8_t[]>(n);
      cap_ = n;
    }
    return data_.get();
  }

 private:
  std::unique_ptr<uint8_t[]> data_;
  size_t cap_ = 0;
};

// What cork() gathers before it writes: records sealed while corked are appended here and written in one
// piece by uncork(), or earlier once the next record would not fit.
constexpr size_t kCorkBytes = 64 * 1024;

class CorkBuffer {
 public:
  bool empty() const { return size_ == 0; }
  size_t size() const { return size_; }
  // Room for n more bytes at the end (n ≤ kCorkBytes − size()); they count once append() returns.
  uint8_t* append(size_t n) {
    if (!data_) data_ = std::make_unique_for_overwrite<uint8_t[]>(kCorkBytes);
    uint8_t* p = data_.get() + size_;
    size_ += n;
    return p;
  }
  ByteSpan bytes() const { return ByteSpan(data_.get(), size_); }
  void clear() { size_ = 0; }
  void truncate(size_t n) { size_ = n < size_ ? n : size_; }

 private:
  std::unique_ptr<uint8_t[]> data_;
  size_t size_ = 0;
};

std::array<uint8_t, crypto::kAeadNonceSize> record_nonce(uint64_t seq) {
  std::array<uint8_t, crypto::kAeadNonceSize> n{};
  store_u64_be(n.data() + 4, seq);
  return n;
}

// Printable ASCII only, bounded (a peer's reason ends up in logs and messages).
std::string sanitize_reason(ByteSpan b) {
  std::string s;
  for (size_t i = 0; i < b.size() && i < kMaxErrorReason; ++i) {
    const char c = static_cast<char>(b[i]);
    s.push_back(c >= 0x20 && c < 0x7f ? c : '?');
  }
  return s;
}

std::string suites_text(const std::vector<crypto::AeadSuite>& v) {
  std::string s;
  for (auto x : v) {
    if (!s.empty()) s += ",";
    s += crypto::aead_suite_name(x);
  }
  return s;
}

}  // namespace

struct SecureChannel::Direction {
  std::optional<crypto::Aead> aead;
  crypto::SecretBytes key;
  uint64_t seq = 0;
  uint64_t records_since_key = 0;
  uint64_t bytes_since_key = 0;
  RecordBuffer buf;
  bool corked = false;
  CorkBuffer pending;  // sealed frames not yet written (only while corked)
  std::atomic<uint64_t> records{0};
  std::atomic<uint64_t> bytes{0};
  std::atomic<uint64_t> key_updates{0};

  Status set_key(crypto::AeadSuite suite, crypto::SecretBytes k) {
    CML_ASSIGN_OR_RETURN(crypto::Aead a, crypto::Aead::create(suite, k.span()));
    aead.emplace(std::move(a));
    key = std::move(k);
    records_since_key = 0;
    bytes_since_key = 0;
    return Status::ok();
  }
  Status advance_key(crypto::AeadSuite suite) {
    CML_ASSIGN_OR_RETURN(crypto::SecretBytes next, next_traffic_key(key));
    key_updates.fetch_add(1, std::memory_order_relaxed);
    return set_key(suite, std::move(next));
  }
};

std::vector<crypto::AeadSuite> default_suites() {
  std::vector<crypto::AeadSuite> v;
  v.push_back(crypto::AeadSuite::kAes256Gcm);
  v.push_back(crypto::AeadSuite::kChaCha20Poly1305);
  return v;
}

Status validate_config(const ChannelConfig& c, bool initiator) {
  const bool attests = !initiator || c.mode == HandshakeMode::kMutual;
  const bool verifies = initiator || c.mode == HandshakeMode::kMutual;
  if (attests && c.provider == nullptr) return invalid_argument("channel config: an attestation provider is required");
  if (verifies && (!c.verifiers || c.verifiers->empty())) {
    return invalid_argument("channel config: verifiers for the peer's evidence are required");
  }
  if (c.suites.empty() || c.suites.size() > kMaxOfferedSuites) {
    return invalid_argument("channel config: 1 to 8 AEAD suites required");
  }
  for (size_t i = 0; i < c.suites.size(); ++i) {
    if (std::count(c.suites.begin(), c.suites.end(), c.suites[i]) != 1) {
      return invalid_argument("channel config: duplicate AEAD suite");
    }
  }
  if (c.max_record_payload < 4096 || c.max_record_payload > kMaxFramePayload) {
    return invalid_argument("channel config: max_record_payload must be in [4096, 32 MiB]");
  }
  if (c.max_data_size == 0 || c.max_data_size > c.max_record_payload - crypto::kAeadTagSize) {
    return invalid_argument("channel config: max_data_size must be in [1, max_record_payload - 16]");
  }
  if (c.rekey_after_records == 0 || c.rekey_after_bytes == 0 || c.rekey_after_records > kMaxRecordsPerKey ||
      c.rekey_after_bytes > kMaxBytesPerKey) {
    return invalid_argument("channel config: rekey limits must be in [1, 2^24] records and [1, 2^36] bytes");
  }
  if (c.peer_max_records_per_key < 2 || c.peer_max_bytes_per_key == 0) {
    return invalid_argument("channel config: the peer's per-key limits must allow a record and its KeyUpdate");
  }
  if (c.handshake_timeout.count() <= 0) return invalid_argument("channel config: handshake_timeout must be positive");
  if (c.clock == nullptr) return invalid_argument("channel config: clock is required");
  if (c.read_spin && (c.read_spin->count() < 0 || *c.read_spin > std::chrono::milliseconds(10))) {
    return invalid_argument("channel config: read_spin must be in [0, 10 ms]");
  }
  return Status::ok();
}

SecureChannel::SecureChannel(std::unique_ptr<Stream> stream, const ChannelConfig& config, bool initiator)
    : stream_(std::move(stream)),
      config_(config),
      initiator_(initiator),
      tx_(std::make_unique<Direction>()),
      rx_(std::make_unique<Direction>()) {}

SecureChannel::~SecureChannel() = default;

// ---------------------------------------------------------------------------------------------------
// Handshake

namespace {

Status send_plain(Stream& s, MsgType type, uint32_t seq, ByteSpan payload, Deadline d) {
  FrameHeader h{type, 0, seq, static_cast<uint32_t>(payload.size())};
  const auto hb = encode_frame_header(h);
  const ByteSpan parts[2] = {hb, payload};
  return s.write_all(std::span<const ByteSpan>(parts), d);
}

// Best effort: tells the peer why the handshake is abandoned, then returns `st`.
Status refuse(Stream& s, uint32_t seq, const Status& st, Deadline d) {
  const std::string reason = std::string(status_code_name(st.code())) + ": " + st.message().substr(0, 900);
  send_plain(s, MsgType::kError, seq, as_bytes(reason), d).ignore_error();
  return st;
}

// Reads one plaintext handshake frame with the expected sequence number.
Result<Bytes> read_hello(Stream& s, uint32_t expected_seq, Deadline d, std::string_view what) {
  FrameHeaderBytes hb{};
  Status st = s.read_exact(hb, d);
  if (!st.is_ok()) return st.with_context(std::string("handshake: waiting for ") + std::string(what));
  CML_ASSIGN_OR_RETURN(FrameHeader h, decode_frame_header(hb, kMaxHandshakePayload));
  if (h.type == MsgType::kError && h.flags == 0 && h.payload_len <= kMaxErrorReason) {
    Bytes reason(h.payload_len);
    s.read_exact(reason, d).ignore_error();
    return aborted("handshake: peer refused: " + sanitize_reason(reason));
  }
  if (h.type != MsgType::kHello) {
    return protocol_error(std::string("handshake: expected a Hello frame (") + std::string(what) + "), got " +
                          std::string(msg_type_name(h.type)));
  }
  if (h.flags != 0) return protocol_error("handshake: Hello frame with flags set");
  if (h.seq != expected_seq) {
    return protocol_error("handshake: Hello frame sequence " + std::to_string(h.seq) + ", expected " +
                          std::to_string(expected_seq));
  }
  Bytes payload(h.payload_len);
  st = s.read_exact(payload, d);
  if (!st.is_ok()) return st.with_context(std::string("handshake: reading ") + std::string(what));
  return payload;
}

Status verify_peer(const ChannelConfig& c, const attest::Evidence& ev, ByteSpan pk, ByteSpan nonce,
                   std::optional<attest::Claims>& out) {
  const WallTime now = c.clock->now();
  CML_ASSIGN_OR_RETURN(attest::Claims claims, c.verifiers->verify(ev, now));
  CML_RETURN_IF_ERROR(attest::check_binding(claims, pk, nonce));
  CML_RETURN_IF_ERROR(attest::appraise(claims, c.peer_policy, now));
  out = std::move(claims);
  return Status::ok();
}

}  // namespace

Result<std::unique_ptr<SecureChannel>> SecureChannel::establish(std::unique_ptr<Stream> stream,
                                                                const ChannelConfig& config, bool initiator) {
  CML_CHECK(stream != nullptr);
  CML_RETURN_IF_ERROR(validate_config(config, initiator));
  std::unique_ptr<SecureChannel> ch(new SecureChannel(std::move(stream), config, initiator));
  const auto t0 = std::chrono::steady_clock::now();
  Status st = initiator ? ch->run_initiator() : ch->run_responder();
  if (!st.is_ok()) return st;  // destroying the stream lets the peer read our Error frame, then EOF
  ch->handshake_time_ = std::chrono::steady_clock::now() - t0;
  return ch;
}

Result<std::unique_ptr<SecureChannel>> SecureChannel::connect(std::unique_ptr<Stream> stream,
                                                              const ChannelConfig& config) {
  return establish(std::move(stream), config, true);
}

Result<std::unique_ptr<SecureChannel>> SecureChannel::accept(std::unique_ptr<Stream> stream,
                                                             const ChannelConfig& config) {
  return establish(std::move(stream), config, false);
}

Result<std::unique_ptr<SecureChannel>> SecureChannel::connect_with_retry(const Endpoint& endpoint,
                                                                         const ChannelConfig& config,
                                                                         const RetryPolicy& policy, Deadline deadline,
                                                                         const RetryHooks& hooks) {
  return with_retry<std::unique_ptr<SecureChannel>>(
      policy, deadline,
      [&]() -> Result<std::unique_ptr<SecureChannel>> {
        CML_ASSIGN_OR_RETURN(std::unique_ptr<Stream> s, net::connect(endpoint, deadline));
        return connect(std::move(s), config);
      },
      hooks);
}

std::unique_ptr<SecureChannel> SecureChannel::from_key_schedule_for_testing(std::unique_ptr<Stream> stream,
                                                                            const ChannelConfig& config, bool initiator,
                                                                            KeySchedule ks, crypto::AeadSuite suite,
                                                                            uint32_t peer_max_payload) {
  std::unique_ptr<SecureChannel> ch(new SecureChannel(std::move(stream), config, initiator));
  CML_CHECK(ch->install_keys(ks, suite, peer_max_payload).is_ok());
  return ch;
}

Status SecureChannel::run_initiator() {
  const Deadline d = Deadline::after(config_.handshake_timeout);
  Stream& s = *stream_;
  const auto kp = crypto::X25519KeyPair::take_ephemeral();
  ClientHello ch;
  ch.mode = config_.mode;
  ch.public_key = kp.public_key();
  crypto::random_fill(ch.nonce);
  ch.max_record_payload = config_.max_record_payload;
  ch.suites = config_.suites;
  if (ch.mode == HandshakeMode::kMutual) {
    auto ev = config_.provider->attest(ch.public_key, ch.nonce);
    if (!ev.is_ok()) return ev.status().with_context("handshake: producing own evidence");
    ch.evidence = std::move(ev).value();
  }
  CML_RETURN_IF_ERROR(send_plain(s, MsgType::kHello, kClientHelloSeq, encode_client_hello(ch), d)
                          .with_context("handshake: sending ClientHello"));

  // Every refusal from here on takes the place of M4 ClientFinished.
  CML_ASSIGN_OR_RETURN(Bytes m2, read_hello(s, kServerHelloSeq, d, "ServerHello"));
  auto parsed = parse_server_hello(m2);
  if (!parsed.is_ok()) return refuse(s, kClientFinishedSeq, parsed.status(), d);
  ServerHello sh = std::move(parsed).value();
  if (std::find(ch.suites.begin(), ch.suites.end(), sh.suite) == ch.suites.end()) {
    return refuse(s, kClientFinishedSeq,
                  protocol_error("handshake: responder chose suite " + std::string(crypto::aead_suite_name(sh.suite)) +
                                 " which was not offered"),
                  d);
  }
  Status vst =
      verify_peer(config_, sh.evidence, sh.public_key, responder_evidence_nonce(ch.nonce, sh.nonce), peer_claims_);
  if (!vst.is_ok()) return refuse(s, kClientFinishedSeq, vst.with_context("handshake: responder evidence"), d);

  // The responder sent M2 before deriving, so this X25519 runs while the responder's does; by the time
  // the key schedule is ready, M3 is usually already buffered.
  auto ss = kp.derive(sh.public_key);
  if (!ss.is_ok()) return refuse(s, kClientFinishedSeq, ss.status(), d);
  const crypto::Digest256 th = transcript_hash(ch, sh);
  CML_ASSIGN_OR_RETURN(KeySchedule ks, derive_key_schedule(ss->span(), th));

  CML_ASSIGN_OR_RETURN(Bytes m3, read_hello(s, kServerFinishedSeq, d, "ServerFinished"));
  auto sf = parse_server_finished(m3);
  if (!sf.is_ok()) return refuse(s, kClientFinishedSeq, sf.status(), d);
  if (!constant_time_equal(compute_finished(ks.finished_resp, th), sf->finished)) {
    return refuse(s, kClientFinishedSeq,
                  crypto_error("handshake: responder Finished does not match (keys or transcript differ)"), d);
  }
  ClientFinished cf;
  cf.finished = compute_finished(ks.finished_init, th);
  CML_RETURN_IF_ERROR(send_plain(s, MsgType::kHello, kClientFinishedSeq, encode_client_finished(cf), d)
                          .with_context("handshake: sending ClientFinished"));
  return install_keys(ks, sh.suite, sh.max_record_payload);
}

Status SecureChannel::run_responder() {
  const Deadline d = Deadline::after(config_.handshake_timeout);
  Stream& s = *stream_;
  // The ephemeral key is generated before the ClientHello arrives, off the critical path.
  const auto kp = crypto::X25519KeyPair::take_ephemeral();
  // Until M2 is sent, a refusal takes its place.
  CML_ASSIGN_OR_RETURN(Bytes m1, read_hello(s, kClientHelloSeq, d, "ClientHello"));
  auto parsed = parse_client_hello(m1);
  if (!parsed.is_ok()) return refuse(s, kServerHelloSeq, parsed.status(), d);
  ClientHello ch = std::move(parsed).value();

  if (ch.mode == HandshakeMode::kOneWay && config_.mode == HandshakeMode::kMutual) {
    return refuse(s, kServerHelloSeq,
                  policy_error("handshake: initiator sent no evidence (one-way) but mutual attestation is required"),
                  d);
  }
  if (ch.mode == HandshakeMode::kMutual) {
    if (!config_.verifiers || config_.verifiers->empty()) {
      return refuse(s, kServerHelloSeq,
                    policy_error("handshake: initiator sent evidence but no verifier is configured"), d);
    }
    Status vst = verify_peer(config_, *ch.evidence, ch.public_key, ch.nonce, peer_claims_);
    if (!vst.is_ok()) return refuse(s, kServerHelloSeq, vst.with_context("handshake: initiator evidence"), d);
  }
  ServerHello sh;
  bool found = false;
  for (auto offered : ch.suites) {
    if (std::find(config_.suites.begin(), config_.suites.end(), offered) != config_.suites.end()) {
      sh.suite = offered;
      found = true;
      break;
    }
  }
  if (!found) {
    return refuse(s, kServerHelloSeq,
                  protocol_error("handshake: no common AEAD suite (offered " + suites_text(ch.suites) + ", accepted " +
                                 suites_text(config_.suites) + ")"),
                  d);
  }
  sh.public_key = kp.public_key();
  crypto::random_fill(sh.nonce);
  sh.max_record_payload = config_.max_record_payload;
  auto ev = config_.provider->attest(sh.public_key, responder_evidence_nonce(ch.nonce, sh.nonce));
  if (!ev.is_ok()) return refuse(s, kServerHelloSeq, ev.status().with_context("handshake: producing own evidence"), d);
  sh.evidence = std::move(ev).value();
  // M2 goes out before the X25519 derivation, so that the initiator verifies the evidence and derives
  // while this side derives (docs/protocol.md §4.3).
  CML_RETURN_IF_ERROR(send_plain(s, MsgType::kHello, kServerHelloSeq, encode_server_hello(sh), d)
                          .with_context("handshake: sending ServerHello"));

  auto ss = kp.derive(ch.public_key);
  if (!ss.is_ok()) return refuse(s, kServerFinishedSeq, ss.status(), d);
  const crypto::Digest256 th = transcript_hash(ch, sh);
  CML_ASSIGN_OR_RETURN(KeySchedule ks, derive_key_schedule(ss->span(), th));
  ServerFinished sf;
  sf.finished = compute_finished(ks.finished_resp, th);
  Status sent = send_plain(s, MsgType::kHello, kServerFinishedSeq, encode_server_finished(sf), d);
  if (!sent.is_ok()) {
    // The initiator may have refused M2 and closed while this side derived; its Error frame, already
    // here, says more than the broken stream does.
    auto early = read_hello(s, kClientFinishedSeq, d, "ClientFinished");
    if (!early.is_ok() && early.status().code() == StatusCode::kAborted) return early.status();
    return sent.with_context("handshake: sending ServerFinished");
  }

  // The initiator counts its session established once it has sent M4, so a bad M4 gets no Error frame:
  // closing the stream is all that is left to say.
  CML_ASSIGN_OR_RETURN(Bytes m4, read_hello(s, kClientFinishedSeq, d, "ClientFinished"));
  auto cf = parse_client_finished(m4);
  if (!cf.is_ok()) return cf.status();
  if (!constant_time_equal(compute_finished(ks.finished_init, th), cf->finished)) {
    return crypto_error("handshake: initiator Finished does not match (keys or transcript differ)");
  }
  return install_keys(ks, sh.suite, ch.max_record_payload);
}

Status SecureChannel::install_keys(KeySchedule& ks, crypto::AeadSuite suite, uint32_t peer_max_payload) {
  suite_ = suite;
  session_id_ = ks.session_id;
  peer_max_payload_ = peer_max_payload;
  CML_RETURN_IF_ERROR(tx_->set_key(suite, initiator_ ? std::move(ks.key_i2r) : std::move(ks.key_r2i)));
  CML_RETURN_IF_ERROR(rx_->set_key(suite, initiator_ ? std::move(ks.key_r2i) : std::move(ks.key_i2r)));
  if (config_.read_spin) stream_->set_read_spin(*config_.read_spin);
  return Status::ok();
}

// ---------------------------------------------------------------------------------------------------
// Sending

size_t SecureChannel::max_send_data() const {
  return peer_max_payload_ - crypto::kAeadTagSize;
}

Status SecureChannel::maybe_rekey(Deadline deadline) {
  if (tx_->records_since_key + 1 < config_.rekey_after_records && tx_->bytes_since_key < config_.rekey_after_bytes) {
    return Status::ok();
  }
  return update_key(deadline);
}

Status SecureChannel::update_key(Deadline deadline) {
  if (send_closed_) return aborted("channel: send after shutdown");
  CML_RETURN_IF_ERROR(send_record(MsgType::kKeyUpdate, 0, {}, deadline));
  return tx_->advance_key(suite_);
}

// Seals `plaintext` (which may already lie at buf+13, in place) into the frame buffer and writes it.
Status SecureChannel::send_record(MsgType type, uint8_t extra_flags, ByteSpan plaintext, Deadline deadline) {
  Direction& tx = *tx_;
  CML_CHECK_MSG(tx.aead.has_value(), "send on a channel without keys");
  const size_t payload = plaintext.size() + crypto::kAeadTagSize;
  if (payload > peer_max_payload_) {
    return resource_exhausted("channel: record of " + std::to_string(payload) + " bytes exceeds the peer's limit of " +
                              std::to_string(peer_max_payload_));
  }
  const size_t frame = kFrameHeaderSize + payload;
  // Where the sealed frame goes: behind the frames a cork holds (once it holds any, so that the order
  // stays), else straight into the stream's buffer where it offers one (an in-memory pipe), else into
  // the cork, else into our buffer and written at once.
  if (tx.corked && !tx.pending.empty() && tx.pending.size() + frame > kCorkBytes)
    CML_RETURN_IF_ERROR(flush_cork(deadline));
  MutableByteSpan direct;
  if (!tx.corked || tx.pending.empty()) {
    auto r = stream_->reserve_write(frame, deadline);
    if (!r.is_ok()) {
      send_closed_ = true;
      return r.status().with_context("channel send");
    }
    direct = *r;
  }
  const bool to_cork = direct.empty() && tx.corked && frame <= kCorkBytes;
  const size_t corked_before = tx.pending.size();
  uint8_t* buf = !direct.empty() ? direct.data() : to_cork ? tx.pending.append(frame) : tx.buf.ensure(frame);
  FrameHeader h{type, static_cast<uint8_t>(flags::kEncrypted | extra_flags), static_cast<uint32_t>(tx.seq),
                static_cast<uint32_t>(payload)};
  encode_frame_header(h, buf);
  uint8_t aad[kAadSize];
  std::memcpy(aad, buf, kFrameHeaderSize);
  std::memcpy(aad + kFrameHeaderSize, session_id_.data(), kSessionIdSize);
  const auto nonce = record_nonce(tx.seq);
  Status st =
      tx.aead->seal(nonce, ByteSpan(aad, kAadSize), plaintext, MutableByteSpan(buf + kFrameHeaderSize, payload));
  if (!st.is_ok()) {
    tx.pending.truncate(corked_before);  // out of the cork again; the records before it stay whole
    return st;
  }
  if (!direct.empty()) {
    stream_->commit_write(frame);
  } else if (!to_cork) {
    st = stream_->write_all(ByteSpan(buf, frame), deadline);
  }
  if (!st.is_ok()) {
    send_closed_ = true;  // the peer may have seen part of a frame; the direction is unusable
    return st.with_context("channel send");
  }
  ++tx.seq;
  ++tx.records_since_key;
  tx.bytes_since_key += plaintext.size();
  tx.records.fetch_add(1, std::memory_order_relaxed);
  tx.bytes.fetch_add(plaintext.size(), std::memory_order_relaxed);
  return Status::ok();
}

void SecureChannel::cork() {
  tx_->corked = true;
}

Status SecureChannel::uncork(Deadline deadline) {
  Status st = flush_cork(deadline);
  tx_->corked = false;
  return st;
}

Status SecureChannel::flush_cork(Deadline deadline) {
  Direction& tx = *tx_;
  if (tx.pending.empty()) return Status::ok();
  Status st = stream_->write_all(tx.pending.bytes(), deadline);
  tx.pending.clear();
  if (!st.is_ok()) {
    send_closed_ = true;  // the records are sealed and counted: the direction is unusable without them
    return st.with_context("channel send");
  }
  return Status::ok();
}

Status SecureChannel::send_record_gather(MsgType type, uint8_t extra_flags, ByteSpan head, ByteSpan body,
                                         Deadline deadline) {
  // Small records: copy the parts after the header slot and seal in place.
  const size_t n = head.size() + body.size();
  uint8_t* buf = tx_->buf.ensure(kFrameHeaderSize + n + crypto::kAeadTagSize);
  if (!head.empty()) std::memcpy(buf + kFrameHeaderSize, head.data(), head.size());
  if (!body.empty()) std::memcpy(buf + kFrameHeaderSize + head.size(), body.data(), body.size());
  return send_record(type, extra_flags, ByteSpan(buf + kFrameHeaderSize, n), deadline);
}

Status SecureChannel::send_data(ByteSpan data, Deadline deadline) {
  if (send_closed_) return aborted("channel: send after shutdown or error");
  if (data.size() > max_send_data()) {
    return resource_exhausted("channel: Data message of " + std::to_string(data.size()) +
                              " bytes exceeds the peer's limit of " + std::to_string(max_send_data()));
  }
  CML_RETURN_IF_ERROR(maybe_rekey(deadline));
  return send_record(MsgType::kData, 0, data, deadline);
}

Status SecureChannel::send_err(std::string_view reason, Deadline deadline) {
  const Bytes b = make_err_sentinel(reason);
  return send_data(b, deadline);
}

size_t tensor_chunk_size(size_t data_size, size_t max_record_data) {
  constexpr size_t kMinChunk = 32 * 1024, kChunks = 4, kAlign = 4096;
  const size_t quarter = (data_size + kChunks - 1) / kChunks;
  const size_t aligned = (quarter + kAlign - 1) / kAlign * kAlign;
  return std::max<size_t>(1, std::min(max_record_data, std::max(kMinChunk, aligned)));
}

Status SecureChannel::send_tensor(const TensorView& t, Deadline deadline) {
  if (send_closed_) return aborted("channel: send after shutdown or error");
  CML_RETURN_IF_ERROR(validate_tensor_view(t));
  const size_t hdr = tensor_header_size(t);
  const size_t max_plain = max_send_data();
  uint8_t head[kFrameHeaderSize + 2 + 1 + 4 * kMaxTensorDims + 2 + 64 + 8];  // fast path for short names
  Bytes head_heap;
  MutableByteSpan head_span;
  if (hdr <= sizeof(head)) {
    head_span = MutableByteSpan(head, hdr);
  } else {
    head_heap.resize(hdr);
    head_span = head_heap;
  }
  if (hdr > max_plain) return resource_exhausted("channel: tensor header exceeds the peer's record limit");
  write_tensor_header(t, head_span);
  // Small tensors: one record, sub-header and data together (the reference v4 Tensor payload).
  constexpr size_t kInlineLimit = 64 * 1024;
  if (hdr + t.data.size() <= std::min(max_plain, kInlineLimit)) {
    CML_RETURN_IF_ERROR(maybe_rekey(deadline));
    return send_record_gather(MsgType::kTensor, flags::kTensor, head_span, t.data, deadline);
  }
  // Large tensors: the sub-header alone, then chunks sealed straight from the caller's memory.
  CML_RETURN_IF_ERROR(maybe_rekey(deadline));
  CML_RETURN_IF_ERROR(send_record_gather(MsgType::kTensor, flags::kTensor | flags::kMore, head_span, {}, deadline));
  const size_t chunk = tensor_chunk_size(t.data.size(), max_plain);
  ByteSpan rest = t.data;
  while (!rest.empty()) {
    const size_t n = std::min(rest.size(), chunk);
    const bool more = n < rest.size();
    CML_RETURN_IF_ERROR(maybe_rekey(deadline));
    CML_RETURN_IF_ERROR(
        send_record(MsgType::kTensorChunk, flags::kTensor | (more ? flags::kMore : 0), rest.first(n), deadline));
    rest = rest.subspan(n);
  }
  return Status::ok();
}

Status SecureChannel::send_heartbeat(Deadline deadline) {
  if (send_closed_) return aborted("channel: send after shutdown or error");
  CML_RETURN_IF_ERROR(maybe_rekey(deadline));
  return send_record(MsgType::kHeartbeat, 0, {}, deadline);
}

Status SecureChannel::send_error(std::string_view reason, Deadline deadline) {
  if (send_closed_) return aborted("channel: send after shutdown or error");
  CML_RETURN_IF_ERROR(maybe_rekey(deadline));
  Status st = send_record(MsgType::kError, 0, as_bytes(reason.substr(0, kMaxErrorReason)), deadline);
  if (st.is_ok()) st = uncork(deadline);  // the last record of this direction: nothing may stay behind
  send_closed_ = true;
  if (st.is_ok()) stream_->shutdown_write().ignore_error();
  return st;
}

Status SecureChannel::shutdown(Deadline deadline) {
  if (send_closed_) return aborted("channel: shutdown after shutdown or error");
  CML_RETURN_IF_ERROR(maybe_rekey(deadline));
  Status st = send_record(MsgType::kShutdown, 0, {}, deadline);
  if (st.is_ok()) st = uncork(deadline);
  send_closed_ = true;
  CML_RETURN_IF_ERROR(st);
  return stream_->shutdown_write();
}

void SecureChannel::abort() {
  stream_->abort();
}

ChannelStats SecureChannel::stats() const {
  ChannelStats s;
  s.records_sent = tx_->records.load(std::memory_order_relaxed);
  s.bytes_sent = tx_->bytes.load(std::memory_order_relaxed);
  s.key_updates_sent = tx_->key_updates.load(std::memory_order_relaxed);
  s.records_received = rx_->records.load(std::memory_order_relaxed);
  s.bytes_received = rx_->bytes.load(std::memory_order_relaxed);
  s.key_updates_received = rx_->key_updates.load(std::memory_order_relaxed);
  s.heartbeats_received = heartbeats_received_.load(std::memory_order_relaxed);
  s.handshake_time = handshake_time_;
  return s;
}

// ---------------------------------------------------------------------------------------------------
// Receiving

Status SecureChannel::fail_recv(Status st) {
  recv_error_ = st;
  return st;
}

// Reads and validates the next record header. At a message boundary, end of stream means truncation.
Status SecureChannel::read_record_header(FrameHeader& h, Deadline deadline, bool at_boundary) {
  FrameHeaderBytes hb{};
  auto r = stream_->read_some(hb, deadline);
  if (!r.is_ok()) {
    idle_timeout_ = at_boundary && r.status().code() == StatusCode::kTimeout;
    return r.status();
  }
  const size_t got = *r;
  if (got == 0) {
    return at_boundary
               ? protocol_error("channel: stream from " + stream_->peer() + " ended without Shutdown (truncated)")
               : protocol_error("channel: stream from " + stream_->peer() +
                                " ended inside a chunked tensor (truncated)");
  }
  if (got < hb.size()) {
    Status st = stream_->read_exact(MutableByteSpan(hb).subspan(got), deadline);
    if (!st.is_ok()) return st.with_context("channel: peer vanished mid-frame");
  }
  CML_ASSIGN_OR_RETURN(h, decode_frame_header(hb, config_.max_record_payload));
  if (h.type == MsgType::kHello) return protocol_error("channel: Hello frame after the handshake");
  if ((h.flags & flags::kEncrypted) == 0) {
    return protocol_error("channel: unencrypted " + std::string(msg_type_name(h.type)) + " frame after the handshake");
  }
  const uint32_t expected = static_cast<uint32_t>(rx_->seq);
  if (h.seq != expected) {
    const int32_t delta = static_cast<int32_t>(h.seq - expected);
    return protocol_error("channel: record sequence " + std::to_string(h.seq) + ", expected " +
                          std::to_string(expected) +
                          (delta < 0 ? " (replayed or reordered frame)" : " (dropped or reordered frame)"));
  }
  if (h.payload_len < crypto::kAeadTagSize) return protocol_error("channel: record shorter than its tag");
  // The peer must switch keys in time (its KeyUpdate is the last record a key may seal).
  if (h.type != MsgType::kKeyUpdate && (rx_->records_since_key + 1 >= config_.peer_max_records_per_key ||
                                        rx_->bytes_since_key >= config_.peer_max_bytes_per_key)) {
    return protocol_error("channel: peer exceeded the per-key limit (" + std::to_string(rx_->records_since_key) +
                          " records, " + std::to_string(rx_->bytes_since_key) + " bytes) without a KeyUpdate");
  }
  const bool tensor_flag = (h.flags & flags::kTensor) != 0;
  const bool is_tensor = h.type == MsgType::kTensor || h.type == MsgType::kTensorChunk;
  if (tensor_flag != is_tensor || ((h.flags & flags::kMore) != 0 && !is_tensor)) {
    return protocol_error("channel: flags 0x" + to_hex(ByteSpan(&h.flags, 1)) + " invalid for " +
                          std::string(msg_type_name(h.type)));
  }
  return Status::ok();
}

// Reads the record's ciphertext into plaintext_out (sized payload_len − 16) and its tag, then opens
// it in place.
Status SecureChannel::open_record_into(const FrameHeader& h, MutableByteSpan out, Deadline deadline) {
  Direction& rx = *rx_;
  CML_CHECK(out.size() + crypto::kAeadTagSize == h.payload_len);
  // Opened straight out of the stream's buffer where it offers one (an in-memory pipe), else read into
  // `out` and opened in place.
  auto direct = stream_->peek_read(h.payload_len, deadline);
  if (!direct.is_ok()) return direct.status().with_context("channel: peer vanished mid-frame");
  uint8_t tag_buf[crypto::kAeadTagSize];
  ByteSpan ct = out, tag(tag_buf, sizeof(tag_buf));
  if (direct->empty()) {
    Status rd = stream_->read_exact(out, deadline);
    if (rd.is_ok()) rd = stream_->read_exact(MutableByteSpan(tag_buf, sizeof(tag_buf)), deadline);
    if (!rd.is_ok()) return rd.with_context("channel: peer vanished mid-frame");
  } else {
    ct = direct->first(out.size());
    tag = direct->subspan(out.size());
  }
  uint8_t aad[kAadSize];
  encode_frame_header(h, aad);
  std::memcpy(aad + kFrameHeaderSize, session_id_.data(), kSessionIdSize);
  const auto nonce = record_nonce(rx.seq);
  Status st = rx.aead->open_detached(nonce, ByteSpan(aad, kAadSize), ct, tag, out);
  if (!direct->empty()) stream_->release_read(h.payload_len);
  if (!st.is_ok()) {
    return crypto_error("channel: record " + std::to_string(rx.seq) + " (" + std::string(msg_type_name(h.type)) +
                        ") failed authentication (modified or forged frame)");
  }
  ++rx.seq;
  ++rx.records_since_key;
  rx.bytes_since_key += out.size();
  rx.records.fetch_add(1, std::memory_order_relaxed);
  rx.bytes.fetch_add(out.size(), std::memory_order_relaxed);
  return Status::ok();
}

Status SecureChannel::recv(Message& out, Deadline deadline) {
  if (!recv_error_.is_ok()) return recv_error_;
  if (peer_shutdown_) {
    out.kind = Message::Kind::kShutdown;
    return Status::ok();
  }
  idle_timeout_ = false;
  Status st = recv_one(out, deadline);
  // A timeout before the first byte of a message leaves the channel usable; everything else is final.
  if (!st.is_ok() && !(st.code() == StatusCode::kTimeout && idle_timeout_)) return fail_recv(st);
  return st;
}

Status SecureChannel::recv_one(Message& out, Deadline deadline) {
  Direction& rx = *rx_;
  for (;;) {
    FrameHeader h;
    CML_RETURN_IF_ERROR(read_record_header(h, deadline, true));
    const size_t plain = h.payload_len - crypto::kAeadTagSize;
    switch (h.type) {
      case MsgType::kData: {
        if (plain > config_.max_data_size) {
          return resource_exhausted("channel: Data message of " + std::to_string(plain) +
                                    " bytes exceeds the limit of " + std::to_string(config_.max_data_size));
        }
        out.data.resize(plain);
        CML_RETURN_IF_ERROR(open_record_into(h, out.data, deadline));
        out.kind = Message::Kind::kData;
        return Status::ok();
      }
      case MsgType::kHeartbeat:
      case MsgType::kShutdown:
      case MsgType::kKeyUpdate: {
        if (plain != 0) return protocol_error("channel: " + std::string(msg_type_name(h.type)) + " with a payload");
        CML_RETURN_IF_ERROR(open_record_into(h, {}, deadline));
        if (h.type == MsgType::kHeartbeat) {
          heartbeats_received_.fetch_add(1, std::memory_order_relaxed);
          continue;
        }
        if (h.type == MsgType::kKeyUpdate) {
          CML_RETURN_IF_ERROR(rx.advance_key(suite_));
          continue;
        }
        peer_shutdown_ = true;
        out.kind = Message::Kind::kShutdown;
        return Status::ok();
      }
      case MsgType::kError: {
        if (plain > kMaxErrorReason) return resource_exhausted("channel: Error reason longer than 1024 bytes");
        uint8_t* buf = rx.buf.ensure(plain);
        CML_RETURN_IF_ERROR(open_record_into(h, MutableByteSpan(buf, plain), deadline));
        return aborted("channel: peer aborted: " + sanitize_reason(ByteSpan(buf, plain)));
      }
      case MsgType::kTensorChunk:
        return protocol_error("channel: TensorChunk without a preceding Tensor frame");
      case MsgType::kTensor: {
        uint8_t* buf = rx.buf.ensure(plain);
        CML_RETURN_IF_ERROR(open_record_into(h, MutableByteSpan(buf, plain), deadline));
        const ByteSpan payload(buf, plain);
        CML_ASSIGN_OR_RETURN(TensorHeader th, decode_tensor_header(payload, config_.max_tensor_size));
        const ByteSpan first = payload.subspan(th.header_size);
        const bool more = (h.flags & flags::kMore) != 0;
        if (first.size() > th.data_size || (!more && first.size() != th.data_size)) {
          return invalid_argument("tensor '" + th.name.substr(0, 64) + "': declares " + std::to_string(th.data_size) +
                                  " data bytes, frame carries " + std::to_string(first.size()));
        }
        if (more && first.size() == th.data_size)
          return protocol_error("channel: tensor complete but more chunks announced");
        Tensor& t = out.tensor;
        t.name = std::move(th.name);
        t.dtype = th.dtype;
        t.shape = std::move(th.shape);
        t.data.resize(th.data_size);  // bounded by max_tensor_size above
        if (!first.empty()) std::memcpy(t.data.data(), first.data(), first.size());
        size_t filled = first.size();
        while (filled < t.data.size()) {
          FrameHeader ch;
          CML_RETURN_IF_ERROR(read_record_header(ch, deadline, false));
          const size_t n = ch.payload_len - crypto::kAeadTagSize;
          if (ch.type == MsgType::kKeyUpdate) {
            if (n != 0) return protocol_error("channel: KeyUpdate with a payload");
            CML_RETURN_IF_ERROR(open_record_into(ch, {}, deadline));
            CML_RETURN_IF_ERROR(rx.advance_key(suite_));
            continue;
          }
          if (ch.type != MsgType::kTensorChunk) {
            return protocol_error("channel: " + std::string(msg_type_name(ch.type)) + " inside a chunked tensor");
          }
          const bool last = (ch.flags & flags::kMore) == 0;
          if (n == 0 || n > t.data.size() - filled || (last && n != t.data.size() - filled) ||
              (!last && n == t.data.size() - filled)) {
            return protocol_error("channel: tensor chunk of " + std::to_string(n) + " bytes does not fit (" +
                                  std::to_string(t.data.size() - filled) + " bytes outstanding)");
          }
          CML_RETURN_IF_ERROR(open_record_into(ch, MutableByteSpan(t.data).subspan(filled, n), deadline));
          filled += n;
        }
        out.kind = Message::Kind::kTensor;
        return Status::ok();
      }
      case MsgType::kHello:
        break;
    }
    return protocol_error("channel: unexpected frame");
  }
}

}  // namespace cml::net
