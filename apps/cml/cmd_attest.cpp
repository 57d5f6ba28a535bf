// `cml attest verify`: check Nitro, SEV-SNP or TDX evidence by hand (exit 0 only when it verifies and every
// expectation holds; otherwise one line naming the failed check). The logic is attest/evidence_check.h.
#include <CLI/CLI.hpp>
#include <iostream>

#include "apps/cml/commands.h"
#include "attest/evidence_check.h"

namespace cml::app {
namespace {

struct AttestVerifyFlags {
  std::string type, evidence, at, vcek, cert_chain, tcb_info, qe_identity, tcb_signing_chain, collateral;
  std::string pck_crl, root_crl, crl;
  std::vector<std::string> expect;
  int64_t max_age_s = -1;
  bool json = false;
};

void run_verify(const AttestVerifyFlags& f) {
  attest::CheckRequest r;
  auto fail_input = [&](const std::string& why) {
    std::cerr << "FAILED (input): " << why << "\n";
    set_exit_code(2);
  };
  auto type = attest::parse_evidence_type(f.type);
  if (!type) return fail_input(type.status().message());
  r.type = *type;
  r.evidence_path = f.evidence;
  if (f.at.empty()) {
    r.at = Clock::system().now();
  } else {
    auto t = parse_time(f.at);
    if (!t) return fail_input("--at: " + t.status().message());
    r.at = *t;
  }
  r.vcek_path = f.vcek;
  r.cert_chain_path = f.cert_chain;
  r.tcb_info_path = f.tcb_info;
  r.qe_identity_path = f.qe_identity;
  r.tcb_signing_chain_path = f.tcb_signing_chain;
  r.collateral_bundle_path = f.collateral;
  r.snp_crl_path = f.crl;
  r.pck_crl_path = f.pck_crl;
  r.root_crl_path = f.root_crl;
  if (f.max_age_s >= 0) r.max_age = std::chrono::seconds(f.max_age_s);
  for (const auto& e : f.expect) {
    auto p = attest::parse_expectation(e);
    if (!p) return fail_input("--expect: " + p.status().message());
    r.expectations.push_back(std::move(*p));
  }
  attest::CheckOutcome o = attest::check_evidence(r);
  if (f.json) {
    std::cout << attest::outcome_json(r, o) << "\n";
  } else if (o.ok) {
    std::cout << attest::outcome_line(o) << "\n";
  } else {
    std::cerr << attest::outcome_line(o) << "\n";
  }
  if (!o.ok) set_exit_code(o.failed_check == "input" ? 2 : 1);
}

const CommandRegistrar kAttest("attest", [](CLI::App& root) {
  auto* attest = root.add_subcommand("attest", "Attestation evidence tools");
  attest->require_subcommand(1);
  auto f = std::make_shared<AttestVerifyFlags>();
  auto* v = attest->add_subcommand("verify", "Verify Nitro, SEV-SNP or TDX evidence offline at a given time");
  v->add_option("--type", f->type, "nitro | sev-snp | tdx")->required();
  v->add_option("--evidence", f->evidence, "Evidence file (raw, .b64 or .hex)")->required();
  v->add_option("--at", f->at, "Verification time: Unix seconds or RFC 3339 (default: now)");
  v->add_flag("--json", f->json, "Print the verdict, claims and reason as JSON");
  v->add_option("--vcek", f->vcek, "SEV-SNP: VCEK or VLEK certificate (DER or PEM)");
  v->add_option("--cert-chain", f->cert_chain, "SEV-SNP: ASK/ASVK + ARK chain (PEM)");
  v->add_option("--crl", f->crl, "SEV-SNP: AMD ARK CRL from KDS (DER or PEM), checked against the chain");
  v->add_option("--tcb-info", f->tcb_info, "TDX: Intel PCS TCB info response body");
  v->add_option("--qe-identity", f->qe_identity, "TDX: Intel PCS QE identity response body");
  v->add_option("--tcb-signing-chain", f->tcb_signing_chain, "TDX: TCB signing issuer chain (PEM)");
  v->add_option("--collateral", f->collateral, "TDX: QuoteCollateralV3 JSON bundle (instead of the three above)");
  v->add_option("--pck-crl", f->pck_crl, "TDX: PCK CA CRL (DER, PEM or hex)");
  v->add_option("--root-crl", f->root_crl, "TDX: Intel SGX Root CA CRL (DER, PEM or hex)");
  v->add_option("--max-age", f->max_age_s, "Nitro: refuse documents older than this many seconds");
  v->add_option("--expect", f->expect, "NAME=HEX that must hold (pcr0, measurement, mrtd, report_data, nonce…)");
  v->callback([f] { run_verify(*f); });
});

}  // namespace
}  // namespace cml::app
