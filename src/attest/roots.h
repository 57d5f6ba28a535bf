// Pinned trust anchors shipped in the binary, parsed once and cached (thread-safe static init).
// Each is checked against its SHA-256 fingerprint pin on first use; a mismatch is a build defect and aborts.
#pragma once

#include <vector>

#include "crypto/x509.h"

namespace cml::attest::roots {

// AWS Nitro Enclaves Root-G1 (fingerprint 641a0321…bb5b).
const crypto::Certificate& aws_nitro_root_g1();
// Intel SGX Root CA (fingerprint 44a0196b…74d3), root of PCK, TCB-signing and CRL chains.
const crypto::Certificate& intel_sgx_root_ca();
// AMD Root Keys for Milan, Genoa, Turin.
const std::vector<crypto::Certificate>& amd_arks();
// AMD ASK (VCEK issuers) and ASVK (VLEK issuers) for the same products; untrusted intermediates.
const std::vector<crypto::Certificate>& amd_intermediates();

}  // namespace cml::attest::roots
