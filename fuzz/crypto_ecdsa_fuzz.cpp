// Fuzzes the ECDSA signature and public-key decoders. The first byte picks the path; the rest is the
// hostile input. Any outcome but a crash, a sanitizer report or an unexpected status code is fine.
#include <algorithm>
#include <cstdint>
#include <cstdlib>

#include "crypto/ecdsa.h"

using namespace cml;
using namespace cml::crypto;

namespace {

void require(bool ok) {
  if (!ok) std::abort();  // a contract broken: make the fuzzer report it
}

// Decode failures must be the documented codes, never INTERNAL.
void require_code(const Status& s, StatusCode allowed) {
  require(s.is_ok() || s.code() == allowed);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t mode = data[0];
  const ByteSpan in(data + 1, size - 1);
  const Curve curve = (mode & 0x10) ? Curve::kP384 : Curve::kP256;
  const size_t field = curve == Curve::kP384 ? 48 : 32;
  switch (mode & 0x0f) {
    case 0: {  // DER signature → raw → DER
      auto raw = ecdsa_der_to_raw(in, field);
      require_code(raw.status(), StatusCode::kCrypto);
      if (raw.is_ok()) {
        require(raw.value().size() == 2 * field);
        require(ecdsa_raw_to_der(raw.value()).is_ok());
      }
      break;
    }
    case 1: {  // raw signature → DER → raw gives it back
      auto der = ecdsa_raw_to_der(in);
      require_code(der.status(), StatusCode::kCrypto);
      if (der.is_ok() && in.size() <= 2 * 66) {
        auto back = ecdsa_der_to_raw(der.value(), in.size() / 2);
        require(back.is_ok() && std::equal(back.value().begin(), back.value().end(), in.begin()));
      }
      break;
    }
    case 2: {  // SubjectPublicKeyInfo, then a verification with it
      auto key = PublicKey::from_spki_der(in);
      require_code(key.status(), StatusCode::kInvalidArgument);
      if (key.is_ok()) {
        const uint8_t sig[8] = {0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01};
        Status s = ecdsa_verify(key.value(), HashAlg::kSha256, in, sig, SignatureFormat::kDer);
        require(!s.is_ok());
      }
      break;
    }
    case 3: {  // SEC1 point, then the rest as a signature over an empty message, both encodings
      const size_t point_len = std::min(in.size(), 2 * field + 1);
      auto key = PublicKey::from_ec_point(curve, in.first(point_len));
      if (key.is_ok()) {
        const ByteSpan sig = in.subspan(point_len);
        Status der = ecdsa_verify(key.value(), HashAlg::kSha256, {}, sig, SignatureFormat::kDer);
        Status raw = ecdsa_verify(key.value(), HashAlg::kSha384, {}, sig, SignatureFormat::kRaw);
        require_code(der, StatusCode::kCrypto);
        require_code(raw, StatusCode::kCrypto);
      }
      break;
    }
    default:
      break;
  }
  return 0;
}
