// libFuzzer harnesses for the attestation parsers of outside bytes. One source, three targets selected by
// CML_FUZZ_TARGET: cose (COSE_Sign1 + Nitro payload CBOR + certificate DER), snp_report (1184-byte report,
// certificate table, VCEK extensions), tdx_quote (quote v4/v5, QE certification data, PCK PEM chain and its
// SGX extension). Signature checks are left to the unit tests: the harness covers every parsing step.
#include <cstddef>
#include <cstdint>

#include "attest/cose.h"
#include "attest/nitro.h"
#include "attest/sev_snp.h"
#include "attest/tdx.h"
#include "crypto/x509.h"

using namespace cml;
using namespace cml::attest;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const ByteSpan in(data, size);
#if CML_FUZZ_TARGET == 1
  auto doc = parse_nitro_document(in);
  if (doc) {
    (void)cose::sig_structure(doc->protected_header, doc->payload);
    for (const auto& c : doc->cabundle) (void)crypto::Certificate::from_der(c);
    auto leaf = crypto::Certificate::from_der(doc->certificate);
    if (leaf) (void)leaf->public_key();
  }
  (void)cose::precheck_cbor(in);
#elif CML_FUZZ_TARGET == 2
  if (size >= kSnpReportSize) {
    auto rep = parse_snp_report(in.first(kSnpReportSize));
    auto table = parse_snp_cert_table(in.subspan(kSnpReportSize));
    if (table && table->vcek) {
      auto vcek = crypto::Certificate::from_der(*table->vcek);
      if (vcek) {
        for (const char* oid : {"1.3.6.1.4.1.3704.1.3.1", "1.3.6.1.4.1.3704.1.4", "1.3.6.1.4.1.3704.1.2"}) {
          auto ext = vcek->extension(oid);
          if (!ext) continue;
          crypto::DerReader r(*ext);
          while (!r.empty() && r.next()) {
          }
        }
      }
    }
    (void)rep;
  } else {
    (void)parse_snp_cert_table(in);
  }
  // Full verification path up to the first cryptographic check (no chain in a fuzzed table verifies).
  (void)SnpVerifier().verify(in, WallTime{});
#elif CML_FUZZ_TARGET == 3
  auto q = parse_tdx_quote(in);
  if (q) {
    auto chain = crypto::Certificate::chain_from_pem(as_string_view(q->pck_chain_pem));
    if (chain) (void)parse_pck_extension((*chain)[0]);
  }
#else
#error "define CML_FUZZ_TARGET"
#endif
  return 0;
}
