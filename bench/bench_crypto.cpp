// Micro-benchmarks of the crypto module: AEAD seal/open (1 KiB, 1 MiB, both suites), HKDF-SHA256,
// X25519, ECDSA verify. BM_Memcpy is the bound measured in the same run: no AEAD pass over a buffer can
// beat copying it.
//   build/release/bench/bench_crypto [--benchmark_filter=Seal] [--benchmark_format=json]
#include <benchmark/benchmark.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <cstring>

#include "crypto/aead.h"
#include "crypto/ecdsa.h"
#include "crypto/hash.h"
#include "crypto/hkdf.h"
#include "crypto/random.h"
#include "crypto/x25519.h"

namespace cml::crypto {
namespace {

Aead make_aead(AeadSuite suite) {
  auto a = Aead::create(suite, random_bytes(kAeadKeySize));
  CML_CHECK(a.is_ok());
  return std::move(a).value();
}

// args: suite (1 chacha, 2 aes), plaintext bytes. One record per iteration, sealed in place with a
// fresh nonce, as the record layer does.
void BM_Seal(benchmark::State& state) {
  const auto suite = static_cast<AeadSuite>(state.range(0));
  const size_t n = static_cast<size_t>(state.range(1));
  Aead aead = make_aead(suite);
  Bytes buf = random_bytes(n + kAeadTagSize);
  uint8_t nonce[kAeadNonceSize] = {};
  const uint8_t aad[24] = {};
  uint64_t seq = 0;
  for (auto _ : state) {
    store_u64_be(nonce + 4, ++seq);
    Status s = aead.seal(nonce, aad, ByteSpan(buf).first(n), buf);
    if (!s.is_ok()) state.SkipWithError(s.to_string().c_str());
    benchmark::DoNotOptimize(buf.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(n));
  state.SetLabel(std::string(aead_suite_name(suite)));
}

void BM_Open(benchmark::State& state) {
  const auto suite = static_cast<AeadSuite>(state.range(0));
  const size_t n = static_cast<size_t>(state.range(1));
  const Bytes key = random_bytes(kAeadKeySize);
  Aead s1 = std::move(Aead::create(suite, key)).value(), s2 = std::move(Aead::create(suite, key)).value();
  const Bytes msg = random_bytes(n);
  Bytes record(n + kAeadTagSize), out(n);
  const uint8_t nonce[kAeadNonceSize] = {1};
  CML_CHECK(s1.seal(nonce, {}, msg, record).is_ok());
  for (auto _ : state) {
    Status s = s2.open(nonce, {}, record, out);  // out of place, so the record stays intact
    if (!s.is_ok()) state.SkipWithError(s.to_string().c_str());
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(n));
  state.SetLabel(std::string(aead_suite_name(suite)));
}

void BM_Memcpy(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  Bytes a = random_bytes(n), b(n);
  for (auto _ : state) {
    std::memcpy(b.data(), a.data(), n);
    benchmark::DoNotOptimize(b.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(n));
}

// The handshake's use: 32-byte shared secret, 32-byte transcript salt, two 32-byte keys out.
void BM_HkdfSha256(benchmark::State& state) {
  const Bytes ikm = random_bytes(32), salt = random_bytes(32), info = to_bytes("cml handshake keys");
  for (auto _ : state) {
    auto okm = hkdf_sha256(salt, ikm, info, static_cast<size_t>(state.range(0)));
    if (!okm.is_ok()) state.SkipWithError(okm.status().to_string().c_str());
    benchmark::DoNotOptimize(okm);
  }
}

void BM_X25519Generate(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(X25519KeyPair::generate());
}

void BM_X25519Derive(benchmark::State& state) {
  X25519KeyPair a = X25519KeyPair::generate(), b = X25519KeyPair::generate();
  for (auto _ : state) {
    auto shared = a.derive(b.public_key());
    if (!shared.is_ok()) state.SkipWithError(shared.status().to_string().c_str());
    benchmark::DoNotOptimize(shared);
  }
}

// A fresh key pair and a DER signature made with OpenSSL directly (the module only verifies).
struct SignedMessage {
  PublicKey key;
  Bytes message, der_signature, raw_signature;
};

SignedMessage sign_with_new_key(const char* group, HashAlg alg, size_t field_size) {
  EVP_PKEY* pkey = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", group);
  CML_CHECK(pkey != nullptr);
  SignedMessage m;
  m.message = random_bytes(256);
  const EVP_MD* md = alg == HashAlg::kSha384 ? EVP_sha384() : EVP_sha256();
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  size_t len = 0;
  CML_CHECK(EVP_DigestSignInit(ctx, nullptr, md, nullptr, pkey) == 1);
  CML_CHECK(EVP_DigestSign(ctx, nullptr, &len, m.message.data(), m.message.size()) == 1);
  m.der_signature.resize(len);
  CML_CHECK(EVP_DigestSign(ctx, m.der_signature.data(), &len, m.message.data(), m.message.size()) == 1);
  m.der_signature.resize(len);
  EVP_MD_CTX_free(ctx);
  unsigned char* spki = nullptr;
  int spki_len = i2d_PUBKEY(pkey, &spki);
  CML_CHECK(spki_len > 0);
  auto key = PublicKey::from_spki_der(ByteSpan(spki, static_cast<size_t>(spki_len)));
  OPENSSL_free(spki);
  EVP_PKEY_free(pkey);
  CML_CHECK(key.is_ok());
  m.key = key.value();
  m.raw_signature = std::move(ecdsa_der_to_raw(m.der_signature, field_size)).value();
  CML_CHECK(ecdsa_verify(m.key, alg, m.message, m.der_signature, SignatureFormat::kDer).is_ok());
  return m;
}

// args: curve (256 or 384), format (0 DER, 1 raw).
void BM_EcdsaVerify(benchmark::State& state) {
  const bool p384 = state.range(0) == 384;
  const HashAlg alg = p384 ? HashAlg::kSha384 : HashAlg::kSha256;
  const SignedMessage m = sign_with_new_key(p384 ? "P-384" : "P-256", alg, p384 ? 48 : 32);
  const bool raw = state.range(1) == 1;
  for (auto _ : state) {
    Status s = ecdsa_verify(m.key, alg, m.message, raw ? m.raw_signature : m.der_signature,
                            raw ? SignatureFormat::kRaw : SignatureFormat::kDer);
    if (!s.is_ok()) state.SkipWithError(s.to_string().c_str());
  }
  state.SetLabel(std::string(p384 ? "P-384/SHA-384" : "P-256/SHA-256") + (raw ? " raw" : " DER"));
}

constexpr int64_t kChaCha = static_cast<int64_t>(AeadSuite::kChaCha20Poly1305);
constexpr int64_t kAes = static_cast<int64_t>(AeadSuite::kAes256Gcm);

BENCHMARK(BM_Seal)->ArgNames({"suite", "bytes"})->ArgsProduct({{kChaCha, kAes}, {1024, 1 << 20}});
BENCHMARK(BM_Open)->ArgNames({"suite", "bytes"})->ArgsProduct({{kChaCha, kAes}, {1024, 1 << 20}});
BENCHMARK(BM_Memcpy)->Arg(1024)->Arg(1 << 20);
BENCHMARK(BM_HkdfSha256)->Arg(32)->Arg(64);
BENCHMARK(BM_X25519Generate);
BENCHMARK(BM_X25519Derive);
BENCHMARK(BM_EcdsaVerify)->ArgNames({"curve", "raw"})->ArgsProduct({{256, 384}, {0, 1}});

}  // namespace
}  // namespace cml::crypto
