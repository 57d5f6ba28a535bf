// AMD SEV-SNP: attestation report parser, verifier, appraisal policy, and providers (configfs-tsm and
// /dev/sev-guest).
//
// Wire format of an SNP document (what travels in the handshake; docs/notes/attest.md):
//   document = report (exactly 1184 bytes) ‖ [certificate table]
// The certificate table is AMD's GUID table, byte-for-byte what the kernel returns in configfs-tsm
// `auxblob` or in the SNP_GET_EXT_REPORT certificate buffer: entries {guid[16], offset u32 LE, length u32 LE}
// ending with an all-zero entry, followed by the DER certificates; offsets count from the table's start.
// GUIDs name VCEK, VLEK, ASK and ARK. A bare 1184-byte report is accepted when the verifier is configured
// with the endorsement certificate (the `--vcek` of `cml attest verify`).
//
// verify(): report version ≥ 2, signature algorithm ECDSA P-384, the endorsement key named by the report
// (VCEK or VLEK) chains VEK → ASK/ASVK → ARK where the ARK is one of the pinned AMD roots (Milan, Genoa,
// Turin), every certificate valid at `now`, optional CRLs (the ARK's CRL) current and not revoking; the
// report signature verifies under the VEK; the TCB values in the VCEK extensions equal the report's
// reported_tcb and hwID equals chip_id (unless masked). appraise_snp() then checks VMPL, policy bits and
// the minimum TCB.
//
// Thread safety: SnpVerifier is immutable and thread-safe; providers serialise their calls.
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

constexpr size_t kSnpReportSize = 1184;
constexpr size_t kSnpSignedSize = 0x2A0;

// Decoded TCB version (field meaning depends on the product: Turin adds FMC and moves the fields).
struct SnpTcb {
  uint8_t fmc = 0, bootloader = 0, tee = 0, snp = 0, microcode = 0;
  bool operator==(const SnpTcb&) const = default;
};
enum class SnpProduct { kUnknown, kMilan, kGenoa, kTurin };
std::string_view snp_product_name(SnpProduct p);
SnpTcb decode_snp_tcb(uint64_t raw, SnpProduct product);
uint64_t encode_snp_tcb(const SnpTcb& tcb, SnpProduct product);

enum class SnpSigningKey : uint8_t { kVcek = 0, kVlek = 1, kNone = 7 };

struct SnpReport {
  uint32_t version = 0, guest_svn = 0, vmpl = 0, signature_algo = 0, flags = 0;
  uint64_t policy = 0, current_tcb = 0, platform_info = 0, reported_tcb = 0, committed_tcb = 0, launch_tcb = 0;
  std::array<uint8_t, 16> family_id{}, image_id{};
  std::array<uint8_t, 64> report_data{};
  std::array<uint8_t, 48> measurement{}, id_key_digest{}, author_key_digest{};
  std::array<uint8_t, 32> host_data{}, report_id{}, report_id_ma{};
  std::array<uint8_t, 64> chip_id{};
  uint8_t cpuid_fam = 0, cpuid_mod = 0, cpuid_step = 0;  // version ≥ 3
  std::array<uint8_t, 144> signature{};                  // r (72, LE) ‖ s (72, LE)
  SnpSigningKey signing_key() const { return static_cast<SnpSigningKey>((flags >> 2) & 7); }
  bool mask_chip_key() const { return (flags >> 1) & 1; }
  bool debug_allowed() const { return (policy >> 19) & 1; }
  bool migrate_ma_allowed() const { return (policy >> 18) & 1; }
  bool smt_allowed() const { return (policy >> 16) & 1; }
  bool single_socket_required() const { return (policy >> 20) & 1; }
};
// Exactly kSnpReportSize bytes; INVALID_ARGUMENT otherwise.
Result<SnpReport> parse_snp_report(ByteSpan raw);

// Certificate table (GUID table) entries by role.
struct SnpCertTable {
  std::optional<Bytes> vcek, vlek, ask, ark;
};
Result<SnpCertTable> parse_snp_cert_table(ByteSpan table);
Bytes encode_snp_cert_table(const SnpCertTable& certs);
// report ‖ certificate table (table omitted when `certs` is empty).
Bytes make_snp_document(ByteSpan report, const SnpCertTable& certs);

struct SnpVerifierOptions {
  // Trusted AMD root keys; empty = the pinned ARKs for Milan, Genoa and Turin.
  std::vector<crypto::Certificate> arks;
  // Extra untrusted intermediates (ASK/ASVK); the AMD ones for the three products are always added.
  std::vector<crypto::Certificate> intermediates;
  // Endorsement certificate to use when the document carries none (a bare report).
  std::optional<crypto::Certificate> vek;
  // Optional CRLs (AMD KDS publishes one per ARK); each must be current at `now` and signed in-chain.
  std::vector<crypto::Crl> crls;
  // Compare the VCEK's TCB extensions and hwID with the report (AMD's guidance; on by default).
  bool check_tcb_binding = true;
};

class SnpVerifier final : public Verifier {
 public:
  explicit SnpVerifier(SnpVerifierOptions options = {});
  EvidenceType type() const override { return EvidenceType::kSevSnp; }
  Result<Claims> verify(ByteSpan document, WallTime now) const override;

 private:
  SnpVerifierOptions options_;
};

// SNP-specific appraisal over verified Claims (details written by SnpVerifier).
struct SnpPolicy {
  std::optional<uint32_t> required_vmpl = 0;  // reports requested at another VMPL are refused
  bool allow_migration_agent = false;         // policy MIGRATE_MA
  bool allow_smt = true;                      // false: refuse guests whose policy allows SMT
  bool require_single_socket = false;
  std::optional<SnpTcb> min_tcb;  // every component of reported_tcb must be ≥
  std::optional<uint32_t> min_guest_svn;
};
Status appraise_snp(const Claims& claims, const SnpPolicy& policy);

// Provider through Linux configfs-tsm (kernel ≥ 6.7): report = outblob, certificate table = auxblob.
// Falls back to /dev/sev-guest (SNP_GET_EXT_REPORT) when `sev_guest_path` is set and configfs is absent.
class SnpProvider final : public Provider {
 public:
  struct Options {
    std::string tsm_root = "/sys/kernel/config/tsm/report";
    std::string sev_guest_path = "/dev/sev-guest";
    uint32_t privlevel = 0;  // VMPL requested
  };
  explicit SnpProvider(Options options, std::shared_ptr<TsmFs> fs = nullptr);
  EvidenceType type() const override { return EvidenceType::kSevSnp; }
  Result<Evidence> attest(ByteSpan public_key, ByteSpan nonce) override;

 private:
  std::mutex mu_;
  Options options_;
  std::shared_ptr<TsmFs> fs_;
};

// Hardware-only path: SNP_GET_EXT_REPORT (certificates included) on /dev/sev-guest.
Result<Bytes> sev_guest_ext_report(const std::string& device, ByteSpan report_data, uint32_t vmpl);

// report_data = public_key(32) ‖ nonce(32) (both exactly 32 bytes).
Result<std::array<uint8_t, 64>> make_report_data(ByteSpan public_key, ByteSpan nonce);

}  // namespace cml::attest
