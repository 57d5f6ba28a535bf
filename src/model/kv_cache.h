// KvCache: keys and values of every sequence in flight, for the layers of one executor's range.
//
// Each sequence owns one block [layer][K|V][position][kv_dim] sized for max_context positions. The block
// is allocated without being touched, so memory (RSS) grows with the positions actually written.
// The committed length of a sequence only moves forward when a whole forward step succeeded, so a failed
// step (e.g. a remote LinearBackend timing out) leaves the sequence as it was.
//
// Thread safety: not thread-safe; the executor serialises access.
#pragma once

#include <cstdint>
#include <map>
#include <memory>

#include "base/status.h"

namespace cml::model {

using SeqId = uint64_t;

class KvSequence {
 public:
  KvSequence(int64_t n_layers, int64_t kv_dim, int64_t max_context);
  bool allocated() const { return data_ != nullptr; }
  int64_t length() const { return length_; }
  void set_length(int64_t n) { length_ = n; }
  int64_t max_context() const { return max_context_; }
  int64_t kv_dim() const { return kv_dim_; }
  // Row `pos` of layer `layer` (relative to the range) keys / values; rows are kv_dim floats apart.
  float* k(int64_t layer) { return data_.get() + (layer * 2) * max_context_ * kv_dim_; }
  float* v(int64_t layer) { return data_.get() + (layer * 2 + 1) * max_context_ * kv_dim_; }

 private:
  int64_t n_layers_, kv_dim_, max_context_;
  int64_t length_ = 0;
  std::unique_ptr<float[]> data_;
};

class KvCache {
 public:
  KvCache(int64_t n_layers, int64_t kv_dim, int64_t max_context, int64_t max_sequences);
  // ALREADY-present ids are INVALID_ARGUMENT; more than max_sequences is RESOURCE_EXHAUSTED.
  Status add(SeqId id);
  // Returns false if the id was not present.
  bool drop(SeqId id);
  KvSequence* find(SeqId id);
  size_t size() const { return seqs_.size(); }
  // Bytes one sequence needs at full context.
  size_t bytes_per_sequence() const;

 private:
  int64_t n_layers_, kv_dim_, max_context_, max_sequences_;
  std::map<SeqId, std::unique_ptr<KvSequence>> seqs_;
};

}  // namespace cml::model
