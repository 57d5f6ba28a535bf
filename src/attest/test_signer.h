// Test backend: signs documents in each REAL format (Nitro COSE_Sign1, SEV-SNP report ‖ certificate table,
// TDX v4/v5 quote with QE report and PCK chain, plus TDX collateral) under a freshly generated test PKI, so
// the real parsers and verifiers run end to end (including a full SecureChannel handshake) without TEE
// hardware. Verifiers trust the test roots only through the options this class returns; the pinned vendor
// roots never accept these documents. NOT for production: the keys live in process memory.
//
// Thread safety: a TestSigner is immutable after create(); its methods are thread-safe.
#pragma once

#include <map>
#include <memory>

#include "attest/attest.h"
#include "attest/nitro.h"
#include "attest/sev_snp.h"
#include "attest/tdx.h"

namespace cml::attest {

struct TestNitroParams {
  std::map<int, Bytes> pcrs;          // default: PCR0..2 = 0x11…, 0x22…, 0x33… (48 bytes)
  std::optional<WallTime> timestamp;  // default: now
  Bytes user_data;
  bool tagged = true;
};

struct TestSnpParams {
  std::array<uint8_t, 48> measurement{};
  std::array<uint8_t, 32> host_data{};
  uint64_t policy = 0x30000;  // SMT allowed, reserved bit; no debug, no migration agent
  uint32_t vmpl = 0;
  SnpTcb tcb{0, 3, 0, 8, 115};
  bool include_chain = true;  // certificate table with VCEK, ASK and ARK
};

struct TestTdxParams {
  std::array<uint8_t, 48> mrtd{};
  std::array<std::array<uint8_t, 48>, 4> rtmr{};
  uint64_t td_attributes = 0;                    // bit 0 = DEBUG
  uint16_t version = 4;                          // 4, or 5 (TD report 1.5 body)
  std::array<uint8_t, 16> tee_tcb_svn{3, 0, 5};  // module SVN 3, major 0, late microcode 5
};

// One TCB level of generated TDX collateral.
struct TestTcbLevel {
  std::array<uint8_t, 16> sgx{};
  uint16_t pcesvn = 0;
  std::array<uint8_t, 16> tdx{};
  std::string status;
  std::vector<std::string> advisories;
};

class TestSigner {
 public:
  // Test PKIs valid over [not_before, not_after].
  static Result<std::shared_ptr<const TestSigner>> create(WallTime not_before, WallTime not_after);
  ~TestSigner();

  Result<Bytes> nitro_document(ByteSpan public_key, ByteSpan nonce, const TestNitroParams& p = {}) const;
  Result<Bytes> snp_document(ByteSpan report_data, const TestSnpParams& p = {}) const;
  Result<Bytes> tdx_quote(ByteSpan report_data, const TestTdxParams& p = {}) const;
  // TCB info (levels in order) and a QE identity matching the generated QE, signed by the test TCB signer.
  Result<TdxCollateral> tdx_collateral(const std::vector<TestTcbLevel>& levels, WallTime issue, WallTime next,
                                       uint16_t qe_min_isvsvn = 0) const;
  // A CRL issued by the test ARK over [last, next], revoking the VCEK for `tcb` when `revoke_vcek`.
  Result<crypto::Crl> snp_crl(bool revoke_vcek, WallTime last, WallTime next,
                              const SnpTcb& tcb = TestSnpParams{}.tcb) const;
  // The platform TCB in generated PCK certificates.
  static TestTcbLevel platform_tcb();

  NitroVerifierOptions nitro_options() const;
  SnpVerifierOptions snp_options() const;
  TdxVerifierOptions tdx_options() const;

  // Providers producing fresh documents of `type` that bind the handshake key and nonce.
  std::unique_ptr<Provider> provider(EvidenceType type) const;
  // Verifier of `type` trusting this signer's roots.
  std::shared_ptr<const Verifier> verifier(EvidenceType type) const;

 private:
  struct Impl;
  explicit TestSigner(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace cml::attest
