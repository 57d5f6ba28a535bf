#include "model/kv_cache.h"

#include <algorithm>
#include <new>

#include "crypto/secret.h"

namespace cml::model {

KvSequence::KvSequence(int64_t n_layers, int64_t kv_dim, int64_t max_context)
    : n_layers_(n_layers), kv_dim_(kv_dim), max_context_(max_context) {
  // new float[] leaves the memory untouched: pages are mapped when the positions are written.
  data_.reset(
      new (std::nothrow) float[static_cast<size_t>(std::max<int64_t>(1, n_layers_ * 2 * max_context_ * kv_dim_))]);
}

KvSequence::~KvSequence() {
  wipe();
}

void KvSequence::wipe() {
  if (data_ && written_ > 0) {
    const size_t bytes = static_cast<size_t>(std::min(written_, max_context_) * kv_dim_) * sizeof(float);
    for (int64_t layer = 0; layer < n_layers_; ++layer) {
      crypto::secure_wipe({reinterpret_cast<uint8_t*>(k(layer)), bytes});
      crypto::secure_wipe({reinterpret_cast<uint8_t*>(v(layer)), bytes});
    }
  }
  written_ = 0;
  length_ = 0;
}

KvCache::KvCache(int64_t n_layers, int64_t kv_dim, int64_t max_context, int64_t max_sequences, int64_t max_free)
    : n_layers_(n_layers),
      kv_dim_(kv_dim),
      max_context_(max_context),
      max_sequences_(max_sequences),
      max_free_(max_free) {}

Status KvCache::add(SeqId id) {
  if (seqs_.count(id)) return invalid_argument("sequence " + std::to_string(id) + " already started");
  if (static_cast<int64_t>(seqs_.size()) >= max_sequences_) {
    return resource_exhausted("too many sequences in flight (max " + std::to_string(max_sequences_) + ")");
  }
  std::unique_ptr<KvSequence> seq;
  if (!free_.empty()) {  // wiped on release: length 0, nothing written
    seq = std::move(free_.back());
    free_.pop_back();
  } else {
    seq = std::make_unique<KvSequence>(n_layers_, kv_dim_, max_context_);
    if (!seq->allocated()) return resource_exhausted("cannot reserve the KV cache of a sequence");
  }
  seqs_.emplace(id, std::move(seq));
  return ok_status();
}

bool KvCache::drop(SeqId id) {
  auto it = seqs_.find(id);
  if (it == seqs_.end()) return false;
  std::unique_ptr<KvSequence> seq = std::move(it->second);
  seqs_.erase(it);
  seq->wipe();
  // Blocks only come from here or from add(), which allocates only when none is free, so without a cap
  // the free list never exceeds the number of sequences that were in flight at once.
  if (max_free_ < 0 || static_cast<int64_t>(free_.size()) < max_free_) free_.push_back(std::move(seq));
  return true;
}

KvSequence* KvCache::find(SeqId id) {
  auto it = seqs_.find(id);
  return it == seqs_.end() ? nullptr : it->second.get();
}

size_t KvCache::bytes_per_sequence() const {
  return static_cast<size_t>(n_layers_ * 2 * max_context_ * kv_dim_) * sizeof(float);
}

}  // namespace cml::model
