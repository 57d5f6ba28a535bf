// Mock attestation backend: documents that state claims without authenticating them (see mock.h).
#include "attest/mock.h"

#include <cstring>

namespace cml::attest {

namespace {

constexpr std::string_view kMockMagic = "CMLMOCK1";

bool valid_name(std::string_view n) {
  if (n.empty() || n.size() > 32) return false;
  for (char c : n) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  }
  return true;
}

}  // namespace

Bytes encode_mock_document(const std::map<std::string, Bytes>& measurements, bool debug, ByteSpan public_key,
                           ByteSpan nonce) {
  CML_CHECK(measurements.size() <= kMockMaxMeasurements);
  CML_CHECK(public_key.size() <= kMockMaxField && nonce.size() <= kMockMaxField);
  ByteWriter w;
  w.bytes(as_bytes(kMockMagic));
  w.u8(debug ? 1 : 0);
  w.u8(static_cast<uint8_t>(public_key.size()));
  w.bytes(public_key);
  w.u8(static_cast<uint8_t>(nonce.size()));
  w.bytes(nonce);
  w.u8(static_cast<uint8_t>(measurements.size()));
  for (const auto& [name, value] : measurements) {  // std::map: strictly ascending names
    CML_CHECK_MSG(valid_name(name) && value.size() <= kMockMaxField, "mock measurement " + name);
    w.u8(static_cast<uint8_t>(name.size()));
    w.bytes(as_bytes(name));
    w.u8(static_cast<uint8_t>(value.size()));
    w.bytes(value);
  }
  return w.take();
}

MockProvider::MockProvider(std::map<std::string, Bytes> measurements, bool debug)
    : measurements_(std::move(measurements)), debug_(debug) {
  CML_CHECK(measurements_.size() <= kMockMaxMeasurements);
  for (const auto& [name, value] : measurements_) {
    CML_CHECK_MSG(valid_name(name) && value.size() <= kMockMaxField, "mock measurement " + name);
  }
}

Result<Evidence> MockProvider::attest(ByteSpan public_key, ByteSpan nonce) {
  if (public_key.size() > kMockMaxField || nonce.size() > kMockMaxField) {
    return invalid_argument("mock provider: public key and nonce must be at most 64 bytes");
  }
  return Evidence{EvidenceType::kMock, encode_mock_document(measurements_, debug_, public_key, nonce)};
}

Result<Claims> MockVerifier::verify(ByteSpan document, WallTime /*now*/) const {
  if (document.size() > kMaxEvidenceSize) return invalid_argument("mock document: larger than 64 KiB");
  ByteReader r(document);
  CML_ASSIGN_OR_RETURN(ByteSpan magic, r.take(kMockMagic.size(), "mock document magic"));
  if (as_string_view(magic) != kMockMagic) return invalid_argument("mock document: bad magic (not a mock document)");
  Claims c;
  c.type = EvidenceType::kMock;
  CML_ASSIGN_OR_RETURN(uint8_t fl, r.u8("mock flags"));
  if ((fl & ~1u) != 0) return invalid_argument("mock document: unknown flag bits");
  c.debug = (fl & 1) != 0;
  CML_ASSIGN_OR_RETURN(uint8_t pk_len, r.u8("mock public key length"));
  if (pk_len > kMockMaxField) return invalid_argument("mock document: public key longer than 64 bytes");
  CML_ASSIGN_OR_RETURN(ByteSpan pk, r.take(pk_len, "mock public key"));
  CML_ASSIGN_OR_RETURN(uint8_t nonce_len, r.u8("mock nonce length"));
  if (nonce_len > kMockMaxField) return invalid_argument("mock document: nonce longer than 64 bytes");
  CML_ASSIGN_OR_RETURN(ByteSpan nonce, r.take(nonce_len, "mock nonce"));
  c.public_key.assign(pk.begin(), pk.end());
  c.nonce.assign(nonce.begin(), nonce.end());
  CML_ASSIGN_OR_RETURN(uint8_t count, r.u8("mock measurement count"));
  if (count > kMockMaxMeasurements) return invalid_argument("mock document: more than 64 measurements");
  std::string prev;
  for (uint8_t i = 0; i < count; ++i) {
    CML_ASSIGN_OR_RETURN(uint8_t name_len, r.u8("mock measurement name length"));
    CML_ASSIGN_OR_RETURN(ByteSpan name_bytes, r.take(name_len, "mock measurement name"));
    std::string name(as_string_view(name_bytes));
    if (!valid_name(name)) return invalid_argument("mock document: invalid measurement name");
    if (i > 0 && name <= prev) return invalid_argument("mock document: measurement names not strictly ascending");
    CML_ASSIGN_OR_RETURN(uint8_t value_len, r.u8("mock measurement length"));
    if (value_len > kMockMaxField) return invalid_argument("mock document: measurement longer than 64 bytes");
    CML_ASSIGN_OR_RETURN(ByteSpan value, r.take(value_len, "mock measurement value"));
    c.measurements.emplace(name, Bytes(value.begin(), value.end()));
    prev = std::move(name);
  }
  CML_RETURN_IF_ERROR(r.expect_end("mock document"));
  c.document_hash = crypto::sha256(document);
  c.details["backend"] = "mock (unauthenticated)";
  return c;
}

std::map<std::string, Bytes> mock_measurements(std::string_view label) {
  const auto d = crypto::sha256(as_bytes(label));
  return {{"image", Bytes(d.begin(), d.end())}};
}

std::shared_ptr<VerifierSet> mock_verifier_set() {
  auto set = std::make_shared<VerifierSet>();
  set->add(std::make_shared<MockVerifier>());
  return set;
}

Policy mock_policy(std::string_view expected_label) {
  Policy p;
  p.allowed_types = {EvidenceType::kMock};
  p.expected_measurements = mock_measurements(expected_label);
  return p;
}

}  // namespace cml::attest
