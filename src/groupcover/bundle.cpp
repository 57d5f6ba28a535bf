#include "groupcover/bundle.h"

#include <bit>
#include <cstring>

#include "crypto/hkdf.h"
#include "crypto/random.h"

namespace cml::groupcover {
namespace {

static_assert(std::endian::native == std::endian::little, "bundles store little-endian floats in place");

constexpr char kWorkerMagic[8] = {'C', 'M', 'L', 'G', 'C', 'W', '1', '\0'};
constexpr char kSecretsMagic[8] = {'C', 'M', 'L', 'G', 'C', 'S', '1', '\0'};
constexpr char kSealedMagic[8] = {'C', 'M', 'L', 'G', 'C', 'E', '1', '\0'};
constexpr uint32_t kVersion = 1;
constexpr size_t kSaltSize = 32;
constexpr size_t kSealedHeader = 8 + 1 + kSaltSize + crypto::kAeadNonceSize;
constexpr std::string_view kKdfInfo = "cml groupcover tee bundle v1";
constexpr size_t kMaxName = 4096;

ByteSpan magic_span(const char (&m)[8]) {
  return {reinterpret_cast<const uint8_t*>(m), 8};
}

Status expect_magic(ByteReader& r, const char (&m)[8], std::string_view what) {
  CML_ASSIGN_OR_RETURN(ByteSpan got, r.take(8, what));
  if (std::memcmp(got.data(), m, 8) != 0) return invalid_argument(std::string(what) + ": bad magic");
  return ok_status();
}

Result<crypto::SecretBytes> derive_key(ByteSpan operator_key, ByteSpan salt) {
  if (operator_key.size() != 32) return invalid_argument("operator key must be 32 bytes");
  return crypto::hkdf_sha256(salt, operator_key, as_bytes(kKdfInfo), crypto::kAeadKeySize);
}

}  // namespace

Result<size_t> worker_bundle_size(std::span<const std::pair<uint32_t, uint32_t>> shapes) {
  if (shapes.size() > kMaxBundleTensors) return invalid_argument("worker bundle: too many matrices");
  uint64_t total = 16 + 8 * uint64_t(shapes.size());
  for (auto [out, in] : shapes) {
    if (out < 1 || in < 1 || out > kMaxBundleDim || in > kMaxBundleDim)
      return invalid_argument("worker bundle: matrix dimensions out of range");
    total += uint64_t(out) * in * 4;
    if (total > (uint64_t(1) << 40)) return invalid_argument("worker bundle: too large");
  }
  return size_t(total);
}

WorkerBundle make_worker_bundle(std::span<const MatrixRef> matrices) {
  ByteWriter w;
  w.bytes(magic_span(kWorkerMagic));
  w.u32_le(kVersion);
  w.u32_le(uint32_t(matrices.size()));
  for (const auto& m : matrices) {
    w.u32_le(m.out);
    w.u32_le(m.in);
  }
  for (const auto& m : matrices) w.bytes({reinterpret_cast<const uint8_t*>(m.data), size_t(m.out) * m.in * 4});
  auto parsed = parse_worker_bundle(w.take());
  CML_CHECK_MSG(parsed.is_ok(), parsed.status().to_string());
  return std::move(parsed).value();
}

Result<WorkerBundle> parse_worker_bundle(Bytes bytes) {
  WorkerBundle b;
  std::vector<std::pair<uint32_t, uint32_t>> shapes;
  {
    ByteReader r(bytes);
    CML_RETURN_IF_ERROR(expect_magic(r, kWorkerMagic, "worker bundle"));
    CML_ASSIGN_OR_RETURN(uint32_t version, r.u32_le("worker bundle version"));
    if (version != kVersion) return invalid_argument("worker bundle: unsupported version");
    CML_ASSIGN_OR_RETURN(uint32_t n, r.u32_le("worker bundle count"));
    if (n > kMaxBundleTensors || uint64_t(n) * 8 > r.remaining())
      return invalid_argument("worker bundle: matrix count exceeds the file");
    shapes.reserve(n);
    for (uint32_t i = 0; i < n; ++i) {
      CML_ASSIGN_OR_RETURN(uint32_t out, r.u32_le("worker bundle out"));
      CML_ASSIGN_OR_RETURN(uint32_t in, r.u32_le("worker bundle in"));
      shapes.emplace_back(out, in);
    }
    CML_ASSIGN_OR_RETURN(size_t expect, worker_bundle_size(shapes));
    if (expect != bytes.size()) return invalid_argument("worker bundle: size does not match its table");
  }
  b.storage = std::move(bytes);
  size_t off = 16 + 8 * shapes.size();
  for (auto [out, in] : shapes) {
    b.matrices.push_back({out, in, reinterpret_cast<const float*>(b.storage.data() + off)});
    off += size_t(out) * in * 4;
  }
  b.digest = crypto::sha256(b.storage);
  return b;
}

std::map<std::string, size_t> TeeSecrets::by_name() const {
  std::map<std::string, size_t> m;
  for (size_t i = 0; i < entries.size(); ++i) m[entries[i].name] = i;
  return m;
}

Bytes encode_tee_secrets(const TeeSecrets& s) {
  ByteWriter w;
  w.bytes(magic_span(kSecretsMagic));
  w.u32_le(kVersion);
  w.bytes(s.worker_digest);
  w.u32_le(s.group_size);
  w.u32_le(uint32_t(s.entries.size()));
  for (const auto& e : s.entries) {
    const MatrixSecrets& m = e.secrets;
    w.u16_le(uint16_t(e.name.size()));
    w.bytes(as_bytes(e.name));
    w.u32_le(e.index);
    w.u32_le(uint32_t(m.out));
    w.u32_le(uint32_t(m.in));
    for (uint32_t p : m.perm) w.u32_le(p);
    w.u32_le(uint32_t(m.n_groups()));
    for (uint32_t o : m.group_offsets) w.u32_le(o);
    for (uint32_t r : m.group_rows) w.u32_le(r);
    for (double d : m.inv_mix) w.u64_le(std::bit_cast<uint64_t>(d));
    w.u8(m.bias.empty() ? 0 : 1);
    for (float f : m.bias) w.u32_le(std::bit_cast<uint32_t>(f));
  }
  return w.take();
}

Result<TeeSecrets> parse_tee_secrets(ByteSpan plaintext) {
  ByteReader r(plaintext);
  TeeSecrets s;
  CML_RETURN_IF_ERROR(expect_magic(r, kSecretsMagic, "TEE bundle"));
  CML_ASSIGN_OR_RETURN(uint32_t version, r.u32_le("TEE bundle version"));
  if (version != kVersion) return invalid_argument("TEE bundle: unsupported version");
  CML_ASSIGN_OR_RETURN(ByteSpan digest, r.take(32, "TEE bundle worker digest"));
  std::memcpy(s.worker_digest.data(), digest.data(), 32);
  CML_ASSIGN_OR_RETURN(s.group_size, r.u32_le("TEE bundle group size"));
  CML_ASSIGN_OR_RETURN(uint32_t n, r.u32_le("TEE bundle entry count"));
  // Each entry takes at least 2 + 12 + 4 + 4·2 + 1 bytes; refuse counts the bytes cannot hold.
  if (n > kMaxBundleTensors || uint64_t(n) * 27 > r.remaining())
    return invalid_argument("TEE bundle: entry count exceeds the data");
  auto u32_array = [&](std::vector<uint32_t>& v, uint64_t count, std::string_view what) -> Status {
    if (count * 4 > r.remaining()) return invalid_argument(std::string("TEE bundle: truncated ") + std::string(what));
    CML_ASSIGN_OR_RETURN(ByteSpan raw, r.take(size_t(count) * 4, what));
    v.resize(size_t(count));
    for (size_t i = 0; i < v.size(); ++i) v[i] = load_u32_le(raw.data() + 4 * i);
    return ok_status();
  };
  std::map<std::string, int> names;
  for (uint32_t i = 0; i < n; ++i) {
    TeeEntry e;
    CML_ASSIGN_OR_RETURN(uint16_t name_len, r.u16_le("TEE bundle name length"));
    if (name_len == 0 || name_len > kMaxName) return invalid_argument("TEE bundle: bad tensor name length");
    CML_ASSIGN_OR_RETURN(ByteSpan name, r.take(name_len, "TEE bundle name"));
    e.name.assign(reinterpret_cast<const char*>(name.data()), name.size());
    if (!names.emplace(e.name, 1).second) return invalid_argument("TEE bundle: duplicate tensor " + e.name);
    CML_ASSIGN_OR_RETURN(e.index, r.u32_le("TEE bundle index"));
    CML_ASSIGN_OR_RETURN(uint32_t out, r.u32_le("TEE bundle out"));
    CML_ASSIGN_OR_RETURN(uint32_t in, r.u32_le("TEE bundle in"));
    if (out < 2 || in < 1 || out > kMaxBundleDim || in > kMaxBundleDim)
      return invalid_argument("TEE bundle: dimensions of " + e.name + " out of range");
    MatrixSecrets& m = e.secrets;
    m.out = out;
    m.in = in;
    CML_RETURN_IF_ERROR(u32_array(m.perm, in, "permutation"));
    CML_ASSIGN_OR_RETURN(uint32_t n_groups, r.u32_le("TEE bundle group count"));
    if (n_groups < 1 || n_groups > out) return invalid_argument("TEE bundle: bad group count");
    CML_RETURN_IF_ERROR(u32_array(m.group_offsets, uint64_t(n_groups) + 1, "group offsets"));
    CML_RETURN_IF_ERROR(u32_array(m.group_rows, out, "group rows"));
    // Sizes must be validated before the mixing matrices' length can be computed safely.
    uint64_t mix = 0;
    if (m.group_offsets.front() != 0 || m.group_offsets.back() != out)
      return invalid_argument("TEE bundle: groups do not cover the rows");
    for (size_t k = 0; k + 1 < m.group_offsets.size(); ++k) {
      if (m.group_offsets[k + 1] <= m.group_offsets[k] || m.group_offsets[k + 1] - m.group_offsets[k] > 64)
        return invalid_argument("TEE bundle: bad group size");
      const uint64_t sz = m.group_offsets[k + 1] - m.group_offsets[k];
      mix += sz * sz;
    }
    if (mix * 8 > r.remaining()) return invalid_argument("TEE bundle: truncated mixing matrices");
    CML_ASSIGN_OR_RETURN(ByteSpan raw_mix, r.take(size_t(mix) * 8, "mixing matrices"));
    m.inv_mix.resize(size_t(mix));
    for (size_t k = 0; k < m.inv_mix.size(); ++k)
      m.inv_mix[k] = std::bit_cast<double>(load_u64_le(raw_mix.data() + 8 * k));
    CML_ASSIGN_OR_RETURN(uint8_t has_bias, r.u8("TEE bundle bias flag"));
    if (has_bias > 1) return invalid_argument("TEE bundle: bad bias flag");
    if (has_bias) {
      std::vector<uint32_t> raw;
      CML_RETURN_IF_ERROR(u32_array(raw, out, "bias"));
      m.bias.resize(out);
      for (size_t k = 0; k < raw.size(); ++k) m.bias[k] = std::bit_cast<float>(raw[k]);
    }
    CML_RETURN_IF_ERROR(m.validate().with_context("TEE bundle entry " + e.name));
    s.entries.push_back(std::move(e));
  }
  CML_RETURN_IF_ERROR(r.expect_end("TEE bundle"));
  return s;
}

Result<Bytes> seal_tee_bundle(const TeeSecrets& s, ByteSpan operator_key, crypto::AeadSuite suite) {
  ByteWriter h;
  h.bytes(magic_span(kSealedMagic));
  h.u8(uint8_t(suite));
  h.bytes(crypto::random_bytes(kSaltSize));
  h.bytes(crypto::random_bytes(crypto::kAeadNonceSize));
  Bytes header = h.take();
  CML_ASSIGN_OR_RETURN(crypto::SecretBytes key, derive_key(operator_key, ByteSpan(header).subspan(9, kSaltSize)));
  CML_ASSIGN_OR_RETURN(crypto::Aead aead, crypto::Aead::create(suite, key.span()));
  crypto::SecretBytes plain(encode_tee_secrets(s));
  Bytes out = header;
  out.resize(header.size() + plain.size() + crypto::kAeadTagSize);
  CML_RETURN_IF_ERROR(aead.seal(ByteSpan(header).subspan(9 + kSaltSize), header, plain.span(),
                                MutableByteSpan(out).subspan(header.size())));
  return out;
}

Result<TeeSecrets> open_tee_bundle(ByteSpan sealed, ByteSpan operator_key) {
  if (sealed.size() < kSealedHeader + crypto::kAeadTagSize) return invalid_argument("TEE bundle: file too short");
  ByteReader r(sealed);
  CML_RETURN_IF_ERROR(expect_magic(r, kSealedMagic, "sealed TEE bundle"));
  CML_ASSIGN_OR_RETURN(uint8_t suite_code, r.u8("suite"));
  if (suite_code != uint8_t(crypto::AeadSuite::kAes256Gcm) &&
      suite_code != uint8_t(crypto::AeadSuite::kChaCha20Poly1305))
    return invalid_argument("sealed TEE bundle: unknown AEAD suite");
  CML_ASSIGN_OR_RETURN(crypto::SecretBytes key, derive_key(operator_key, sealed.subspan(9, kSaltSize)));
  CML_ASSIGN_OR_RETURN(crypto::Aead aead, crypto::Aead::create(crypto::AeadSuite(suite_code), key.span()));
  crypto::SecretBytes plain(sealed.size() - kSealedHeader - crypto::kAeadTagSize);
  Status st = aead.open(sealed.subspan(9 + kSaltSize, crypto::kAeadNonceSize), sealed.first(kSealedHeader),
                        sealed.subspan(kSealedHeader), plain.mutable_span());
  if (!st.is_ok()) return crypto_error("TEE bundle: authentication failed (wrong operator key or modified file)");
  return parse_tee_secrets(plain.span());
}

Result<crypto::SecretBytes> load_operator_key(const std::string& path) {
  CML_ASSIGN_OR_RETURN(Bytes raw, read_file(path, 4096));
  crypto::SecretBytes held(raw);
  crypto::secure_wipe(raw);
  if (held.size() == 32) return held;
  std::string_view text(reinterpret_cast<const char*>(held.data()), held.size());
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.remove_suffix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) text.remove_prefix(1);
  if (text.size() == 64) {
    auto bytes = from_hex(text);
    if (bytes.is_ok()) {
      crypto::SecretBytes key(*bytes);
      crypto::secure_wipe(*bytes);
      return key;
    }
  }
  return invalid_argument("operator key file must hold 32 raw bytes or 64 hex characters: " + path);
}

}  // namespace cml::groupcover
