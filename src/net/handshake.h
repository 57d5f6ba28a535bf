// Handshake messages, transcript and key schedule of the SecureChannel (protocol version 5).
//
// SecureChannel (secure_channel.h) drives these; they are public so that tests, fuzzers and other
// implementations can check every byte. docs/protocol.md §4 is the normative description.
//
//   M1 ClientHello    initiator → responder   Hello frame, seq 0
//   M2 ServerHello    responder → initiator   Hello frame, seq 1 (sent before the responder derives)
//   M3 ServerFinished responder → initiator   Hello frame, seq 2 (the responder's Finished)
//   M4 ClientFinished initiator → responder   Hello frame, seq 3 (the initiator's Finished)
//
// M2 goes out before the responder computes its X25519 shared secret, so both sides derive at once.
//
// Thread safety: pure functions on values.
#pragma once

#include <array>
#include <optional>
#include <vector>

#include "attest/attest.h"
#include "base/bytes.h"
#include "base/status.h"
#include "crypto/aead.h"
#include "crypto/hash.h"
#include "crypto/secret.h"
#include "crypto/x25519.h"

namespace cml::net {

constexpr size_t kHandshakeNonceSize = 32;
constexpr size_t kFinishedSize = 32;
constexpr size_t kSessionIdSize = 32;
constexpr size_t kMaxOfferedSuites = 8;
// Largest handshake payload: fixed fields + one evidence document of attest::kMaxEvidenceSize.
constexpr uint32_t kMaxHandshakePayload = 1024 + attest::kMaxEvidenceSize;

using Nonce32 = std::array<uint8_t, kHandshakeNonceSize>;
using SessionId = std::array<uint8_t, kSessionIdSize>;

enum class HandshakeMode : uint8_t {
  kMutual = 0,  // both sides attest
  kOneWay = 1,  // only the responder attests; the initiator sends no evidence
};

// Message codes (first payload byte of a Hello frame).
constexpr uint8_t kClientHelloCode = 0x01;
constexpr uint8_t kServerHelloCode = 0x02;
constexpr uint8_t kClientFinishedCode = 0x03;
constexpr uint8_t kServerFinishedCode = 0x04;

// Frame seq of each handshake message (its index, docs/protocol.md §4.1). A side that refuses sends
// its Error frame with the seq of the message it would have sent next.
constexpr uint32_t kClientHelloSeq = 0;
constexpr uint32_t kServerHelloSeq = 1;
constexpr uint32_t kServerFinishedSeq = 2;
constexpr uint32_t kClientFinishedSeq = 3;

struct ClientHello {
  HandshakeMode mode = HandshakeMode::kMutual;
  crypto::X25519PublicKey public_key{};
  Nonce32 nonce{};
  uint32_t max_record_payload = 0;           // largest frame payload the initiator accepts
  std::vector<crypto::AeadSuite> suites;     // preference order, 1..kMaxOfferedSuites, no duplicates
  std::optional<attest::Evidence> evidence;  // present iff mode == kMutual
};

struct ServerHello {
  crypto::X25519PublicKey public_key{};
  Nonce32 nonce{};
  uint32_t max_record_payload = 0;
  crypto::AeadSuite suite = crypto::AeadSuite::kAes256Gcm;
  attest::Evidence evidence;
};

struct ServerFinished {
  std::array<uint8_t, kFinishedSize> finished{};  // responder's key confirmation
};

struct ClientFinished {
  std::array<uint8_t, kFinishedSize> finished{};  // initiator's key confirmation
};

Bytes encode_client_hello(const ClientHello& m);
Bytes encode_server_hello(const ServerHello& m);
Bytes encode_server_finished(const ServerFinished& m);
Bytes encode_client_finished(const ClientFinished& m);
// Canonical parsers of untrusted payloads: exact lengths, no trailing bytes, known codes only.
// INVALID_ARGUMENT for malformed bytes, PROTOCOL for a wrong message code or unknown suite/mode.
Result<ClientHello> parse_client_hello(ByteSpan payload);
Result<ServerHello> parse_server_hello(ByteSpan payload);
Result<ServerFinished> parse_server_finished(ByteSpan payload);
Result<ClientFinished> parse_client_finished(ByteSpan payload);

// The nonce the responder's evidence must bind: SHA-256("cml-v5 responder evidence nonce" ‖ n_i ‖ n_r).
// Binding the initiator's nonce proves to the initiator that the evidence is fresh.
Nonce32 responder_evidence_nonce(const Nonce32& initiator_nonce, const Nonce32& responder_nonce);

// Transcript hash: SHA-256 over labelled items label_len(u8) ‖ label ‖ value_len(u16 BE) ‖ value, in the
// order of docs/protocol.md §4.4. Covers version, mode, both keys, nonces, record limits, the offered
// suites and the chosen one, and the type and SHA-256 of both evidence documents.
crypto::Digest256 transcript_hash(const ClientHello& ch, const ServerHello& sh);

struct KeySchedule {
  crypto::SecretBytes key_i2r;        // AEAD key, initiator → responder (epoch 0)
  crypto::SecretBytes key_r2i;        // AEAD key, responder → initiator (epoch 0)
  crypto::SecretBytes finished_init;  // HMAC key for the initiator's Finished
  crypto::SecretBytes finished_resp;  // HMAC key for the responder's Finished
  SessionId session_id{};
};
// PRK = HKDF-Extract(salt = transcript hash, IKM = X25519 shared secret); each output is
// HKDF-Expand(PRK, label, 32) with the labels of docs/protocol.md §4.5.
Result<KeySchedule> derive_key_schedule(ByteSpan shared_secret, const crypto::Digest256& transcript);
// HMAC-SHA256(finished key, transcript hash).
std::array<uint8_t, kFinishedSize> compute_finished(const crypto::SecretBytes& finished_key,
                                                    const crypto::Digest256& transcript);
// Next key of a direction after a KeyUpdate: HKDF-Expand(current key, "cml-v5 key update", 32).
Result<crypto::SecretBytes> next_traffic_key(const crypto::SecretBytes& current);

}  // namespace cml::net
