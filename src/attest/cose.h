// CBOR and COSE_Sign1 (RFC 9052) as used by AWS Nitro attestation documents and the NSM device API.
//
// Decoding goes through libcbor, but only after precheck_cbor() has walked the bytes with libcbor's
// streaming decoder (which allocates nothing) and bounded every declared length by the input size and the
// nesting depth, so libcbor never allocates what a hostile document asks for. Encoding (Sig_structure,
// NSM requests, test documents) uses the small canonical writer below.
//
// Thread safety: free functions are thread-safe; a CborWriter belongs to one thread.
#pragma once

#include <cbor.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "base/bytes.h"
#include "base/status.h"

namespace cml::attest::cose {

constexpr size_t kMaxCborDepth = 16;
constexpr int64_t kAlgEs384 = -35;
constexpr uint64_t kTagCoseSign1 = 18;

// INVALID_ARGUMENT unless `data` is exactly one well-formed CBOR item whose containers declare no more
// elements than there are input bytes, nested at most `max_depth` deep.
Status precheck_cbor(ByteSpan data, size_t max_depth = kMaxCborDepth);

struct CborDeleter {
  void operator()(cbor_item_t* item) const { cbor_decref(&item); }
};
using CborPtr = std::unique_ptr<cbor_item_t, CborDeleter>;

// precheck_cbor + cbor_load.
Result<CborPtr> decode(ByteSpan data);

// Accessors over decoded items (nullptr-safe; `what` names the field in errors).
Result<Bytes> get_bytes(const cbor_item_t* item, std::string_view what);  // definite or chunked byte string
Result<std::string> get_text(const cbor_item_t* item, std::string_view what);
Result<uint64_t> get_uint(const cbor_item_t* item, std::string_view what);
Result<int64_t> get_int(const cbor_item_t* item, std::string_view what);
bool is_null(const cbor_item_t* item);
// Value of text key `key` in a map (definite or indefinite), or nullptr.
const cbor_item_t* map_find(const cbor_item_t* map, std::string_view key);

struct Sign1 {
  Bytes protected_header;  // serialized protected header map (bstr contents)
  Bytes payload;
  Bytes signature;
  std::optional<int64_t> alg;  // protected header label 1
  bool tagged = false;
};
// COSE_Sign1, tagged (18) or untagged; payload must be present.
Result<Sign1> parse_sign1(ByteSpan data);
// Sig_structure = ["Signature1", protected, h'', payload], the bytes the signature covers.
Bytes sig_structure(ByteSpan protected_header, ByteSpan payload);

// Canonical (definite-length, shortest-form) CBOR writer.
class CborWriter {
 public:
  CborWriter& uint(uint64_t v) { return head(0, v); }
  CborWriter& nint(int64_t v);  // v < 0
  CborWriter& bstr(ByteSpan b);
  CborWriter& tstr(std::string_view s);
  CborWriter& array(uint64_t n) { return head(4, n); }
  CborWriter& map(uint64_t n) { return head(5, n); }
  CborWriter& tag(uint64_t t) { return head(6, t); }
  CborWriter& null() {
    w_.u8(0xf6);
    return *this;
  }
  // bstr, or null when empty (NSM and Nitro optional fields).
  CborWriter& bstr_or_null(ByteSpan b) { return b.empty() ? null() : bstr(b); }
  CborWriter& raw(ByteSpan b) {
    w_.bytes(b);
    return *this;
  }
  CborWriter& head(uint8_t major, uint64_t v);
  Bytes take() { return w_.take(); }

 private:
  ByteWriter w_;
};

// Serializes a COSE_Sign1 (the test signer and fuzz seeds use it).
Bytes encode_sign1(ByteSpan protected_header, ByteSpan payload, ByteSpan signature, bool tagged);

}  // namespace cml::attest::cose
