#include "model/kv_cache.h"

#include <algorithm>
#include <new>

namespace cml::model {

KvSequence::KvSequence(int64_t n_layers, int64_t kv_dim, int64_t max_context)
    : n_layers_(n_layers), kv_dim_(kv_dim), max_context_(max_context) {
  // new float[] leaves the memory untouched: pages are mapped when the positions are written.
  data_.reset(
      new (std::nothrow) float[static_cast<size_t>(std::max<int64_t>(1, n_layers_ * 2 * max_context_ * kv_dim_))]);
}

KvCache::KvCache(int64_t n_layers, int64_t kv_dim, int64_t max_context, int64_t max_sequences)
    : n_layers_(n_layers), kv_dim_(kv_dim), max_context_(max_context), max_sequences_(max_sequences) {}

Status KvCache::add(SeqId id) {
  if (seqs_.count(id)) return invalid_argument("sequence " + std::to_string(id) + " already started");
  if (static_cast<int64_t>(seqs_.size()) >= max_sequences_) {
    return resource_exhausted("too many sequences in flight (max " + std::to_string(max_sequences_) + ")");
  }
  auto seq = std::make_unique<KvSequence>(n_layers_, kv_dim_, max_context_);
  if (!seq->allocated()) return resource_exhausted("cannot reserve the KV cache of a sequence");
  seqs_.emplace(id, std::move(seq));
  return ok_status();
}

bool KvCache::drop(SeqId id) {
  return seqs_.erase(id) > 0;
}

KvSequence* KvCache::find(SeqId id) {
  auto it = seqs_.find(id);
  return it == seqs_.end() ? nullptr : it->second.get();
}

size_t KvCache::bytes_per_sequence() const {
  return static_cast<size_t>(n_layers_ * 2 * max_context_ * kv_dim_) * sizeof(float);
}

}  // namespace cml::model
