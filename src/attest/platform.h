// Platform selection: the real evidence provider for an attestation type, and a verifier of that type
// trusting only the pinned vendor roots. Used by the pipeline commands (a stage's provider comes from the
// manifest's attestation type; orchestrator and stages verify peers with the pinned roots).
//
// Providers are checked at open: a provider whose device or configfs directory is missing fails here with
// UNAVAILABLE naming the path, so a stage refuses to start rather than failing at its first handshake.
//
// Thread safety: free functions, no shared state.
#pragma once

#include <memory>
#include <string>

#include "attest/attest.h"

namespace cml::attest {

struct PlatformPaths {
  std::string nsm_device = "/dev/nsm";                     // Nitro Secure Module
  std::string tsm_root = "/sys/kernel/config/tsm/report";  // configfs-tsm (SEV-SNP, TDX)
  std::string sev_guest = "/dev/sev-guest";                // SEV-SNP fallback when configfs-tsm is absent
};

// nitro → NSM on paths.nsm_device; sev-snp → configfs-tsm, else /dev/sev-guest; tdx → configfs-tsm.
// INVALID_ARGUMENT for mock (no platform device); UNAVAILABLE naming the path when it cannot be opened.
Result<std::unique_ptr<Provider>> open_platform_provider(EvidenceType type, const PlatformPaths& paths = {});

// Verifier for a real type with the pinned production roots and no collateral (TDX: no TCB status, so the
// policy sees none; SNP: no CRL). INVALID_ARGUMENT for mock.
Result<std::shared_ptr<const Verifier>> pinned_verifier(EvidenceType type);

}  // namespace cml::attest
