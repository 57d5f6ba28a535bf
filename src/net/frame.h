// Frame codec: the 13-byte big-endian frame header every message on the wire starts with.
//
//   offset size field        rule
//   0      2    magic        0xCF4D
//   2      1    version      kProtocolVersion
//   3      1    msg_type     MsgType (unknown values are refused)
//   4      1    flags        FrameFlags bits (unknown bits are refused)
//   5      4    seq          u32: handshake message index, or the low 32 bits of the record sequence
//   9      4    payload_len  u32: bytes that follow the header (ciphertext and tag for records)
//
// The decoder checks magic, version, type, flags and payload_len against the caller's bound *before*
// anything is allocated for the payload; nothing here ever allocates what a header claims.
// docs/protocol.md is the normative description; this header mirrors it.
//
// Thread safety: pure functions on values; callable from any thread.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "base/bytes.h"
#include "base/status.h"

namespace cml::net {

constexpr uint16_t kFrameMagic = 0xCF4D;
// Version 5: the reference v4 frame and tensor layout with this project's handshake and record layer
// (suite negotiation, two-way key confirmation, strict sequences, chunked tensors, key update).
constexpr uint8_t kProtocolVersion = 5;
constexpr size_t kFrameHeaderSize = 13;
// Hard wire cap on payload_len; a configuration may only lower it.
constexpr uint32_t kMaxFramePayload = 32u * 1024 * 1024;

enum class MsgType : uint8_t {
  kHello = 0x01,        // handshake message (plaintext; first payload byte names which one)
  kData = 0x02,         // opaque application bytes (control JSON, END/ERR sentinels)
  kError = 0x03,        // sender is aborting the session; payload is a UTF-8 reason
  kHeartbeat = 0x04,    // liveness; empty payload
  kShutdown = 0x05,     // clean end of the sender's direction; empty payload
  kTensor = 0x06,       // tensor sub-header (+ data, or the first data bytes)
  kTensorChunk = 0x07,  // continuation of the tensor begun by the last kTensor frame
  kKeyUpdate = 0x08,    // the sender's next record uses the next key of this direction
};
std::string_view msg_type_name(MsgType t);
bool is_known_msg_type(uint8_t v);

// Flag bits. Unknown bits make a frame invalid.
namespace flags {
constexpr uint8_t kEncrypted = 0x01;  // payload is AEAD ciphertext ‖ tag (every post-handshake frame)
constexpr uint8_t kTensor = 0x02;     // payload belongs to a tensor (kTensor, kTensorChunk)
constexpr uint8_t kMore = 0x10;       // more kTensorChunk frames of the same tensor follow
constexpr uint8_t kKnownMask = kEncrypted | kTensor | kMore;
}  // namespace flags

struct FrameHeader {
  MsgType type = MsgType::kData;
  uint8_t flags = 0;
  uint32_t seq = 0;
  uint32_t payload_len = 0;

  bool operator==(const FrameHeader&) const = default;
};

using FrameHeaderBytes = std::array<uint8_t, kFrameHeaderSize>;

// Writes the 13 header bytes (magic and version included) into out[0..13).
void encode_frame_header(const FrameHeader& h, uint8_t* out);
FrameHeaderBytes encode_frame_header(const FrameHeader& h);

// Parses exactly 13 bytes. INVALID_ARGUMENT for a short buffer, PROTOCOL for wrong magic, version,
// type or flags, RESOURCE_EXHAUSTED when payload_len exceeds max_payload (which is itself clamped to
// kMaxFramePayload).
Result<FrameHeader> decode_frame_header(ByteSpan bytes, uint32_t max_payload = kMaxFramePayload);

// A whole frame in one buffer: header ‖ payload. For tests, fuzzing and the handshake.
Bytes encode_frame(const FrameHeader& h, ByteSpan payload);  // h.payload_len is set from payload
struct DecodedFrame {
  FrameHeader header;
  ByteSpan payload;  // view into the input
};
// Decodes one complete frame from the front of `bytes` (no allocation). `consumed` receives the frame's
// total size. INVALID_ARGUMENT if the buffer holds less than a whole frame.
Result<DecodedFrame> decode_frame(ByteSpan bytes, uint32_t max_payload, size_t* consumed = nullptr);

// Data-plane sentinels (Data frames with these exact payloads; see docs/protocol.md "Sentinels").
// END closes a micro-batch: the tensors before it form one unit. ERR aborts the current request; it may
// carry a reason: "ERR" or "ERR:" followed by at most kMaxSentinelReason bytes of UTF-8.
constexpr std::string_view kEndSentinel = "END";
constexpr std::string_view kErrSentinel = "ERR";
constexpr size_t kMaxSentinelReason = 1024;
enum class Sentinel { kNone, kEnd, kErr };
// Classifies a Data payload; `reason` (optional) receives the ERR reason.
Sentinel classify_sentinel(ByteSpan data, std::string* reason = nullptr);
Bytes make_err_sentinel(std::string_view reason);

}  // namespace cml::net
