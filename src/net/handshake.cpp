#include "net/handshake.h"

#include <algorithm>
#include <cstring>

#include "crypto/hkdf.h"
#include "net/frame.h"

namespace cml::net {

namespace {

constexpr uint32_t kMinRecordPayload = 4096;

bool known_suite(uint8_t v) {
  return v == static_cast<uint8_t>(crypto::AeadSuite::kChaCha20Poly1305) ||
         v == static_cast<uint8_t>(crypto::AeadSuite::kAes256Gcm);
}

void put_evidence(ByteWriter& w, const attest::Evidence* ev) {
  if (ev == nullptr) {
    w.u8(0);
    w.u32_be(0);
    return;
  }
  CML_CHECK(!ev->document.empty() && ev->document.size() <= attest::kMaxEvidenceSize);
  w.u8(static_cast<uint8_t>(ev->type));
  w.u32_be(static_cast<uint32_t>(ev->document.size()));
  w.bytes(ev->document);
}

// Reads evidence type and document; `required` says whether it must be present.
Status get_evidence(ByteReader& r, bool required, std::optional<attest::Evidence>& out) {
  CML_ASSIGN_OR_RETURN(uint8_t type, r.u8("evidence type"));
  CML_ASSIGN_OR_RETURN(uint32_t len, r.u32_be("evidence length"));
  if (!required) {
    if (type != 0 || len != 0) return protocol_error("handshake: evidence present in one-way mode");
    out.reset();
    return Status::ok();
  }
  if (type < 1 || type > 4) return protocol_error("handshake: unknown evidence type " + std::to_string(type));
  if (len == 0) return protocol_error("handshake: evidence missing");
  if (len > attest::kMaxEvidenceSize) {
    return resource_exhausted("handshake: evidence of " + std::to_string(len) + " bytes exceeds the limit of " +
                              std::to_string(attest::kMaxEvidenceSize));
  }
  CML_ASSIGN_OR_RETURN(ByteSpan doc, r.take(len, "evidence document"));
  out = attest::Evidence{static_cast<attest::EvidenceType>(type), Bytes(doc.begin(), doc.end())};
  return Status::ok();
}

Status check_max_record(uint32_t v) {
  if (v < kMinRecordPayload || v > kMaxFramePayload) {
    return protocol_error("handshake: max record payload " + std::to_string(v) + " outside [4096, 32 MiB]");
  }
  return Status::ok();
}

template <size_t N>
Status take_array(ByteReader& r, std::array<uint8_t, N>& out, std::string_view what) {
  CML_ASSIGN_OR_RETURN(ByteSpan b, r.take(N, what));
  std::memcpy(out.data(), b.data(), N);
  return Status::ok();
}

Status expect_code(ByteReader& r, uint8_t code, std::string_view name) {
  CML_ASSIGN_OR_RETURN(uint8_t got, r.u8("message code"));
  if (got != code) {
    return protocol_error("handshake: expected " + std::string(name) + ", got code " + std::to_string(got));
  }
  return Status::ok();
}

// public key ‖ nonce ‖ max_record_payload, common to both hellos.
Status get_hello_common(ByteReader& r, crypto::X25519PublicKey& pk, Nonce32& nonce, uint32_t& max_record) {
  CML_RETURN_IF_ERROR(take_array(r, pk, "public key"));
  CML_RETURN_IF_ERROR(take_array(r, nonce, "nonce"));
  CML_ASSIGN_OR_RETURN(max_record, r.u32_be("max record payload"));
  return check_max_record(max_record);
}

void tlv(Bytes& out, std::string_view label, ByteSpan value) {
  CML_CHECK(label.size() < 256 && value.size() < 65536);
  out.push_back(static_cast<uint8_t>(label.size()));
  out.insert(out.end(), label.begin(), label.end());
  out.push_back(static_cast<uint8_t>(value.size() >> 8));
  out.push_back(static_cast<uint8_t>(value.size()));
  out.insert(out.end(), value.begin(), value.end());
}

std::array<uint8_t, 4> be32(uint32_t v) {
  std::array<uint8_t, 4> b{};
  store_u32_be(b.data(), v);
  return b;
}

}  // namespace

Bytes encode_client_hello(const ClientHello& m) {
  CML_CHECK(!m.suites.empty() && m.suites.size() <= kMaxOfferedSuites);
  CML_CHECK((m.mode == HandshakeMode::kMutual) == m.evidence.has_value());
  Bytes storage;
  storage.reserve(128 + (m.evidence ? m.evidence->document.size() : 0));
  ByteWriter w(std::move(storage));
  w.u8(kClientHelloCode);
  w.u8(static_cast<uint8_t>(m.mode));
  w.bytes(m.public_key);
  w.bytes(m.nonce);
  w.u32_be(m.max_record_payload);
  w.u8(static_cast<uint8_t>(m.suites.size()));
  for (auto s : m.suites) w.u8(static_cast<uint8_t>(s));
  put_evidence(w, m.evidence ? &*m.evidence : nullptr);
  return w.take();
}

Bytes encode_server_hello(const ServerHello& m) {
  Bytes storage;
  storage.reserve(128 + m.evidence.document.size());
  ByteWriter w(std::move(storage));
  w.u8(kServerHelloCode);
  w.bytes(m.public_key);
  w.bytes(m.nonce);
  w.u32_be(m.max_record_payload);
  w.u8(static_cast<uint8_t>(m.suite));
  put_evidence(w, &m.evidence);
  return w.take();
}

Bytes encode_server_finished(const ServerFinished& m) {
  ByteWriter w;
  w.u8(kServerFinishedCode);
  w.bytes(m.finished);
  return w.take();
}

Bytes encode_client_finished(const ClientFinished& m) {
  ByteWriter w;
  w.u8(kClientFinishedCode);
  w.bytes(m.finished);
  return w.take();
}

Result<ClientHello> parse_client_hello(ByteSpan payload) {
  ByteReader r(payload);
  CML_RETURN_IF_ERROR(expect_code(r, kClientHelloCode, "ClientHello"));
  ClientHello m;
  CML_ASSIGN_OR_RETURN(uint8_t mode, r.u8("mode"));
  if (mode > 1) return protocol_error("handshake: unknown mode " + std::to_string(mode));
  m.mode = static_cast<HandshakeMode>(mode);
  CML_RETURN_IF_ERROR(get_hello_common(r, m.public_key, m.nonce, m.max_record_payload));
  CML_ASSIGN_OR_RETURN(uint8_t n, r.u8("suite count"));
  if (n == 0 || n > kMaxOfferedSuites) return protocol_error("handshake: offers " + std::to_string(n) + " suites");
  for (uint8_t i = 0; i < n; ++i) {
    CML_ASSIGN_OR_RETURN(uint8_t s, r.u8("suite"));
    if (!known_suite(s)) return protocol_error("handshake: unknown AEAD suite " + std::to_string(s));
    const auto suite = static_cast<crypto::AeadSuite>(s);
    if (std::find(m.suites.begin(), m.suites.end(), suite) != m.suites.end()) {
      return protocol_error("handshake: suite offered twice");
    }
    m.suites.push_back(suite);
  }
  CML_RETURN_IF_ERROR(get_evidence(r, m.mode == HandshakeMode::kMutual, m.evidence));
  CML_RETURN_IF_ERROR(r.expect_end("ClientHello"));
  return m;
}

Result<ServerHello> parse_server_hello(ByteSpan payload) {
  ByteReader r(payload);
  CML_RETURN_IF_ERROR(expect_code(r, kServerHelloCode, "ServerHello"));
  ServerHello m;
  CML_RETURN_IF_ERROR(get_hello_common(r, m.public_key, m.nonce, m.max_record_payload));
  CML_ASSIGN_OR_RETURN(uint8_t s, r.u8("suite"));
  if (!known_suite(s)) return protocol_error("handshake: unknown AEAD suite " + std::to_string(s));
  m.suite = static_cast<crypto::AeadSuite>(s);
  std::optional<attest::Evidence> ev;
  CML_RETURN_IF_ERROR(get_evidence(r, true, ev));
  m.evidence = std::move(*ev);
  CML_RETURN_IF_ERROR(r.expect_end("ServerHello"));
  return m;
}

namespace {
// Both Finished messages: code ‖ finished (32 bytes), nothing after.
template <typename M>
Result<M> parse_finished_message(ByteSpan payload, uint8_t code, std::string_view name) {
  ByteReader r(payload);
  CML_RETURN_IF_ERROR(expect_code(r, code, name));
  M m;
  CML_RETURN_IF_ERROR(take_array(r, m.finished, "finished"));
  CML_RETURN_IF_ERROR(r.expect_end(name));
  return m;
}
}  // namespace

Result<ServerFinished> parse_server_finished(ByteSpan payload) {
  return parse_finished_message<ServerFinished>(payload, kServerFinishedCode, "ServerFinished");
}

Result<ClientFinished> parse_client_finished(ByteSpan payload) {
  return parse_finished_message<ClientFinished>(payload, kClientFinishedCode, "ClientFinished");
}

Nonce32 responder_evidence_nonce(const Nonce32& initiator_nonce, const Nonce32& responder_nonce) {
  crypto::Sha256 h;
  h.update(as_bytes("cml-v5 responder evidence nonce"));
  h.update(initiator_nonce);
  h.update(responder_nonce);
  return h.finish();
}

crypto::Digest256 transcript_hash(const ClientHello& ch, const ServerHello& sh) {
  Bytes t;
  t.reserve(512);
  const uint8_t version = kProtocolVersion;
  const uint8_t mode = static_cast<uint8_t>(ch.mode);
  const uint8_t chosen = static_cast<uint8_t>(sh.suite);
  Bytes offered;
  for (auto s : ch.suites) offered.push_back(static_cast<uint8_t>(s));
  tlv(t, "protocol-version", ByteSpan(&version, 1));
  tlv(t, "mode", ByteSpan(&mode, 1));
  tlv(t, "offered-suites", offered);
  tlv(t, "chosen-suite", ByteSpan(&chosen, 1));
  tlv(t, "init-pk", ch.public_key);
  tlv(t, "init-nonce", ch.nonce);
  tlv(t, "init-max-record", be32(ch.max_record_payload));
  const uint8_t init_type = ch.evidence ? static_cast<uint8_t>(ch.evidence->type) : 0;
  tlv(t, "init-evidence-type", ByteSpan(&init_type, 1));
  if (ch.evidence) {
    tlv(t, "init-evidence-hash", crypto::sha256(ch.evidence->document));
  } else {
    tlv(t, "init-evidence-hash", {});
  }
  tlv(t, "resp-pk", sh.public_key);
  tlv(t, "resp-nonce", sh.nonce);
  tlv(t, "resp-max-record", be32(sh.max_record_payload));
  const uint8_t resp_type = static_cast<uint8_t>(sh.evidence.type);
  tlv(t, "resp-evidence-type", ByteSpan(&resp_type, 1));
  tlv(t, "resp-evidence-hash", crypto::sha256(sh.evidence.document));
  return crypto::sha256(t);
}

Result<KeySchedule> derive_key_schedule(ByteSpan shared_secret, const crypto::Digest256& transcript) {
  CML_ASSIGN_OR_RETURN(crypto::SecretBytes prk, crypto::hkdf_sha256_extract(transcript, shared_secret));
  CML_ASSIGN_OR_RETURN(crypto::HkdfExpander x, crypto::HkdfExpander::create(prk.span()));
  KeySchedule ks;
  CML_ASSIGN_OR_RETURN(ks.key_i2r, x.expand(as_bytes("cml-v5 key i2r"), 32));
  CML_ASSIGN_OR_RETURN(ks.key_r2i, x.expand(as_bytes("cml-v5 key r2i"), 32));
  CML_ASSIGN_OR_RETURN(ks.finished_init, x.expand(as_bytes("cml-v5 finished init"), 32));
  CML_ASSIGN_OR_RETURN(ks.finished_resp, x.expand(as_bytes("cml-v5 finished resp"), 32));
  CML_ASSIGN_OR_RETURN(crypto::SecretBytes sid, x.expand(as_bytes("cml-v5 session id"), 32));
  std::memcpy(ks.session_id.data(), sid.data(), kSessionIdSize);
  return ks;
}

std::array<uint8_t, kFinishedSize> compute_finished(const crypto::SecretBytes& finished_key,
                                                    const crypto::Digest256& transcript) {
  return crypto::hmac_sha256(finished_key.span(), transcript);
}

Result<crypto::SecretBytes> next_traffic_key(const crypto::SecretBytes& current) {
  return crypto::hkdf_sha256_expand(current.span(), as_bytes("cml-v5 key update"), 32);
}

}  // namespace cml::net
