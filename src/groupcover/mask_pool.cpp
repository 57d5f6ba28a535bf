#include "groupcover/mask_pool.h"

#include <algorithm>
#include <cstring>

#include "crypto/secret.h"
#include "groupcover/linalg.h"
#include "groupcover/rng.h"

namespace cml::groupcover {
namespace {
void wipe(float* p, size_t n) {
  crypto::secure_wipe({reinterpret_cast<uint8_t*>(p), n * sizeof(float)});
}
}  // namespace

MaskPool::MaskPool(const WorkerMatrix& w2, int64_t capacity, int64_t batch)
    : w2_(w2), capacity_(std::max<int64_t>(capacity, 1)), batch_(std::clamp<int64_t>(batch, 1, capacity_)) {}

MaskPool::~MaskPool() {
  for (auto& b : batches_) {
    wipe(b.r.data(), b.r.size());
    wipe(b.u.data(), b.u.size());
  }
}

void MaskPool::generate(int64_t n, std::vector<float>& r, std::vector<float>& u) {
  thread_local SecureRng rng;
  // The storage may hold more than n masks (a batch's storage is sized once for a whole batch and
  // reused): only the first n rows are written.
  if (r.size() < size_t(n * w2_.in)) r.resize(size_t(n * w2_.in));
  if (u.size() < size_t(n * w2_.out)) u.resize(size_t(n * w2_.out));
  rng.fill_mask({r.data(), size_t(n * w2_.in)});
  gemm_abt(r.data(), w2_.data, u.data(), n, w2_.out, w2_.in);
  generated_ += uint64_t(n);
}

bool MaskPool::wants_refill() const {
  std::lock_guard lock(mu_);
  return available_ + in_flight_ + batch_ <= capacity_;
}

int64_t MaskPool::available() const {
  std::lock_guard lock(mu_);
  return available_;
}

MaskPool::Batch MaskPool::new_batch(int64_t n) {
  Batch b;
  {
    std::lock_guard lock(mu_);
    for (size_t i = 0; i < spare_.size(); ++i) {
      if (spare_[i].u.size() < size_t(n * w2_.out)) continue;
      b = std::move(spare_[i]);
      spare_.erase(spare_.begin() + std::ptrdiff_t(i));
      break;
    }
  }
  if (b.u.size() < size_t(n * w2_.out)) {
    // Fresh storage, sized (and paged in) once for a whole batch, so that every later batch, partial
    // top-ups included, can reuse it: a partial batch's smaller storage would never fit a full refill
    // and would take a spare slot, leaving every refill to fault in fresh pages (for GPT-2's head, 25 MB
    // per 128 masks).
    const int64_t rows = std::max(n, batch_);
    b.r.assign(size_t(rows * w2_.in), 0.0f);
    b.u.assign(size_t(rows * w2_.out), 0.0f);
    ++storage_;
  }
  b.n = n;
  b.next = 0;
  return b;
}

void MaskPool::append(Batch b) {
  {
    std::lock_guard lock(mu_);
    available_ += b.n;
    in_flight_ -= b.n;
    batches_.push_back(std::move(b));
  }
  produced_.notify_all();
}

bool MaskPool::refill() {
  {
    std::lock_guard lock(mu_);
    if (available_ + in_flight_ + batch_ > capacity_) return false;
    in_flight_ += batch_;
  }
  Batch b = new_batch(batch_);
  generate(batch_, b.r, b.u);
  ++refills_;
  append(std::move(b));
  return true;
}

int64_t MaskPool::top_up() {
  int64_t n = 0;
  {
    std::lock_guard lock(mu_);
    n = capacity_ - available_ - in_flight_;
    if (n > 0) in_flight_ += n;
  }
  if (n > 0) {
    Batch b = new_batch(n);
    generate(n, b.r, b.u);
    ++refills_;
    append(std::move(b));
  }
  std::unique_lock lock(mu_);
  produced_.wait(lock, [&] { return in_flight_ == 0; });
  return std::max<int64_t>(n, 0);
}

bool MaskPool::take(int64_t n, float* r, float* u) {
  const int64_t in = w2_.in, out = w2_.out;
  int64_t done = 0;
  {
    std::lock_guard lock(mu_);
    while (done < n && !batches_.empty()) {
      Batch& b = batches_.front();
      const int64_t k = std::min(n - done, b.n - b.next);
      float* br = b.r.data() + b.next * in;
      float* bu = b.u.data() + b.next * out;
      std::memcpy(r + done * in, br, size_t(k * in) * sizeof(float));
      std::memcpy(u + done * out, bu, size_t(k * out) * sizeof(float));
      wipe(br, size_t(k * in));
      wipe(bu, size_t(k * out));
      b.next += k;
      done += k;
      available_ -= k;
      if (b.next == b.n) {  // every entry was wiped as it was taken: keep the storage for the next refill
        if (spare_.size() < 3) spare_.push_back(std::move(b));
        batches_.pop_front();
      }
    }
  }
  if (done < n) {
    std::vector<float> rr, uu;
    generate(n - done, rr, uu);
    std::memcpy(r + done * in, rr.data(), rr.size() * sizeof(float));
    std::memcpy(u + done * out, uu.data(), uu.size() * sizeof(float));
    wipe(rr.data(), rr.size());
    wipe(uu.data(), uu.size());
    misses_ += uint64_t(n - done);
  }
  taken_ += uint64_t(n);
  return wants_refill();
}

MaskPool::Lease MaskPool::lease(int64_t n) {
  Lease l;
  {
    std::lock_guard lock(mu_);
    if (n < 1 || batches_.empty()) return l;
    Batch& b = batches_.front();
    if (b.n - b.next < n) return l;
    l.r = b.r.data() + b.next * w2_.in;
    l.u = b.u.data() + b.next * w2_.out;
    l.n = n;
    b.next += n;
    available_ -= n;
    l.wants_refill = available_ + in_flight_ + batch_ <= capacity_;
  }
  taken_ += uint64_t(n);
  return l;
}

void MaskPool::release(const Lease& l) {
  if (l.n == 0) return;
  std::lock_guard lock(mu_);
  wipe(const_cast<float*>(l.r), size_t(l.n * w2_.in));
  wipe(const_cast<float*>(l.u), size_t(l.n * w2_.out));
  // The leased masks came from the front batch; refills only append behind it.
  Batch& b = batches_.front();
  if (b.next == b.n) {
    if (spare_.size() < 3) spare_.push_back(std::move(b));
    batches_.pop_front();
  }
}

MaskPoolStats MaskPool::stats() const {
  return {taken_.load(), misses_.load(), refills_.load(), generated_.load(), storage_.load()};
}

}  // namespace cml::groupcover
