#include "net/frame.h"

#include <algorithm>
#include <cstring>
#include <string>

namespace cml::net {

std::string_view msg_type_name(MsgType t) {
  switch (t) {
    case MsgType::kHello:
      return "Hello";
    case MsgType::kData:
      return "Data";
    case MsgType::kError:
      return "Error";
    case MsgType::kHeartbeat:
      return "Heartbeat";
    case MsgType::kShutdown:
      return "Shutdown";
    case MsgType::kTensor:
      return "Tensor";
    case MsgType::kTensorChunk:
      return "TensorChunk";
    case MsgType::kKeyUpdate:
      return "KeyUpdate";
  }
  return "unknown";
}

bool is_known_msg_type(uint8_t v) {
  return v >= 0x01 && v <= 0x08;
}

void encode_frame_header(const FrameHeader& h, uint8_t* out) {
  store_u16_be(out, kFrameMagic);
  out[2] = kProtocolVersion;
  out[3] = static_cast<uint8_t>(h.type);
  out[4] = h.flags;
  store_u32_be(out + 5, h.seq);
  store_u32_be(out + 9, h.payload_len);
}

FrameHeaderBytes encode_frame_header(const FrameHeader& h) {
  FrameHeaderBytes b{};
  encode_frame_header(h, b.data());
  return b;
}

Result<FrameHeader> decode_frame_header(ByteSpan bytes, uint32_t max_payload) {
  if (bytes.size() < kFrameHeaderSize) {
    return invalid_argument("frame header: need 13 bytes, have " + std::to_string(bytes.size()));
  }
  const uint8_t* p = bytes.data();
  const uint16_t magic = load_u16_be(p);
  if (magic != kFrameMagic) {
    return protocol_error("frame header: bad magic 0x" + to_hex(bytes.first(2)) + " (expected 0xcf4d)");
  }
  if (p[2] != kProtocolVersion) {
    return protocol_error("frame header: unsupported protocol version " + std::to_string(p[2]) + " (expected " +
                          std::to_string(kProtocolVersion) + ")");
  }
  if (!is_known_msg_type(p[3])) {
    return protocol_error("frame header: unknown message type 0x" + to_hex(bytes.subspan(3, 1)));
  }
  if ((p[4] & ~flags::kKnownMask) != 0) {
    return protocol_error("frame header: unknown flag bits 0x" + to_hex(bytes.subspan(4, 1)));
  }
  FrameHeader h;
  h.type = static_cast<MsgType>(p[3]);
  h.flags = p[4];
  h.seq = load_u32_be(p + 5);
  h.payload_len = load_u32_be(p + 9);
  const uint32_t bound = std::min(max_payload, kMaxFramePayload);
  if (h.payload_len > bound) {
    return resource_exhausted("frame header: payload of " + std::to_string(h.payload_len) +
                              " bytes exceeds the limit of " + std::to_string(bound));
  }
  return h;
}

Bytes encode_frame(const FrameHeader& h, ByteSpan payload) {
  CML_CHECK(payload.size() <= kMaxFramePayload);
  FrameHeader hh = h;
  hh.payload_len = static_cast<uint32_t>(payload.size());
  Bytes out(kFrameHeaderSize + payload.size());
  encode_frame_header(hh, out.data());
  if (!payload.empty()) std::memcpy(out.data() + kFrameHeaderSize, payload.data(), payload.size());
  return out;
}

Result<DecodedFrame> decode_frame(ByteSpan bytes, uint32_t max_payload, size_t* consumed) {
  CML_ASSIGN_OR_RETURN(FrameHeader h, decode_frame_header(bytes, max_payload));
  const size_t total = kFrameHeaderSize + size_t{h.payload_len};
  if (bytes.size() < total) {
    return invalid_argument("frame: payload truncated (" + std::to_string(bytes.size() - kFrameHeaderSize) + " of " +
                            std::to_string(h.payload_len) + " bytes)");
  }
  if (consumed) *consumed = total;
  return DecodedFrame{h, bytes.subspan(kFrameHeaderSize, h.payload_len)};
}

Sentinel classify_sentinel(ByteSpan data, std::string* reason) {
  const std::string_view s = as_string_view(data);
  if (s == kEndSentinel) return Sentinel::kEnd;
  if (s == kErrSentinel) {
    if (reason) reason->clear();
    return Sentinel::kErr;
  }
  if (s.size() > 4 && s.size() <= 4 + kMaxSentinelReason && s.substr(0, 4) == "ERR:") {
    if (reason) *reason = std::string(s.substr(4));
    return Sentinel::kErr;
  }
  return Sentinel::kNone;
}

Bytes make_err_sentinel(std::string_view reason) {
  if (reason.empty()) return to_bytes(kErrSentinel);
  std::string s = "ERR:";
  s.append(reason.substr(0, kMaxSentinelReason));
  return to_bytes(s);
}

}  // namespace cml::net
