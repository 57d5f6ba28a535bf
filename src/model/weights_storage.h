// Internal to the model module: the storage behind a WeightFile (an mmap, an aligned heap copy, or
// borrowed bytes) and the WeightFile implementation that every loader fills. Not a public header.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "base/status.h"
#include "model/weights.h"

namespace cml::model::detail {

// Bytes that tensors point into. Move-only RAII owner of a read-only private mapping or a heap buffer.
class Storage {
 public:
  // Maps a regular file read-only. An empty file gives empty bytes.
  static Result<std::shared_ptr<Storage>> map_file(const std::string& path);
  // Wraps caller-owned bytes (the caller keeps them alive).
  static std::shared_ptr<Storage> borrow(ByteSpan bytes);
  // A 64-byte aligned heap copy.
  static std::shared_ptr<Storage> copy_aligned(ByteSpan bytes);

  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  ~Storage();

  ByteSpan bytes() const { return {data_, size_}; }

 private:
  Storage() = default;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  void* map_ = nullptr;   // munmap on destruction when set
  void* heap_ = nullptr;  // free on destruction when set
};

class BasicWeightFile final : public WeightFile {
 public:
  BasicWeightFile(std::string format, std::shared_ptr<Storage> storage)
      : format_(std::move(format)), storage_(std::move(storage)) {}

  std::string format() const override { return format_; }
  const std::vector<TensorRef>& tensors() const override { return tensors_; }
  const std::map<std::string, MetaValue>& metadata() const override { return meta_; }

  std::vector<TensorRef>& mutable_tensors() { return tensors_; }
  std::map<std::string, MetaValue>& mutable_metadata() { return meta_; }
  const Storage& storage() const { return *storage_; }

  // If some tensor's data is not aligned to its element size, copies the byte range spanned by all tensors
  // into aligned storage and repoints every tensor there.
  void ensure_aligned();

 private:
  std::string format_;
  std::shared_ptr<Storage> storage_;
  std::shared_ptr<Storage> aligned_;
  std::vector<TensorRef> tensors_;
  std::map<std::string, MetaValue> meta_;
};

// Maps `path` and runs a loader's parser over it; errors are prefixed with the path.
using StorageParser = Result<std::unique_ptr<WeightFile>> (*)(std::shared_ptr<Storage>);
Result<std::unique_ptr<WeightFile>> open_mapped(const std::string& path, StorageParser parse);

// a * b, or nullopt-like failure (false) on uint64 overflow.
inline bool checked_mul(uint64_t a, uint64_t b, uint64_t* out) {
  return !__builtin_mul_overflow(a, b, out);
}
inline bool checked_add(uint64_t a, uint64_t b, uint64_t* out) {
  return !__builtin_add_overflow(a, b, out);
}

// Element count of a shape (each dimension ≥ 0), bounded to fit int64 and byte counts with `elem_size`;
// INVALID_ARGUMENT naming `what` on overflow.
Result<uint64_t> checked_nbytes(std::span<const int64_t> shape, size_t elem_size, const std::string& what);

}  // namespace cml::model::detail
