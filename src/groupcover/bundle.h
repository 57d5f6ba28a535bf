// GroupCover bundles (format: docs/protocol.md §11).
//
//   worker bundle  W'' of every obfuscated matrix, nothing secret. Byte layout (little-endian):
//                    magic "CMLGCW1\0" | u32 version=1 | u32 n | n × (u32 out, u32 in) | data (f32 rows)
//                  Its SHA-256 is the model id the worker and the TEE agree on.
//   TEE bundle     the secrets (π, groups, A⁻¹, bias) of every matrix, keyed by tensor name, plus the
//                  worker bundle's digest; sealed with AEAD under a key derived (HKDF-SHA256, random
//                  salt) from an operator-supplied 32-byte key:
//                    magic "CMLGCE1\0" | u8 suite | salt[32] | nonce[12] | AEAD(plaintext) ‖ tag
//                  AAD = the 53 header bytes.
//
// Every parser is bounded: counts are checked against the bytes present before anything is allocated;
// a hostile file yields INVALID_ARGUMENT (or CRYPTO for a bad key/tag), never a crash.
// Thread safety: values; parsing functions are pure.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "base/status.h"
#include "crypto/aead.h"
#include "crypto/hash.h"
#include "crypto/secret.h"
#include "groupcover/obfuscate.h"

namespace cml::groupcover {

inline constexpr size_t kMaxBundleTensors = 1u << 16;
inline constexpr int64_t kMaxBundleDim = int64_t(1) << 22;

struct WorkerMatrix {
  uint32_t out = 0, in = 0;
  const float* data = nullptr;  // [out, in], points into WorkerBundle::storage
};

// The worker's half: owns its bytes (the canonical encoding) and views into them.
struct WorkerBundle {
  Bytes storage;
  std::vector<WorkerMatrix> matrices;
  crypto::Digest256 digest{};  // SHA-256 of storage
};

// Builds the canonical encoding from matrices given as (out, in, data) triples.
struct MatrixRef {
  uint32_t out = 0, in = 0;
  const float* data = nullptr;
};
WorkerBundle make_worker_bundle(std::span<const MatrixRef> matrices);
// Parses (and takes ownership of) bytes; INVALID_ARGUMENT on any inconsistency.
Result<WorkerBundle> parse_worker_bundle(Bytes bytes);
// Size of the canonical encoding for the given shapes (INVALID_ARGUMENT if out of bounds).
Result<size_t> worker_bundle_size(std::span<const std::pair<uint32_t, uint32_t>> shapes);

struct TeeEntry {
  std::string name;    // tensor name in the model file
  uint32_t index = 0;  // matrix index in the worker bundle
  MatrixSecrets secrets;
};

struct TeeSecrets {
  crypto::Digest256 worker_digest{};
  uint32_t group_size = 0;
  std::vector<TeeEntry> entries;
  // name -> position in entries
  std::map<std::string, size_t> by_name() const;
};

Bytes encode_tee_secrets(const TeeSecrets& s);
Result<TeeSecrets> parse_tee_secrets(ByteSpan plaintext);

// Sealing at rest. The operator key is 32 bytes.
Result<Bytes> seal_tee_bundle(const TeeSecrets& s, ByteSpan operator_key,
                              crypto::AeadSuite suite = crypto::AeadSuite::kAes256Gcm);
Result<TeeSecrets> open_tee_bundle(ByteSpan sealed, ByteSpan operator_key);

// Reads an operator key file: exactly 32 raw bytes, or 64 hex characters (surrounding whitespace ignored).
Result<crypto::SecretBytes> load_operator_key(const std::string& path);

// File names inside a bundle directory.
inline constexpr const char* kWorkerBundleFile = "worker.gcw";
inline constexpr const char* kTeeBundleFile = "tee.gcs";

}  // namespace cml::groupcover
