// Mock attestation backend (evidence type kMock) for development and tests. NO SECURITY.
//
// MockProvider writes a document that *states* measurements, a debug flag, a public key and a nonce.
// MockVerifier parses such documents with strict bounds and returns their claims — it does NOT
// authenticate anything: anyone can write a mock document saying anything. It exists so that the
// handshake, key binding and policy failures (wrong measurement, debug, unbound key) can be tested
// without TEE hardware. Never configure a MockVerifier where a real peer is expected.
//
// Document layout (all integers big-endian):
//   magic        8 bytes  "CMLMOCK1"
//   flags        u8       bit 0 = debug; other bits must be zero
//   pk_len u8 ‖ public_key   (≤ 64 bytes)
//   nonce_len u8 ‖ nonce     (≤ 64 bytes)
//   count        u8       number of measurements, ≤ kMockMaxMeasurements
//   count × { name_len u8 ‖ name ([a-z0-9_], 1..32 chars, strictly ascending) ‖ value_len u8 ‖ value (≤ 64) }
// and nothing after. The document hash in the claims is SHA-256 of the whole document.
//
// Thread safety: MockVerifier::verify is const and thread-safe; MockProvider::attest is thread-safe.
#pragma once

#include <map>
#include <string>

#include "attest/attest.h"

namespace cml::attest {

constexpr size_t kMockMaxMeasurements = 64;
constexpr size_t kMockMaxField = 64;

class MockProvider final : public Provider {
 public:
  // Measurement names must be [a-z0-9_]{1,32}, values ≤ 64 bytes (CML_CHECK: a programming error).
  explicit MockProvider(std::map<std::string, Bytes> measurements = {}, bool debug = false);
  EvidenceType type() const override { return EvidenceType::kMock; }
  // INVALID_ARGUMENT if the key or nonce is longer than 64 bytes.
  Result<Evidence> attest(ByteSpan public_key, ByteSpan nonce) override;

  const std::map<std::string, Bytes>& measurements() const { return measurements_; }

 private:
  std::map<std::string, Bytes> measurements_;
  bool debug_;
};

class MockVerifier final : public Verifier {
 public:
  EvidenceType type() const override { return EvidenceType::kMock; }
  // Parses (does not authenticate). INVALID_ARGUMENT naming the malformed field.
  Result<Claims> verify(ByteSpan document, WallTime now) const override;
};

// Encodes a mock document directly (tests that need hand-made documents).
Bytes encode_mock_document(const std::map<std::string, Bytes>& measurements, bool debug, ByteSpan public_key,
                           ByteSpan nonce);

// Convenience for tests and demos: a MockProvider with measurement "image" = SHA-256(label) and a
// VerifierSet holding a MockVerifier, plus the Policy pinning that measurement.
std::map<std::string, Bytes> mock_measurements(std::string_view label);
std::shared_ptr<VerifierSet> mock_verifier_set();
Policy mock_policy(std::string_view expected_label);

}  // namespace cml::attest
