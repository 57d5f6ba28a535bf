#include "attest/roots.h"

#include "attest/roots_data.h"

namespace cml::attest::roots {

namespace {
crypto::Certificate load(const roots_data::PinnedCert& pc) {
  auto chain = crypto::Certificate::chain_from_pem(pc.pem);
  CML_CHECK_MSG(chain.is_ok() && chain->size() == 1, std::string("embedded certificate ") + std::string(pc.name));
  const auto fp = (*chain)[0].fingerprint_sha256();
  CML_CHECK_MSG(to_hex(fp) == pc.sha256_hex, std::string("pinned fingerprint mismatch for ") + std::string(pc.name));
  return (*chain)[0];
}
}  // namespace

const crypto::Certificate& aws_nitro_root_g1() {
  static const crypto::Certificate c = load(roots_data::kAwsNitroRootG1);
  return c;
}

const crypto::Certificate& intel_sgx_root_ca() {
  static const crypto::Certificate c = load(roots_data::kIntelSgxRootCa);
  return c;
}

const std::vector<crypto::Certificate>& amd_arks() {
  static const std::vector<crypto::Certificate> v = {load(roots_data::kAmdArkMilan), load(roots_data::kAmdArkGenoa),
                                                     load(roots_data::kAmdArkTurin)};
  return v;
}

const std::vector<crypto::Certificate>& amd_intermediates() {
  static const std::vector<crypto::Certificate> v = {load(roots_data::kAmdAskMilan), load(roots_data::kAmdAsvkMilan),
                                                     load(roots_data::kAmdAskGenoa), load(roots_data::kAmdAsvkGenoa),
                                                     load(roots_data::kAmdAskTurin), load(roots_data::kAmdAsvkTurin)};
  return v;
}

}  // namespace cml::attest::roots
