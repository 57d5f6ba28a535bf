#include "model/weights.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "model/gguf.h"
#include "model/llama2c_checkpoint.h"
#include "model/safetensors.h"
#include "model/weights_storage.h"

namespace cml::model {

int64_t TensorRef::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;  // loaders bound the product when they build the ref
  return n;
}

const TensorRef* WeightFile::find(const std::string& name) const {
  for (const TensorRef& t : tensors())
    if (t.name == name) return &t;
  return nullptr;
}

std::optional<int64_t> WeightFile::meta_int(const std::string& key) const {
  auto it = metadata().find(key);
  if (it == metadata().end()) return std::nullopt;
  if (const auto* v = std::get_if<int64_t>(&it->second)) return *v;
  if (const auto* u = std::get_if<uint64_t>(&it->second)) {
    if (*u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return static_cast<int64_t>(*u);
  }
  return std::nullopt;
}

std::optional<double> WeightFile::meta_float(const std::string& key) const {
  auto it = metadata().find(key);
  if (it == metadata().end()) return std::nullopt;
  if (const auto* v = std::get_if<double>(&it->second)) return *v;
  if (const auto* i = std::get_if<int64_t>(&it->second)) return static_cast<double>(*i);
  if (const auto* u = std::get_if<uint64_t>(&it->second)) return static_cast<double>(*u);
  return std::nullopt;
}

std::optional<std::string> WeightFile::meta_string(const std::string& key) const {
  auto it = metadata().find(key);
  if (it == metadata().end()) return std::nullopt;
  if (const auto* v = std::get_if<std::string>(&it->second)) return *v;
  return std::nullopt;
}

namespace detail {

Result<std::shared_ptr<Storage>> Storage::map_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return not_found("cannot open " + path + ": " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return invalid_argument(path + " is not a regular file");
  }
  std::shared_ptr<Storage> s(new Storage());
  s->size_ = static_cast<size_t>(st.st_size);
  if (s->size_ > 0) {
    void* p = ::mmap(nullptr, s->size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      int err = errno;
      ::close(fd);
      return unavailable("cannot map " + path + ": " + std::strerror(err));
    }
    s->map_ = p;
    s->data_ = static_cast<const uint8_t*>(p);
  }
  ::close(fd);
  return s;
}

std::shared_ptr<Storage> Storage::borrow(ByteSpan bytes) {
  std::shared_ptr<Storage> s(new Storage());
  s->data_ = bytes.data();
  s->size_ = bytes.size();
  return s;
}

std::shared_ptr<Storage> Storage::copy_aligned(ByteSpan bytes) {
  std::shared_ptr<Storage> s(new Storage());
  size_t alloc = (bytes.size() + 63) / 64 * 64;
  if (alloc == 0) alloc = 64;
  void* p = std::aligned_alloc(64, alloc);
  CML_CHECK_MSG(p != nullptr, "out of memory copying weights");
  if (!bytes.empty()) std::memcpy(p, bytes.data(), bytes.size());
  s->heap_ = p;
  s->data_ = static_cast<const uint8_t*>(p);
  s->size_ = bytes.size();
  return s;
}

Storage::~Storage() {
  if (map_) ::munmap(map_, size_);
  if (heap_) std::free(heap_);
}

void BasicWeightFile::ensure_aligned() {
  bool misaligned = false;
  const uint8_t* lo = nullptr;
  const uint8_t* hi = nullptr;
  for (const TensorRef& t : tensors_) {
    auto p = static_cast<const uint8_t*>(t.data);
    if (t.nbytes == 0 || p == nullptr) continue;
    if (reinterpret_cast<uintptr_t>(p) % tensor::dtype_size(t.dtype) != 0) misaligned = true;
    if (!lo || p < lo) lo = p;
    if (!hi || p + t.nbytes > hi) hi = p + t.nbytes;
  }
  if (!misaligned) return;
  aligned_ = Storage::copy_aligned(ByteSpan(lo, static_cast<size_t>(hi - lo)));
  for (TensorRef& t : tensors_) {
    if (t.nbytes == 0 || t.data == nullptr) continue;
    t.data = aligned_->bytes().data() + (static_cast<const uint8_t*>(t.data) - lo);
  }
}

Result<std::unique_ptr<WeightFile>> open_mapped(const std::string& path, StorageParser parse) {
  CML_ASSIGN_OR_RETURN(auto storage, Storage::map_file(path));
  auto r = parse(std::move(storage));
  if (!r.is_ok()) return r.status().with_context(path);
  return r;
}

Result<uint64_t> checked_nbytes(std::span<const int64_t> shape, size_t elem_size, const std::string& what) {
  uint64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) return invalid_argument(what + ": negative dimension " + std::to_string(d));
    if (!checked_mul(n, static_cast<uint64_t>(d), &n) || n > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      return invalid_argument(what + ": element count overflows");
  }
  uint64_t bytes = 0;
  if (!checked_mul(n, elem_size, &bytes) || bytes > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
    return invalid_argument(what + ": byte size overflows");
  return bytes;
}

}  // namespace detail

namespace {
enum class Format { kGguf, kSafetensors, kLlama2c, kUnknown };

Format detect(ByteSpan b) {
  if (b.size() >= 4 && std::memcmp(b.data(), "GGUF", 4) == 0) return Format::kGguf;
  if (b.size() >= 9) {
    uint64_t n = load_u64_le(b.data());
    if (n >= 2 && n <= b.size() - 8 && b[8] == '{') return Format::kSafetensors;
  }
  if (b.size() >= 28) return Format::kLlama2c;
  return Format::kUnknown;
}
}  // namespace

Result<std::unique_ptr<WeightFile>> open_weight_file(const std::string& path) {
  // Sniff the first bytes, then let the loader map the file itself.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return not_found("cannot open " + path + ": " + std::strerror(errno));
  uint8_t head[16] = {};
  ssize_t got = ::read(fd, head, sizeof head);
  struct stat st {};
  bool regular = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
  ::close(fd);
  if (!regular) return invalid_argument(path + " is not a regular file");
  if (got < 0) return unavailable("cannot read " + path);
  // Safetensors detection needs the file size, not only the first bytes.
  uint64_t size = static_cast<uint64_t>(st.st_size);
  ByteSpan b(head, static_cast<size_t>(got));
  if (b.size() >= 4 && std::memcmp(b.data(), "GGUF", 4) == 0) return open_gguf(path);
  if (b.size() >= 9) {
    uint64_t n = load_u64_le(b.data());
    if (n >= 2 && n <= size - 8 && b[8] == '{') return open_safetensors(path);
  }
  if (size >= 28) {
    auto r = open_llama2c_checkpoint(path);
    if (r.is_ok()) return r;
    return invalid_argument(path + " is not a GGUF or safetensors file, nor a valid llama2.c checkpoint (" +
                            r.status().message() + ")");
  }
  return invalid_argument(path + " is not a GGUF, safetensors or llama2.c weight file (too short)");
}

Result<std::unique_ptr<WeightFile>> parse_weight_bytes(ByteSpan data) {
  switch (detect(data)) {
    case Format::kGguf:
      return parse_gguf(data);
    case Format::kSafetensors:
      return parse_safetensors(data);
    case Format::kLlama2c:
      return parse_llama2c_checkpoint(data);
    case Format::kUnknown:
      break;
  }
  return invalid_argument("not a GGUF, safetensors or llama2.c weight image (too short)");
}

}  // namespace cml::model
