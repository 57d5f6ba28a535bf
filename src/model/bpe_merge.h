// Internal to the model module: the pair-merging loop shared by the Llama (score) and GPT-2 (rank)
// tokenizers. Not a public header.
//
// Repeatedly merges the adjacent pair with the lowest priority value (ties: the leftmost pair) until no
// adjacent pair merges. This is what llama2.c's encode loop and GPT-2's bpe() compute, done with a heap and
// a linked list in O(n log n) instead of rescanning the sequence after each merge. (GPT-2's bpe() merges
// every occurrence of the chosen pair before looking again; the result is the same whenever a merge's
// rank is lower than those of the merges that use its result, which holds for merge lists produced by
// BPE training, including GPT-2's.)
#pragma once

#include <cstdint>
#include <queue>
#include <vector>

namespace cml::model::detail {

// lookup(left_id, right_id, &priority, &merged_id) → whether the pair merges.
template <typename Priority, typename Lookup>
void bpe_merge(std::vector<int32_t>& ids, const Lookup& lookup) {
  const size_t n = ids.size();
  if (n < 2) return;
  struct Sym {
    int32_t id;
    int32_t prev, next;  // -1 at the ends
  };
  struct Cand {
    Priority priority;
    int32_t left;  // index of the left symbol (its original position)
    int32_t left_id, right_id, merged_id;
    bool operator<(const Cand& o) const {  // std::priority_queue pops the largest: invert
      if (priority != o.priority) return priority > o.priority;
      return left > o.left;
    }
  };
  std::vector<Sym> sym(n);
  for (size_t i = 0; i < n; ++i)
    sym[i] = {ids[i], static_cast<int32_t>(i) - 1, i + 1 < n ? static_cast<int32_t>(i + 1) : -1};
  std::priority_queue<Cand> heap;
  auto consider = [&](int32_t left) {
    if (left < 0 || sym[left].next < 0) return;
    const int32_t right = sym[left].next;
    Priority p;
    int32_t merged;
    if (lookup(sym[left].id, sym[right].id, &p, &merged)) heap.push({p, left, sym[left].id, sym[right].id, merged});
  };
  for (size_t i = 0; i + 1 < n; ++i) consider(static_cast<int32_t>(i));
  while (!heap.empty()) {
    const Cand c = heap.top();
    heap.pop();
    Sym& l = sym[c.left];
    if (l.id != c.left_id || l.next < 0 || l.id == -1) continue;  // stale
    Sym& r = sym[l.next];
    if (r.id != c.right_id) continue;  // stale
    l.id = c.merged_id;
    r.id = -1;  // dead
    l.next = r.next;
    if (r.next >= 0) sym[r.next].prev = c.left;
    consider(l.prev);
    consider(c.left);
  }
  size_t out = 0;
  for (int32_t i = 0; i >= 0; i = sym[i].next) ids[out++] = sym[i].id;
  ids.resize(out);
}

}  // namespace cml::model::detail
