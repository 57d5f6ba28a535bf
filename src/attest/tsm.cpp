#include "attest/tsm.h"

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>

#include "attest/attest.h"

namespace cml::attest {

Status TsmFs::make_dir(const std::string& path) {
  if (::mkdir(path.c_str(), 0700) != 0)
    return unavailable("cannot create configfs-tsm entry " + path + ": " + std::strerror(errno));
  return ok_status();
}

Status TsmFs::remove_dir(const std::string& path) {
  if (::rmdir(path.c_str()) != 0) return unavailable("cannot remove " + path + ": " + std::strerror(errno));
  return ok_status();
}

Status TsmFs::write(const std::string& path, ByteSpan data) {
  return write_file(path, data);
}

Result<Bytes> TsmFs::read(const std::string& path, size_t max_bytes) {
  return read_file(path, max_bytes);
}

bool TsmFs::exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

namespace {

Result<uint64_t> read_generation(TsmFs& fs, const std::string& entry) {
  CML_ASSIGN_OR_RETURN(Bytes g, fs.read(entry + "/generation", 32));
  std::string text(g.begin(), g.end());
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  if (text.empty() || text.size() > 20 || text.find_first_not_of("0123456789") != std::string::npos)
    return invalid_argument("configfs-tsm generation is not a number");
  return std::stoull(text);
}

// Removes the entry on every exit path.
class EntryGuard {
 public:
  EntryGuard(TsmFs& fs, std::string path) : fs_(fs), path_(std::move(path)) {}
  ~EntryGuard() { fs_.remove_dir(path_).ignore_error(); }

 private:
  TsmFs& fs_;
  std::string path_;
};

}  // namespace

Result<TsmReport> tsm_report(TsmFs& fs, const std::string& root, ByteSpan inblob, std::optional<uint32_t> privlevel,
                             std::string_view expected_provider) {
  static std::atomic<uint64_t> counter{0};
  if (!fs.exists(root)) return unavailable("configfs-tsm report interface not found at " + root);
  const std::string entry = root + "/cml-" + std::to_string(::getpid()) + "-" + std::to_string(counter.fetch_add(1));
  CML_RETURN_IF_ERROR(fs.make_dir(entry));
  EntryGuard guard(fs, entry);
  if (privlevel) CML_RETURN_IF_ERROR(fs.write(entry + "/privlevel", as_bytes(std::to_string(*privlevel))));
  CML_ASSIGN_OR_RETURN(uint64_t before, read_generation(fs, entry));
  CML_RETURN_IF_ERROR(fs.write(entry + "/inblob", inblob));
  TsmReport out;
  CML_ASSIGN_OR_RETURN(out.outblob, fs.read(entry + "/outblob", kMaxEvidenceSize));
  if (out.outblob.empty()) return unavailable("configfs-tsm returned an empty report");
  if (fs.exists(entry + "/auxblob")) {
    auto aux = fs.read(entry + "/auxblob", kMaxEvidenceSize);
    if (aux) out.auxblob = std::move(*aux);  // reading auxblob fails when the platform has none
  }
  CML_ASSIGN_OR_RETURN(out.generation, read_generation(fs, entry));
  if (out.generation != before + 1)
    return aborted("configfs-tsm entry changed while reading (generation " + std::to_string(before) + " -> " +
                   std::to_string(out.generation) + "); another writer raced this request");
  if (fs.exists(entry + "/provider")) {
    CML_ASSIGN_OR_RETURN(Bytes p, fs.read(entry + "/provider", 64));
    out.provider.assign(p.begin(), p.end());
    while (!out.provider.empty() && out.provider.back() == '\n') out.provider.pop_back();
    if (!expected_provider.empty() && out.provider != expected_provider)
      return unavailable("configfs-tsm provider is '" + out.provider + "', expected '" +
                         std::string(expected_provider) + "'");
  }
  return out;
}

}  // namespace cml::attest
