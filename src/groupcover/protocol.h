// GroupCover worker protocol (docs/protocol.md §11). Every message is a small binary header
// (big-endian) plus an optional float32 payload, carried over a MessageLink (link.h):
//
//   header := magic u16 = 0x4743 ("GC") | type u8 | fields…
//   HELLO        TEE→W   version u16 | model digest [32] | n u32 | n × (out u32, in u32)
//   HELLO_OK     W→TEE   need_upload u8
//   UPLOAD       TEE→W   matrix u32 | row0 u32 | rows u32            payload rows × in floats
//   UPLOAD_DONE  TEE→W   —
//   READY        W→TEE   —
//   COMPUTE      TEE→W   request id u64 | rows u32 | n_parts u16 | n_parts × matrix u32
//                                                                  payload Σ_p rows × in_p floats
//   RESULT       W→TEE   request id u64 | rows u32                  payload Σ_p rows × out_p floats
//   ERROR        either  len u16 | UTF-8 text (≤ 1024)
//
// Decoders are bounded: they check the header length exactly, the counts against fixed limits and the
// registered model, and the payload length against what the header implies, before anything is used.
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "base/status.h"
#include "crypto/hash.h"

namespace cml::groupcover {

inline constexpr uint16_t kProtocolMagic = 0x4743;
inline constexpr uint16_t kProtocolVersion = 1;
inline constexpr uint32_t kMaxRequestRows = 1u << 16;
inline constexpr uint16_t kMaxRequestParts = 16;
inline constexpr uint64_t kMaxPayloadFloats = uint64_t(1) << 28;  // 1 GiB
inline constexpr size_t kMaxHeaderBytes = 16 + 8 * 65536 + 64;
inline constexpr uint32_t kMaxUploadFloats = 1u << 20;  // per UPLOAD message

enum class MsgType : uint8_t {
  kHello = 1,
  kHelloOk = 2,
  kUpload = 3,
  kUploadDone = 4,
  kReady = 5,
  kCompute = 6,
  kResult = 7,
  kError = 8,
};

// Shapes of a model's matrices as the worker registered them.
struct ModelShapes {
  std::vector<std::pair<uint32_t, uint32_t>> shapes;  // (out, in) per matrix
};

struct Hello {
  crypto::Digest256 digest{};
  ModelShapes model;
};
struct Upload {
  uint32_t matrix = 0, row0 = 0, rows = 0;
};
struct ComputeRequest {
  uint64_t id = 0;
  uint32_t rows = 0;
  std::vector<uint32_t> parts;  // matrix indices
};
struct ComputeResult {
  uint64_t id = 0;
  uint32_t rows = 0;
};

// Type of a header (INVALID_ARGUMENT if too short or wrong magic).
Result<MsgType> peek_type(ByteSpan header);

Bytes encode_hello(const Hello& h);
Bytes encode_hello_ok(bool need_upload);
Bytes encode_upload(const Upload& u);
Bytes encode_simple(MsgType t);  // UPLOAD_DONE, READY
Bytes encode_compute(const ComputeRequest& r);
Bytes encode_result(const ComputeResult& r);
Bytes encode_error(std::string_view text);

Result<Hello> decode_hello(ByteSpan header);
Result<bool> decode_hello_ok(ByteSpan header);
// Checks the matrix index and row range against `model` and the payload length.
Result<Upload> decode_upload(ByteSpan header, const ModelShapes& model, uint64_t payload_floats);
Status decode_simple(ByteSpan header, MsgType expected);
// Checks the part indices against `model` and payload_floats == Σ rows × in_p.
Result<ComputeRequest> decode_compute(ByteSpan header, const ModelShapes& model, uint64_t payload_floats);
// Checks payload_floats == rows × Σ out_p for the request it answers.
Result<ComputeResult> decode_result(ByteSpan header, const ComputeRequest& req, const ModelShapes& model,
                                    uint64_t payload_floats);
Result<std::string> decode_error(ByteSpan header);

}  // namespace cml::groupcover
