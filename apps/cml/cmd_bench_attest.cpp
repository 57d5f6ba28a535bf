// `cml bench attest`: median verification time per evidence type on one core (the calling thread), beside
// the bound measured in the same run: the raw signature verifications each document needs at minimum.
// Documents: the test signer's (real formats, real verifier code; available everywhere) and, when the shared
// test data is found (CML_TESTDATA_DIR), the real Nitro, SEV-SNP and TDX samples at their pinned times.
#include <openssl/evp.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>

#include "apps/cml/commands.h"
#include "attest/nitro.h"
#include "attest/roots.h"
#include "attest/sev_snp.h"
#include "attest/tdx.h"
#include "attest/test_signer.h"
#include "crypto/ecdsa.h"
#include "crypto/x509.h"

namespace cml::app {
namespace {

using Clock = std::chrono::steady_clock;

struct Stats {
  double median_ms = 0, p90_ms = 0, min_ms = 0;
  int n = 0;
};

// Runs `fn` `n` times (after 3 warm-ups); returns an error message if any run fails.
std::string time_runs(int n, const std::function<Status()>& fn, Stats& out) {
  for (int i = 0; i < 3; ++i) {
    Status s = fn();
    if (!s) return s.to_string();
  }
  std::vector<double> ms;
  ms.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    auto t0 = Clock::now();
    Status s = fn();
    auto t1 = Clock::now();
    if (!s) return s.to_string();
    ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  out.n = n;
  out.median_ms = ms[ms.size() / 2];
  out.p90_ms = ms[ms.size() * 9 / 10];
  out.min_ms = ms.front();
  return {};
}

nlohmann::json to_json(const Stats& s) {
  return {{"median_ms", s.median_ms}, {"p90_ms", s.p90_ms}, {"min_ms", s.min_ms}, {"runs", s.n}};
}

Status verify_status(const attest::Verifier& v, ByteSpan doc, WallTime at) {
  auto c = v.verify(doc, at);
  return c.is_ok() ? ok_status() : c.status();
}

std::string bench_attest(const BenchOptions& opts, nlohmann::json& out) {
  const int n = opts.quick ? 15 : 201;
  const WallTime now = std::chrono::system_clock::now();
  auto signer = attest::TestSigner::create(now - std::chrono::hours(1), now + std::chrono::hours(24));
  if (!signer) return signer.status().to_string();
  const auto& s = **signer;
  std::array<uint8_t, 64> rd{};
  rd.fill(0x42);
  nlohmann::json docs = nlohmann::json::object();
  // Roots are parsed once (static caches); touch them before timing.
  (void)attest::roots::aws_nitro_root_g1();
  (void)attest::roots::amd_arks();
  (void)attest::roots::intel_sgx_root_ca();

  // warm: one verifier, caches filled (a peer whose platform certificates were seen before);
  // cold: caches cleared and the verifier built inside the timed region (first contact with a platform).
  using Factory = std::function<std::unique_ptr<attest::Verifier>()>;
  auto add = [&](const std::string& name, const Factory& make, const Bytes& doc, WallTime at) -> std::string {
    Stats warm, cold;
    auto v = make();
    std::string err = time_runs(
        n, [&] { return verify_status(*v, doc, at); }, warm);
    if (err.empty())
      err = time_runs(
          n,
          [&] {
            crypto::clear_certificate_caches();
            return verify_status(*make(), doc, at);
          },
          cold);
    if (!err.empty()) return name + ": " + err;
    docs[name] = {{"warm", to_json(warm)}, {"cold", to_json(cold)}, {"bytes", doc.size()}};
    return {};
  };
  auto nitro = [](attest::NitroVerifierOptions o) -> Factory {
    return [o] { return std::make_unique<attest::NitroVerifier>(o); };
  };
  auto snp = [](attest::SnpVerifierOptions o) -> Factory {
    return [o] { return std::make_unique<attest::SnpVerifier>(o); };
  };
  auto tdx = [](attest::TdxVerifierOptions o) -> Factory {
    return [o] { return std::make_unique<attest::TdxVerifier>(o); };
  };
  {
    auto doc = s.nitro_document(Bytes(32, 1), Bytes(32, 2));
    if (!doc) return doc.status().to_string();
    std::string e = add("nitro_test_signer", nitro(s.nitro_options()), *doc, now);
    if (!e.empty()) return e;
  }
  {
    auto doc = s.snp_document(rd);
    if (!doc) return doc.status().to_string();
    std::string e = add("sev_snp_test_signer", snp(s.snp_options()), *doc, now);
    if (!e.empty()) return e;
  }
  {
    auto q = s.tdx_quote(rd);
    if (!q) return q.status().to_string();
    attest::TdxVerifierOptions o = s.tdx_options();
    attest::TestTcbLevel lvl = attest::TestSigner::platform_tcb();
    lvl.status = "UpToDate";
    auto col = s.tdx_collateral({lvl}, now - std::chrono::hours(1), now + std::chrono::hours(1));
    if (!col) return col.status().to_string();
    std::string e = add("tdx_test_signer", tdx(s.tdx_options()), *q, now);
    if (!e.empty()) return e;
    o.collateral = *col;
    e = add("tdx_test_signer_with_collateral", tdx(o), *q, now);
    if (!e.empty()) return e;
  }
  // Real samples, if the shared test data is reachable.
  const char* td = std::getenv("CML_TESTDATA_DIR");
  const std::filesystem::path dir = td ? td : "../shared/testdata";
  bool real = false;
  if (std::filesystem::exists(dir / "nitro/evervault_ga_2023-09-18.cose")) {
    real = true;
    auto doc = read_file((dir / "nitro/evervault_ga_2023-09-18.cose").string(), attest::kMaxEvidenceSize);
    if (doc) {
      std::string e = add("nitro_real_evervault_ga", nitro({}), *doc, from_unix_seconds(1695050165));
      if (!e.empty()) return e;
    }
    auto rep = read_file((dir / "sev-snp/virtee_milan_report.bin").string(), attest::kMaxEvidenceSize);
    auto vcek = read_file((dir / "sev-snp/virtee_milan_vcek.der").string(), attest::kMaxEvidenceSize);
    if (rep && vcek) {
      attest::SnpCertTable t;
      t.vcek = *vcek;
      std::string e = add("sev_snp_real_virtee_milan", snp({}), attest::make_snp_document(*rep, t),
                          parse_time("2024-01-01T00:00:00Z").value());
      if (!e.empty()) return e;
    }
    auto quote = read_file((dir / "tdx/dcapqvl_tdx_quote").string(), attest::kMaxEvidenceSize);
    auto bundle = read_file((dir / "tdx/dcapqvl_tdx_quote_collateral.json").string(), 1 << 20);
    if (quote && bundle) {
      auto o = attest::options_from_bundle(as_string_view(*bundle));
      if (!o) return o.status().to_string();
      std::string e = add("tdx_real_dcapqvl_with_collateral", tdx(*o), *quote, from_unix_seconds(1752919234));
      if (!e.empty()) return e;
      e = add("tdx_real_dcapqvl", tdx({}), *quote, from_unix_seconds(1752919234));
      if (!e.empty()) return e;
    }
  }

  // Bounds: one raw signature verification of each kind the documents need.
  nlohmann::json bounds = nlohmann::json::object();
  for (auto [name, curve, md, field] : {std::tuple{"ecdsa_p384_sha384_verify", "P-384", EVP_sha384(), size_t(48)},
                                        std::tuple{"ecdsa_p256_sha256_verify", "P-256", EVP_sha256(), size_t(32)}}) {
    EVP_PKEY* k = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", curve);
    const Bytes msg(1184, 0x33);
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    size_t len = 0;
    EVP_DigestSignInit(ctx, nullptr, md, nullptr, k);
    EVP_DigestSign(ctx, nullptr, &len, msg.data(), msg.size());
    Bytes sig(len);
    EVP_DigestSign(ctx, sig.data(), &len, msg.data(), msg.size());
    sig.resize(len);
    EVP_MD_CTX_free(ctx);
    crypto::PublicKey pk(k);
    const crypto::HashAlg alg = field == 48 ? crypto::HashAlg::kSha384 : crypto::HashAlg::kSha256;
    Stats st;
    std::string e = time_runs(
        n, [&] { return crypto::ecdsa_verify(pk, alg, msg, sig, crypto::SignatureFormat::kDer); }, st);
    if (!e.empty()) return std::string(name) + ": " + e;
    bounds[name] = to_json(st);
  }
  {
    const auto& ark = attest::roots::amd_arks()[0];  // RSA-4096 PSS self-signature
    Stats st;
    std::string e = time_runs(
        n, [&] { return ark.verify_signed_by(ark); }, st);
    if (!e.empty()) return "rsa_pss_4096_verify: " + e;
    bounds["rsa_pss_4096_sha384_verify"] = to_json(st);
  }
  out["suite"] = "attest";
  out["threads"] = 1;
  out["target_median_ms"] = 5.0;
  out["real_samples"] = real;
  out["documents"] = docs;
  out["bounds"] = bounds;
  out["note"] =
      "minimum signature work per document: nitro = 1 COSE + 2..4 certificate ECDSA P-384; sev-snp = 1 report "
      "ECDSA P-384 + VCEK/ASK RSA-PSS-4096 (+ARK self-signature); tdx = 4 ECDSA P-256 (quote, QE report, 2 "
      "PCK chain certificates, +root) and 3 more with collateral";
  return {};
}

const BenchRegistrar kBench("attest", "Median verification time per evidence type (Nitro, SEV-SNP, TDX) on one core",
                            bench_attest);

}  // namespace
}  // namespace cml::app
