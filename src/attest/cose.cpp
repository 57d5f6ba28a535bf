#include "attest/cose.h"

#include <vector>

#include "attest/attest.h"

namespace cml::attest::cose {

namespace {

// Streaming precheck: each libcbor callback records one event; the loop below keeps a stack of open
// containers and their remaining element counts.
enum class Ev { kNone, kItem, kArray, kMap, kIndef, kBreak, kTag };
struct Pre {
  Ev ev = Ev::kNone;
  uint64_t size = 0;
};

void on_item(void* c) {
  static_cast<Pre*>(c)->ev = Ev::kItem;
}
void on_u8(void* c, uint8_t) {
  on_item(c);
}
void on_u16(void* c, uint16_t) {
  on_item(c);
}
void on_u32(void* c, uint32_t) {
  on_item(c);
}
void on_u64(void* c, uint64_t) {
  on_item(c);
}
void on_str(void* c, cbor_data, size_t) {
  on_item(c);
}
void on_float(void* c, float) {
  on_item(c);
}
void on_double(void* c, double) {
  on_item(c);
}
void on_bool(void* c, bool) {
  on_item(c);
}
void on_indef(void* c) {
  static_cast<Pre*>(c)->ev = Ev::kIndef;
}
void on_break(void* c) {
  static_cast<Pre*>(c)->ev = Ev::kBreak;
}
void on_tag(void* c, uint64_t) {
  static_cast<Pre*>(c)->ev = Ev::kTag;
}
void on_array(void* c, size_t n) {
  auto* p = static_cast<Pre*>(c);
  p->ev = Ev::kArray;
  p->size = n;
}
void on_map(void* c, size_t n) {
  auto* p = static_cast<Pre*>(c);
  p->ev = Ev::kMap;
  p->size = n;
}

cbor_callbacks make_callbacks() {
  cbor_callbacks cb = cbor_empty_callbacks;
  cb.uint8 = on_u8;
  cb.uint16 = on_u16;
  cb.uint32 = on_u32;
  cb.uint64 = on_u64;
  cb.negint8 = on_u8;
  cb.negint16 = on_u16;
  cb.negint32 = on_u32;
  cb.negint64 = on_u64;
  cb.byte_string = on_str;
  cb.string = on_str;
  cb.byte_string_start = on_indef;
  cb.string_start = on_indef;
  cb.indef_array_start = on_indef;
  cb.indef_map_start = on_indef;
  cb.array_start = on_array;
  cb.map_start = on_map;
  cb.tag = on_tag;
  cb.float2 = on_float;
  cb.float4 = on_float;
  cb.float8 = on_double;
  cb.undefined = on_item;
  cb.null = on_item;
  cb.boolean = on_bool;
  cb.indef_break = on_break;
  return cb;
}

}  // namespace

Status precheck_cbor(ByteSpan data, size_t max_depth) {
  static const cbor_callbacks kCallbacks = make_callbacks();
  if (data.empty()) return invalid_argument("empty CBOR input");
  if (data.size() > kMaxEvidenceSize) return invalid_argument("CBOR input larger than the evidence limit");
  constexpr int64_t kIndefinite = -1;
  std::vector<int64_t> open;  // remaining elements per open container (-1 = indefinite)
  uint64_t declared = 0;
  size_t pos = 0;
  bool top_done = false;
  bool pending_tag = false;
  // Containers take their parent's slot when they open, so closing one only pops.
  auto pop_completed = [&]() {
    while (!open.empty() && open.back() == 0) open.pop_back();
    if (open.empty()) top_done = true;
  };
  auto consume_slot = [&]() {
    if (!open.empty() && open.back() > 0) --open.back();
    pop_completed();
  };
  while (pos < data.size()) {
    if (top_done) return invalid_argument("trailing bytes after CBOR item");
    Pre pre;
    cbor_decoder_result r = cbor_stream_decode(data.data() + pos, data.size() - pos, &kCallbacks, &pre);
    if (r.status != CBOR_DECODER_FINISHED || r.read == 0) return invalid_argument("malformed or truncated CBOR");
    pos += r.read;
    const uint64_t remaining = data.size() - pos;
    switch (pre.ev) {
      case Ev::kItem:
        pending_tag = false;
        consume_slot();
        break;
      case Ev::kTag:
        if (pending_tag) return invalid_argument("nested CBOR tags are not accepted");
        pending_tag = true;
        break;
      case Ev::kArray:
      case Ev::kMap: {
        pending_tag = false;
        const uint64_t items = pre.ev == Ev::kMap ? 2 * pre.size : pre.size;
        if (pre.size > remaining || items > remaining) return invalid_argument("CBOR container longer than its input");
        declared += items;
        if (declared > data.size()) return invalid_argument("CBOR declares more elements than its input holds");
        if (items == 0) {
          consume_slot();
          break;
        }
        if (open.size() >= max_depth) return invalid_argument("CBOR nested too deeply");
        if (!open.empty() && open.back() > 0) --open.back();  // the container fills its parent's slot
        open.push_back(static_cast<int64_t>(items));
        break;
      }
      case Ev::kIndef:
        pending_tag = false;
        if (open.size() >= max_depth) return invalid_argument("CBOR nested too deeply");
        if (!open.empty() && open.back() > 0) --open.back();
        open.push_back(kIndefinite);
        break;
      case Ev::kBreak:
        if (open.empty() || open.back() != kIndefinite) return invalid_argument("unexpected CBOR break");
        open.pop_back();
        pop_completed();
        break;
      case Ev::kNone:
        return invalid_argument("unsupported CBOR item");
    }
  }
  if (!top_done || !open.empty() || pending_tag) return invalid_argument("truncated CBOR item");
  return ok_status();
}

Result<CborPtr> decode(ByteSpan data) {
  CML_RETURN_IF_ERROR(precheck_cbor(data));
  cbor_load_result res;
  cbor_item_t* item = cbor_load(data.data(), data.size(), &res);
  if (!item || res.error.code != CBOR_ERR_NONE) {
    if (item) cbor_decref(&item);
    return invalid_argument("CBOR decoding failed");
  }
  if (res.read != data.size()) {
    cbor_decref(&item);
    return invalid_argument("trailing bytes after CBOR item");
  }
  return CborPtr(item);
}

Result<Bytes> get_bytes(const cbor_item_t* item, std::string_view what) {
  if (!item || !cbor_isa_bytestring(item)) return invalid_argument(std::string(what) + " is not a byte string");
  auto* it = const_cast<cbor_item_t*>(item);
  if (cbor_bytestring_is_definite(it)) {
    const uint8_t* p = cbor_bytestring_handle(it);
    return Bytes(p, p + cbor_bytestring_length(it));
  }
  Bytes out;
  cbor_item_t** chunks = cbor_bytestring_chunks_handle(it);
  for (size_t i = 0; i < cbor_bytestring_chunk_count(it); ++i) {
    const uint8_t* p = cbor_bytestring_handle(chunks[i]);
    out.insert(out.end(), p, p + cbor_bytestring_length(chunks[i]));
  }
  return out;
}

Result<std::string> get_text(const cbor_item_t* item, std::string_view what) {
  if (!item || !cbor_isa_string(item) || !cbor_string_is_definite(const_cast<cbor_item_t*>(item)))
    return invalid_argument(std::string(what) + " is not a text string");
  auto* it = const_cast<cbor_item_t*>(item);
  return std::string(reinterpret_cast<const char*>(cbor_string_handle(it)), cbor_string_length(it));
}

Result<uint64_t> get_uint(const cbor_item_t* item, std::string_view what) {
  if (!item || !cbor_isa_uint(item)) return invalid_argument(std::string(what) + " is not an unsigned integer");
  return cbor_get_int(item);
}

Result<int64_t> get_int(const cbor_item_t* item, std::string_view what) {
  if (item && cbor_isa_uint(item)) {
    uint64_t v = cbor_get_int(item);
    if (v > uint64_t(INT64_MAX)) return invalid_argument(std::string(what) + " out of range");
    return static_cast<int64_t>(v);
  }
  if (item && cbor_isa_negint(item)) {
    uint64_t v = cbor_get_int(item);
    if (v > uint64_t(INT64_MAX)) return invalid_argument(std::string(what) + " out of range");
    return -1 - static_cast<int64_t>(v);
  }
  return invalid_argument(std::string(what) + " is not an integer");
}

// cbor_is_null asserts (libcbor 0.8 is built with assertions) when the item is a float rather than a
// simple value, so the kind is checked first.
bool is_null(const cbor_item_t* item) {
  return item && cbor_isa_float_ctrl(item) && cbor_float_ctrl_is_ctrl(item) && cbor_is_null(item);
}

const cbor_item_t* map_find(const cbor_item_t* map, std::string_view key) {
  if (!map || !cbor_isa_map(map)) return nullptr;
  auto* m = const_cast<cbor_item_t*>(map);
  cbor_pair* pairs = cbor_map_handle(m);
  for (size_t i = 0; i < cbor_map_size(m); ++i) {
    const cbor_item_t* k = pairs[i].key;
    if (k && cbor_isa_string(k) && cbor_string_is_definite(pairs[i].key) &&
        std::string_view(reinterpret_cast<const char*>(cbor_string_handle(pairs[i].key)),
                         cbor_string_length(pairs[i].key)) == key)
      return pairs[i].value;
  }
  return nullptr;
}

Result<Sign1> parse_sign1(ByteSpan data) {
  Sign1 out;
  // Tag 18 in its one-byte form (0xd2) is stripped here: libcbor 0.8's decoder rejects tags 6..20 as
  // unassigned. Any other tag is handled (and checked) below.
  if (!data.empty() && data[0] == 0xd2) {
    out.tagged = true;
    data = data.subspan(1);
  }
  CML_ASSIGN_OR_RETURN(CborPtr root, decode(data));
  CborPtr inner;
  const cbor_item_t* arr = root.get();
  if (cbor_isa_tag(arr)) {
    if (cbor_tag_value(arr) != kTagCoseSign1) return invalid_argument("CBOR tag is not COSE_Sign1 (18)");
    out.tagged = true;
    inner.reset(cbor_tag_item(root.get()));  // cbor_tag_item returns a new reference
    arr = inner.get();
  }
  if (!cbor_isa_array(arr) || cbor_array_size(arr) != 4) return invalid_argument("COSE_Sign1 is not a 4-element array");
  cbor_item_t** f = cbor_array_handle(arr);
  CML_ASSIGN_OR_RETURN(out.protected_header, get_bytes(f[0], "COSE protected header"));
  if (!cbor_isa_map(f[1])) return invalid_argument("COSE unprotected header is not a map");
  if (is_null(f[2])) return invalid_argument("COSE_Sign1 has a detached (null) payload");
  CML_ASSIGN_OR_RETURN(out.payload, get_bytes(f[2], "COSE payload"));
  CML_ASSIGN_OR_RETURN(out.signature, get_bytes(f[3], "COSE signature"));
  if (!out.protected_header.empty()) {
    CML_ASSIGN_OR_RETURN(CborPtr hdr, decode(out.protected_header));
    if (!cbor_isa_map(hdr.get())) return invalid_argument("COSE protected header is not a map");
    cbor_pair* pairs = cbor_map_handle(hdr.get());
    for (size_t i = 0; i < cbor_map_size(hdr.get()); ++i) {
      auto label = get_int(pairs[i].key, "COSE header label");
      if (label && *label == 1) {
        CML_ASSIGN_OR_RETURN(int64_t alg, get_int(pairs[i].value, "COSE alg"));
        out.alg = alg;
      }
    }
  }
  return out;
}

CborWriter& CborWriter::head(uint8_t major, uint64_t v) {
  const uint8_t m = static_cast<uint8_t>(major << 5);
  if (v < 24) {
    w_.u8(m | static_cast<uint8_t>(v));
  } else if (v <= 0xff) {
    w_.u8(m | 24);
    w_.u8(static_cast<uint8_t>(v));
  } else if (v <= 0xffff) {
    w_.u8(m | 25);
    w_.u16_be(static_cast<uint16_t>(v));
  } else if (v <= 0xffffffffu) {
    w_.u8(m | 26);
    w_.u32_be(static_cast<uint32_t>(v));
  } else {
    w_.u8(m | 27);
    w_.u64_be(v);
  }
  return *this;
}

CborWriter& CborWriter::nint(int64_t v) {
  return head(1, static_cast<uint64_t>(-1 - v));
}
CborWriter& CborWriter::bstr(ByteSpan b) {
  head(2, b.size());
  w_.bytes(b);
  return *this;
}
CborWriter& CborWriter::tstr(std::string_view s) {
  head(3, s.size());
  w_.bytes(as_bytes(s));
  return *this;
}

Bytes sig_structure(ByteSpan protected_header, ByteSpan payload) {
  CborWriter w;
  w.array(4).tstr("Signature1").bstr(protected_header).bstr({}).bstr(payload);
  return w.take();
}

Bytes encode_sign1(ByteSpan protected_header, ByteSpan payload, ByteSpan signature, bool tagged) {
  CborWriter w;
  if (tagged) w.tag(kTagCoseSign1);
  w.array(4).bstr(protected_header).map(0).bstr(payload).bstr(signature);
  return w.take();
}

}  // namespace cml::attest::cose
