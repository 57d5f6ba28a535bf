// KvCache: keys and values of every sequence in flight, for the layers of one executor's range.
//
// Each sequence owns one block [layer][K|V][position][kv_dim] sized for max_context positions. The block
// is allocated without being touched, so memory (RSS) grows with the positions actually written.
// The committed length of a sequence only moves forward when a whole forward step succeeded, so a failed
// step (e.g. a remote LinearBackend timing out) leaves the sequence as it was.
//
// Reuse: a dropped sequence's block is wiped (every position it ever wrote, with the crypto module's
// secure wipe) and kept for the next sequence, up to `max_free` blocks, so a new sequence writes into
// pages that are already mapped instead of faulting in fresh ones on every token. A block in use
// never holds another sequence's data: it was wiped on release, and a sequence only reads positions
// below its own length, all of which it wrote itself (start positions never exceed the length).
//
// Thread safety: not thread-safe; the executor serialises access.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include "base/status.h"

namespace cml::model {

using SeqId = uint64_t;

class KvSequence {
 public:
  KvSequence(int64_t n_layers, int64_t kv_dim, int64_t max_context);
  ~KvSequence();  // wipes what was written
  KvSequence(const KvSequence&) = delete;
  KvSequence& operator=(const KvSequence&) = delete;

  bool allocated() const { return data_ != nullptr; }
  int64_t length() const { return length_; }
  void set_length(int64_t n) { length_ = n; }
  int64_t max_context() const { return max_context_; }
  int64_t kv_dim() const { return kv_dim_; }
  // Row `pos` of layer `layer` (relative to the range) keys / values; rows are kv_dim floats apart.
  float* k(int64_t layer) { return data_.get() + (layer * 2) * max_context_ * kv_dim_; }
  float* v(int64_t layer) { return data_.get() + (layer * 2 + 1) * max_context_ * kv_dim_; }
  // Whoever writes positions [0, end) calls this first, so that wipe() covers them (also when the step
  // that wrote them fails or is later rewound).
  void note_written(int64_t end) { written_ = end > written_ ? end : written_; }
  int64_t written() const { return written_; }
  // Securely zeroes every position written so far and resets the sequence to empty.
  void wipe();

 private:
  int64_t n_layers_, kv_dim_, max_context_;
  int64_t length_ = 0;
  int64_t written_ = 0;  // high-water mark of written positions
  std::unique_ptr<float[]> data_;
};

class KvCache {
 public:
  // `max_free`: released blocks kept for reuse (−1: as many as were ever in use at once; 0: none).
  KvCache(int64_t n_layers, int64_t kv_dim, int64_t max_context, int64_t max_sequences, int64_t max_free = -1);
  // ALREADY-present ids are INVALID_ARGUMENT; more than max_sequences is RESOURCE_EXHAUSTED.
  Status add(SeqId id);
  // Returns false if the id was not present. The sequence's data is wiped at once.
  bool drop(SeqId id);
  KvSequence* find(SeqId id);
  size_t size() const { return seqs_.size(); }
  // Released blocks waiting for reuse (all wiped).
  size_t free_blocks() const { return free_.size(); }
  // Bytes one sequence needs at full context.
  size_t bytes_per_sequence() const;

 private:
  int64_t n_layers_, kv_dim_, max_context_, max_sequences_, max_free_;
  std::map<SeqId, std::unique_ptr<KvSequence>> seqs_;
  std::vector<std::unique_ptr<KvSequence>> free_;
};

}  // namespace cml::model
