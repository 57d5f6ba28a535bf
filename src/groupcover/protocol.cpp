#include "groupcover/protocol.h"

#include <cstring>

namespace cml::groupcover {
namespace {

ByteWriter start(MsgType t) {
  ByteWriter w;
  w.u16_be(kProtocolMagic);
  w.u8(uint8_t(t));
  return w;
}

Result<ByteReader> open(ByteSpan header, MsgType expected) {
  ByteReader r(header);
  CML_ASSIGN_OR_RETURN(uint16_t magic, r.u16_be("message magic"));
  if (magic != kProtocolMagic) return protocol_error("groupcover message: bad magic");
  CML_ASSIGN_OR_RETURN(uint8_t type, r.u8("message type"));
  if (type != uint8_t(expected))
    return protocol_error("groupcover message: expected type " + std::to_string(int(expected)) + ", got " +
                          std::to_string(int(type)));
  return r;
}

Status finish(const ByteReader& r, std::string_view what) {
  if (!r.empty()) return protocol_error(std::string(what) + ": trailing bytes");
  return ok_status();
}

}  // namespace

Result<MsgType> peek_type(ByteSpan header) {
  if (header.size() < 3) return protocol_error("groupcover message: header too short");
  if (load_u16_be(header.data()) != kProtocolMagic) return protocol_error("groupcover message: bad magic");
  const uint8_t t = header[2];
  if (t < uint8_t(MsgType::kHello) || t > uint8_t(MsgType::kError))
    return protocol_error("groupcover message: unknown type " + std::to_string(t));
  return MsgType(t);
}

Bytes encode_hello(const Hello& h) {
  ByteWriter w = start(MsgType::kHello);
  w.u16_be(kProtocolVersion);
  w.bytes(h.digest);
  w.u32_be(uint32_t(h.model.shapes.size()));
  for (auto [out, in] : h.model.shapes) {
    w.u32_be(out);
    w.u32_be(in);
  }
  return w.take();
}

Bytes encode_hello_ok(bool need_upload) {
  ByteWriter w = start(MsgType::kHelloOk);
  w.u8(need_upload ? 1 : 0);
  return w.take();
}

Bytes encode_upload(const Upload& u) {
  ByteWriter w = start(MsgType::kUpload);
  w.u32_be(u.matrix);
  w.u32_be(u.row0);
  w.u32_be(u.rows);
  return w.take();
}

Bytes encode_simple(MsgType t) {
  return start(t).take();
}

Bytes encode_compute(const ComputeRequest& r) {
  ByteWriter w = start(MsgType::kCompute);
  w.u64_be(r.id);
  w.u32_be(r.rows);
  w.u16_be(uint16_t(r.parts.size()));
  for (uint32_t p : r.parts) w.u32_be(p);
  return w.take();
}

Bytes encode_result(const ComputeResult& r) {
  ByteWriter w = start(MsgType::kResult);
  w.u64_be(r.id);
  w.u32_be(r.rows);
  return w.take();
}

Bytes encode_error(std::string_view text) {
  if (text.size() > 1024) text = text.substr(0, 1024);
  ByteWriter w = start(MsgType::kError);
  w.u16_be(uint16_t(text.size()));
  w.bytes(as_bytes(text));
  return w.take();
}

Result<Hello> decode_hello(ByteSpan header) {
  CML_ASSIGN_OR_RETURN(ByteReader r, open(header, MsgType::kHello));
  CML_ASSIGN_OR_RETURN(uint16_t version, r.u16_be("hello version"));
  if (version != kProtocolVersion) return protocol_error("groupcover hello: unsupported version");
  Hello h;
  CML_ASSIGN_OR_RETURN(ByteSpan d, r.take(32, "hello digest"));
  std::memcpy(h.digest.data(), d.data(), 32);
  CML_ASSIGN_OR_RETURN(uint32_t n, r.u32_be("hello matrix count"));
  if (n < 1 || n > 65536 || uint64_t(n) * 8 != r.remaining())
    return protocol_error("groupcover hello: matrix count does not match the header");
  for (uint32_t i = 0; i < n; ++i) {
    CML_ASSIGN_OR_RETURN(uint32_t out, r.u32_be("hello out"));
    CML_ASSIGN_OR_RETURN(uint32_t in, r.u32_be("hello in"));
    if (out < 1 || in < 1 || out > (1u << 22) || in > (1u << 22))
      return protocol_error("groupcover hello: matrix dimensions out of range");
    h.model.shapes.emplace_back(out, in);
  }
  return h;
}

Result<bool> decode_hello_ok(ByteSpan header) {
  CML_ASSIGN_OR_RETURN(ByteReader r, open(header, MsgType::kHelloOk));
  CML_ASSIGN_OR_RETURN(uint8_t need, r.u8("hello_ok flag"));
  if (need > 1) return protocol_error("groupcover hello_ok: bad flag");
  CML_RETURN_IF_ERROR(finish(r, "hello_ok"));
  return need == 1;
}

Result<Upload> decode_upload(ByteSpan header, const ModelShapes& model, uint64_t payload_floats) {
  CML_ASSIGN_OR_RETURN(ByteReader r, open(header, MsgType::kUpload));
  Upload u;
  CML_ASSIGN_OR_RETURN(u.matrix, r.u32_be("upload matrix"));
  CML_ASSIGN_OR_RETURN(u.row0, r.u32_be("upload row0"));
  CML_ASSIGN_OR_RETURN(u.rows, r.u32_be("upload rows"));
  CML_RETURN_IF_ERROR(finish(r, "upload"));
  if (u.matrix >= model.shapes.size()) return protocol_error("groupcover upload: unknown matrix");
  auto [out, in] = model.shapes[u.matrix];
  if (u.rows < 1 || u.row0 >= out || u.rows > out - u.row0) return protocol_error("groupcover upload: bad row range");
  if (uint64_t(u.rows) * in != payload_floats || payload_floats > kMaxUploadFloats)
    return protocol_error("groupcover upload: payload size does not match the rows");
  return u;
}

Status decode_simple(ByteSpan header, MsgType expected) {
  auto r = open(header, expected);
  if (!r.is_ok()) return r.status();
  return finish(*r, "message");
}

Result<ComputeRequest> decode_compute(ByteSpan header, const ModelShapes& model, uint64_t payload_floats) {
  CML_ASSIGN_OR_RETURN(ByteReader r, open(header, MsgType::kCompute));
  ComputeRequest q;
  CML_ASSIGN_OR_RETURN(q.id, r.u64_be("compute id"));
  CML_ASSIGN_OR_RETURN(q.rows, r.u32_be("compute rows"));
  CML_ASSIGN_OR_RETURN(uint16_t n, r.u16_be("compute parts"));
  if (q.rows < 1 || q.rows > kMaxRequestRows) return protocol_error("groupcover compute: row count out of range");
  if (n < 1 || n > kMaxRequestParts || size_t(n) * 4 != r.remaining())
    return protocol_error("groupcover compute: part count does not match the header");
  uint64_t expect = 0;
  for (uint16_t i = 0; i < n; ++i) {
    CML_ASSIGN_OR_RETURN(uint32_t m, r.u32_be("compute matrix"));
    if (m >= model.shapes.size()) return protocol_error("groupcover compute: unknown matrix " + std::to_string(m));
    expect += uint64_t(q.rows) * model.shapes[m].second;
    q.parts.push_back(m);
  }
  if (expect != payload_floats || payload_floats > kMaxPayloadFloats)
    return protocol_error("groupcover compute: payload size does not match rows × inputs");
  return q;
}

Result<ComputeResult> decode_result(ByteSpan header, const ComputeRequest& req, const ModelShapes& model,
                                    uint64_t payload_floats) {
  CML_ASSIGN_OR_RETURN(ByteReader r, open(header, MsgType::kResult));
  ComputeResult res;
  CML_ASSIGN_OR_RETURN(res.id, r.u64_be("result id"));
  CML_ASSIGN_OR_RETURN(res.rows, r.u32_be("result rows"));
  CML_RETURN_IF_ERROR(finish(r, "result"));
  if (res.id != req.id || res.rows != req.rows) return protocol_error("groupcover result: answers another request");
  uint64_t expect = 0;
  for (uint32_t m : req.parts) expect += uint64_t(req.rows) * model.shapes.at(m).first;
  if (expect != payload_floats) return protocol_error("groupcover result: payload size does not match the request");
  return res;
}

Result<std::string> decode_error(ByteSpan header) {
  CML_ASSIGN_OR_RETURN(ByteReader r, open(header, MsgType::kError));
  CML_ASSIGN_OR_RETURN(uint16_t len, r.u16_be("error length"));
  if (len > 1024) return protocol_error("groupcover error: text too long");
  CML_ASSIGN_OR_RETURN(ByteSpan t, r.take(len, "error text"));
  CML_RETURN_IF_ERROR(finish(r, "error"));
  std::string s(reinterpret_cast<const char*>(t.data()), t.size());
  for (char& c : s)
    if (static_cast<unsigned char>(c) < 0x20) c = '?';
  return s;
}

}  // namespace cml::groupcover
