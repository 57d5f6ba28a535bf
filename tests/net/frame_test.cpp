#include "net/frame.h"

#include <gtest/gtest.h>

#include "net_test_util.h"

namespace cml::net {
namespace {

const MsgType kAllTypes[] = {MsgType::kHello,    MsgType::kData,   MsgType::kError,       MsgType::kHeartbeat,
                             MsgType::kShutdown, MsgType::kTensor, MsgType::kTensorChunk, MsgType::kKeyUpdate};

TEST(Frame, HeaderRoundTripEveryType) {
  for (MsgType t : kAllTypes) {
    for (uint8_t f : {uint8_t{0}, flags::kEncrypted, uint8_t(flags::kEncrypted | flags::kTensor | flags::kMore)}) {
      FrameHeader h{t, f, 0xDEADBEEF, 1234};
      auto bytes = encode_frame_header(h);
      auto back = decode_frame_header(bytes);
      NET_ASSERT_OK(back);
      EXPECT_EQ(*back, h) << msg_type_name(t);
    }
  }
}

TEST(Frame, WholeFrameRoundTripEveryType) {
  const Bytes payload = to_bytes("payload bytes");
  for (MsgType t : kAllTypes) {
    Bytes f = encode_frame({t, flags::kEncrypted, 3, 0}, payload);
    f.push_back(0xAA);  // a following frame's first byte
    size_t consumed = 0;
    auto d = decode_frame(f, kMaxFramePayload, &consumed);
    NET_ASSERT_OK(d);
    EXPECT_EQ(d->header.type, t);
    EXPECT_EQ(d->header.payload_len, payload.size());
    EXPECT_EQ(Bytes(d->payload.begin(), d->payload.end()), payload);
    EXPECT_EQ(consumed, kFrameHeaderSize + payload.size());
  }
}

// The worked example of docs/protocol.md §2: a Data record, flags ENCRYPTED, sequence 7, 21-byte payload
// ("hello" sealed: 5 bytes of ciphertext and a 16-byte tag).
TEST(Frame, ProtocolDocWorkedExample) {
  FrameHeader h{MsgType::kData, flags::kEncrypted, 7, 21};
  EXPECT_EQ(to_hex(encode_frame_header(h)), "cf4d0502010000000700000015");
  auto back = decode_frame_header(from_hex("cf4d0502010000000700000015").value());
  NET_ASSERT_OK(back);
  EXPECT_EQ(*back, h);
  // A chunked tensor's continuation with MORE set: flags 0x13.
  EXPECT_EQ(to_hex(encode_frame_header({MsgType::kTensorChunk, 0x13, 0x01020304, 0x00100010})),
            "cf4d0507130102030400100010");
}

TEST(Frame, RejectsWrongMagic) {
  auto b = encode_frame_header({MsgType::kData, 1, 0, 0});
  b[0] = 0xCE;
  NET_EXPECT_ERROR(decode_frame_header(b), StatusCode::kProtocol, "bad magic");
}

TEST(Frame, RejectsWrongVersion) {
  auto b = encode_frame_header({MsgType::kData, 1, 0, 0});
  for (uint8_t v : {0, 1, 4, 6, 255}) {
    b[2] = v;
    NET_EXPECT_ERROR(decode_frame_header(b), StatusCode::kProtocol, "unsupported protocol version");
  }
}

TEST(Frame, RejectsUnknownTypeAndFlags) {
  auto b = encode_frame_header({MsgType::kData, 1, 0, 0});
  for (uint8_t t : {0x00, 0x09, 0x7f, 0xff}) {
    b[3] = t;
    NET_EXPECT_ERROR(decode_frame_header(b), StatusCode::kProtocol, "unknown message type");
  }
  b[3] = 0x02;
  for (uint8_t f : {0x04, 0x08, 0x20, 0x80}) {
    b[4] = f;
    NET_EXPECT_ERROR(decode_frame_header(b), StatusCode::kProtocol, "unknown flag bits");
  }
}

TEST(Frame, RejectsOversizedBeforeAllocating) {
  auto b = encode_frame_header({MsgType::kData, 1, 0, 0xFFFFFFFF});
  NET_EXPECT_ERROR(decode_frame_header(b), StatusCode::kResourceExhausted, "exceeds the limit of 33554432");
  b = encode_frame_header({MsgType::kData, 1, 0, 4097});
  NET_EXPECT_ERROR(decode_frame_header(b, 4096), StatusCode::kResourceExhausted, "limit of 4096");
  NET_EXPECT_OK(decode_frame_header(encode_frame_header({MsgType::kData, 1, 0, 4096}), 4096));
  // A configured bound above the wire cap is clamped to it.
  b = encode_frame_header({MsgType::kData, 1, 0, kMaxFramePayload + 1});
  NET_EXPECT_ERROR(decode_frame_header(b, 0xFFFFFFFF), StatusCode::kResourceExhausted, "exceeds");
}

TEST(Frame, ShortInput) {
  const Bytes f = encode_frame({MsgType::kData, 1, 0, 0}, to_bytes("abcdef"));
  for (size_t n = 0; n < f.size(); ++n) {
    auto d = decode_frame(ByteSpan(f).first(n), kMaxFramePayload);
    EXPECT_EQ(d.status().code(), StatusCode::kInvalidArgument) << n;
  }
}

TEST(Frame, Sentinels) {
  std::string reason;
  EXPECT_EQ(classify_sentinel(as_bytes("END")), Sentinel::kEnd);
  EXPECT_EQ(classify_sentinel(as_bytes("ERR"), &reason), Sentinel::kErr);
  EXPECT_EQ(reason, "");
  EXPECT_EQ(classify_sentinel(make_err_sentinel("stage 2 failed"), &reason), Sentinel::kErr);
  EXPECT_EQ(reason, "stage 2 failed");
  EXPECT_EQ(classify_sentinel(as_bytes("END ")), Sentinel::kNone);
  EXPECT_EQ(classify_sentinel(as_bytes("ERR:")), Sentinel::kNone);
  EXPECT_EQ(classify_sentinel(as_bytes("end")), Sentinel::kNone);
  EXPECT_EQ(classify_sentinel(as_bytes("{\"op\":1}")), Sentinel::kNone);
  EXPECT_EQ(make_err_sentinel(std::string(5000, 'x')).size(), 4 + kMaxSentinelReason);
}

}  // namespace
}  // namespace cml::net
