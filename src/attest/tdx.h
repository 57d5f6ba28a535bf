// Intel TDX: DCAP quote (v4, v5) parser, verifier with optional collateral, and the configfs-tsm provider.
//
// verify(): header (version 4/5, ECDSA-P256 attestation key, TEE type TDX); quote signature over
// header‖[v5 body descriptor]‖TD report by the attestation key; QE certification data (type 6): the QE
// report is signed by the PCK leaf key, and QE report_data = SHA-256(attestation key ‖ QE auth data) ‖ 0³²;
// the PCK chain (PEM, type 5) verifies to the pinned Intel SGX Root CA at `now` (with the PCK and root CRLs
// when given). With collateral (TCB info + QE identity + TCB signing chain): both signatures verify under
// the TCB signing certificate (chained to the same root), both are current at `now` (issueDate ≤ now ≤
// nextUpdate), FMSPC/PCE-ID match the PCK certificate, the QE matches its identity (MRSIGNER, ISVPRODID,
// masked MISCSELECT/ATTRIBUTES) and gets a QE TCB status, the platform TCB level is the first whose SGX
// components and PCESVN (from the PCK certificate) and TDX components (from TEE_TCB_SVN) are all ≥, the TDX
// module identity is checked, and the statuses converge into Claims::tcb_status with the advisory ids.
//
// Thread safety: TdxVerifier is immutable and thread-safe; TdxProvider serialises its calls.
#pragma once

#include <array>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "attest/attest.h"
#include "attest/tsm.h"
#include "crypto/x509.h"

namespace cml::attest {

constexpr size_t kTdxHeaderSize = 48;
constexpr size_t kTdReport10Size = 584;
constexpr size_t kTdReport15Size = 648;
constexpr size_t kSgxReportSize = 384;

struct TdReport {
  std::array<uint8_t, 16> tee_tcb_svn{};
  std::array<uint8_t, 48> mrseam{}, mrsignerseam{};
  uint64_t seam_attributes = 0, td_attributes = 0, xfam = 0;
  std::array<uint8_t, 48> mrtd{}, mrconfigid{}, mrowner{}, mrownerconfig{};
  std::array<std::array<uint8_t, 48>, 4> rtmr{};
  std::array<uint8_t, 64> report_data{};
  std::optional<std::array<uint8_t, 16>> tee_tcb_svn2;  // TD report 1.5
  std::optional<std::array<uint8_t, 48>> mrservicetd;
};

// SGX enclave report body (the QE report).
struct SgxReport {
  std::array<uint8_t, 16> cpu_svn{};
  uint32_t misc_select = 0;
  std::array<uint8_t, 16> attributes{};
  std::array<uint8_t, 32> mrenclave{}, mrsigner{};
  uint16_t isv_prod_id = 0, isv_svn = 0;
  std::array<uint8_t, 64> report_data{};
};

struct TdxQuote {
  uint16_t version = 0, att_key_type = 0, qe_svn = 0, pce_svn = 0;
  uint32_t tee_type = 0;
  uint16_t body_type = 2;  // 2 = TD report 1.0, 3 = TD report 1.5
  TdReport body;
  ByteSpan signed_part;  // header ‖ [v5 descriptor] ‖ body (a view into the parsed buffer)
  std::array<uint8_t, 64> signature{}, attestation_key{};
  ByteSpan qe_report_raw;
  SgxReport qe_report;
  std::array<uint8_t, 64> qe_report_signature{};
  ByteSpan qe_auth_data;
  ByteSpan pck_chain_pem;
  size_t trailing_bytes = 0;  // unsigned bytes after the signature data (tolerated, reported)
};
// Views point into `raw`, which must outlive the result.
Result<TdxQuote> parse_tdx_quote(ByteSpan raw);

// Intel PCS collateral for one quote.
struct TdxCollateral {
  std::string tcb_info_json;     // raw text of the inner "tcbInfo" object (the signed bytes)
  Bytes tcb_info_signature;      // 64-byte r‖s
  std::string qe_identity_json;  // raw text of the inner "enclaveIdentity" object
  Bytes qe_identity_signature;
  std::vector<crypto::Certificate> tcb_signing_chain;  // TCB signing cert (+ root), PEM from PCS
};
// From Intel PCS response bodies: {"tcbInfo":{…},"signature":"…"} and {"enclaveIdentity":{…},"signature":"…"}.
Result<TdxCollateral> collateral_from_pcs(std::string_view tcb_info_body, std::string_view qe_identity_body,
                                          std::string_view tcb_signing_chain_pem);
struct TdxVerifierOptions {
  std::vector<crypto::Certificate> roots;  // empty = the pinned Intel SGX Root CA
  std::optional<TdxCollateral> collateral;
  // PCK CRL and/or root CA CRL; each must be current and is applied to the chains it belongs to.
  std::vector<crypto::Crl> crls;
  // Without collateral the quote is authenticated but has no TCB status; set to refuse that.
  bool require_collateral = false;
};

// Collateral and CRLs from a QuoteCollateralV3 JSON bundle (tcb_info, tcb_info_signature,
// tcb_info_issuer_chain, qe_identity, qe_identity_signature, pck_crl, root_ca_crl).
Result<TdxVerifierOptions> options_from_bundle(std::string_view json);

struct TdxPreparedCollateral;  // parsed JSON and time-independent signature results (tdx.cpp)

class TdxVerifier final : public Verifier {
 public:
  // Parses the collateral and checks its signatures once; validity times are checked on every verify().
  explicit TdxVerifier(TdxVerifierOptions options = {});
  EvidenceType type() const override { return EvidenceType::kTdx; }
  Result<Claims> verify(ByteSpan document, WallTime now) const override;

 private:
  TdxVerifierOptions options_;
  std::shared_ptr<const TdxPreparedCollateral> prepared_;
};

// PCK certificate SGX extension (OID 1.2.840.113741.1.13.1): the platform TCB the PCK was issued for.
struct PckTcb {
  std::array<uint8_t, 16> sgx_svn{};
  uint16_t pce_svn = 0;
  std::array<uint8_t, 6> fmspc{};
  std::array<uint8_t, 2> pce_id{};
};
Result<PckTcb> parse_pck_extension(const crypto::Certificate& pck);

// Provider through configfs-tsm (provider "tdx_guest"); outblob is the quote.
class TdxProvider final : public Provider {
 public:
  explicit TdxProvider(std::string tsm_root = "/sys/kernel/config/tsm/report", std::shared_ptr<TsmFs> fs = nullptr);
  EvidenceType type() const override { return EvidenceType::kTdx; }
  Result<Evidence> attest(ByteSpan public_key, ByteSpan nonce) override;

 private:
  std::mutex mu_;
  std::string root_;
  std::shared_ptr<TsmFs> fs_;
};

}  // namespace cml::attest
