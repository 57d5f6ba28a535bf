#include "crypto/hkdf.h"

#include <algorithm>

#include "crypto/hash.h"

namespace cml::crypto {

// RFC 5869 written over HmacSha256: EVP_KDF's per-call context and parameter handling cost more than
// the four SHA-256 compressions of a 32-byte key (it was ≈2.6 µs per call, six calls per handshake side).

Result<SecretBytes> hkdf_sha256(ByteSpan salt, ByteSpan ikm, ByteSpan info, size_t length) {
  CML_ASSIGN_OR_RETURN(SecretBytes prk, hkdf_sha256_extract(salt, ikm));
  return hkdf_sha256_expand(prk.span(), info, length);
}

Result<SecretBytes> hkdf_sha256_extract(ByteSpan salt, ByteSpan ikm) {
  // RFC 5869 reads an empty salt as HashLen zero bytes; HMAC zero-pads its key to a block, so an empty
  // key is that same key.
  Digest256 prk = HmacSha256(salt).update(ikm).finish();
  SecretBytes out(prk.size());
  std::copy(prk.begin(), prk.end(), out.data());
  secure_wipe(prk);
  return out;
}

Result<SecretBytes> hkdf_sha256_expand(ByteSpan prk, ByteSpan info, size_t length) {
  CML_ASSIGN_OR_RETURN(HkdfExpander x, HkdfExpander::create(prk));
  return x.expand(info, length);
}

Result<HkdfExpander> HkdfExpander::create(ByteSpan prk) {
  if (prk.size() < 32) return invalid_argument("HKDF PRK must be at least 32 bytes");
  return HkdfExpander(prk);
}

Result<SecretBytes> HkdfExpander::expand(ByteSpan info, size_t length) {
  if (length == 0 || length > 255 * 32) return invalid_argument("HKDF-SHA256 output length must be 1..8160");
  SecretBytes out(length);
  Digest256 block{};
  for (size_t done = 0, i = 1; done < length; ++i) {
    if (i > 1) mac_.update(block);
    const uint8_t counter = static_cast<uint8_t>(i);
    block = mac_.update(info).update(ByteSpan(&counter, 1)).finish();
    const size_t n = std::min(block.size(), length - done);
    std::copy_n(block.begin(), n, out.data() + done);
    done += n;
  }
  secure_wipe(block);
  return out;
}

}  // namespace cml::crypto
