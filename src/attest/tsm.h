// Linux configfs-tsm report interface (/sys/kernel/config/tsm/report, kernel ≥ 6.7), shared by the SEV-SNP
// and TDX providers.
//
// Flow (Documentation/ABI/testing/configfs-tsm): mkdir a fresh entry; optionally write `privlevel`; read
// `generation`; write the 64-byte report data to `inblob`; read `outblob` (report or quote) and `auxblob`
// (SNP certificate table); read `generation` again and require exactly one increment, which proves no other
// writer changed the entry between our write and our read; check `provider`; rmdir the entry (always).
// The filesystem calls go through TsmFs so tests can run the flow against a fake directory tree.
//
// Thread safety: tsm_report may be called from several threads; each call uses its own entry.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "base/bytes.h"
#include "base/status.h"

namespace cml::attest {

class TsmFs {
 public:
  virtual ~TsmFs() = default;
  virtual Status make_dir(const std::string& path);
  virtual Status remove_dir(const std::string& path);
  virtual Status write(const std::string& path, ByteSpan data);
  virtual Result<Bytes> read(const std::string& path, size_t max_bytes);
  virtual bool exists(const std::string& path);
};

struct TsmReport {
  Bytes outblob;
  Bytes auxblob;  // empty when the provider gives none
  std::string provider;
  uint64_t generation = 0;
};

// Runs one report request under `root`. `expected_provider` ("sev_guest", "tdx_guest") is checked when the
// entry exposes a `provider` file.
Result<TsmReport> tsm_report(TsmFs& fs, const std::string& root, ByteSpan inblob, std::optional<uint32_t> privlevel,
                             std::string_view expected_provider);

}  // namespace cml::attest
