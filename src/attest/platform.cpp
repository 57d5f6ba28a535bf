#include "attest/platform.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "attest/nitro.h"
#include "attest/sev_snp.h"
#include "attest/tdx.h"

namespace cml::attest {
namespace {

// OK when `path` opens read-write (a character device such as /dev/nsm or /dev/sev-guest).
Status probe_device(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return unavailable("cannot open " + path + ": " + std::strerror(errno));
  ::close(fd);
  return ok_status();
}

bool is_directory(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

}  // namespace

Result<std::unique_ptr<Provider>> open_platform_provider(EvidenceType type, const PlatformPaths& paths) {
  switch (type) {
    case EvidenceType::kNitro: {
      if (Status st = probe_device(paths.nsm_device); !st.is_ok())
        return unavailable("nitro attestation: " + st.message() + " (not inside a Nitro enclave?)");
      return std::unique_ptr<Provider>(std::make_unique<NitroProvider>(open_nsm_device(paths.nsm_device)));
    }
    case EvidenceType::kSevSnp: {
      SnpProvider::Options o;
      o.tsm_root = paths.tsm_root;
      o.sev_guest_path = paths.sev_guest;
      if (!is_directory(paths.tsm_root)) {
        Status st = paths.sev_guest.empty() ? unavailable("no fallback device") : probe_device(paths.sev_guest);
        if (!st.is_ok())
          return unavailable("sev-snp attestation: configfs-tsm directory " + paths.tsm_root + " is missing and " +
                             st.message() + " (not inside an SEV-SNP guest?)");
      }
      return std::unique_ptr<Provider>(std::make_unique<SnpProvider>(o));
    }
    case EvidenceType::kTdx: {
      if (!is_directory(paths.tsm_root))
        return unavailable("tdx attestation: configfs-tsm directory " + paths.tsm_root +
                           " is missing (not inside a TDX guest, or kernel < 6.7?)");
      return std::unique_ptr<Provider>(std::make_unique<TdxProvider>(paths.tsm_root));
    }
    case EvidenceType::kMock:
      break;
  }
  return invalid_argument("attestation type " + std::string(evidence_type_name(type)) + " has no platform provider");
}

Result<std::shared_ptr<const Verifier>> pinned_verifier(EvidenceType type) {
  switch (type) {
    case EvidenceType::kNitro:
      return std::shared_ptr<const Verifier>(std::make_shared<NitroVerifier>());
    case EvidenceType::kSevSnp:
      return std::shared_ptr<const Verifier>(std::make_shared<SnpVerifier>());
    case EvidenceType::kTdx:
      return std::shared_ptr<const Verifier>(std::make_shared<TdxVerifier>());
    case EvidenceType::kMock:
      break;
  }
  return invalid_argument("attestation type " + std::string(evidence_type_name(type)) + " has no pinned roots");
}

}  // namespace cml::attest
