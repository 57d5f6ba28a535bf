#include "crypto/x25519.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "base/thread.h"
#include "crypto/openssl_error.h"

namespace cml::crypto {

using internal::openssl_failure;

namespace {
struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct PkeyCtxFree {
  void operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
}  // namespace

void X25519KeyPair::KeyFree::operator()(EVP_PKEY* key) const {
  EVP_PKEY_free(key);
}

Result<X25519KeyPair> X25519KeyPair::from_private(ByteSpan sk) {
  if (sk.size() != 32) return invalid_argument("X25519 private key must be 32 bytes");
  PkeyPtr key(EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, nullptr, sk.data(), sk.size()));
  if (!key) return openssl_failure(crypto_error("X25519 private key rejected"));
  X25519KeyPair kp;
  size_t len = kp.public_.size();
  if (EVP_PKEY_get_raw_public_key(key.get(), kp.public_.data(), &len) != 1 || len != 32)
    return openssl_failure(crypto_error("X25519 public key derivation failed"));
  kp.key_.reset(key.release());
  return kp;
}

namespace {
// A fresh pair from the CSPRNG, or the error (OpenSSL refuses work once its exit-time cleanup starts).
Result<X25519KeyPair> fresh_pair() {
  SecretBytes sk(32);
  if (RAND_bytes(sk.data(), static_cast<int>(sk.size())) != 1) return crypto_error("RAND_bytes failed");
  return X25519KeyPair::from_private(sk.span());
}
}  // namespace

X25519KeyPair X25519KeyPair::generate() {
  auto kp = fresh_pair();
  CML_CHECK_MSG(kp.is_ok(), kp.status().to_string());
  return std::move(kp).value();
}

namespace {

// Ephemeral keys made ahead of use by one lazily started thread. The stock is never destroyed by C++
// static destruction: OpenSSL's own exit-time cleanup may run before it, while the thread is inside
// OpenSSL. Instead an OPENSSL_atexit handler stops the thread (and frees the keys) before OpenSSL cleans
// up; without that cleanup, process exit simply ends the thread.
class EphemeralStock {
 public:
  static constexpr size_t kTarget = 4;

  EphemeralStock() : owner_pid_(::getpid()) {}

  X25519KeyPair take() {
    if (::getpid() != owner_pid_) return X25519KeyPair::generate();  // a forked child has no refiller
    std::unique_lock lk(mu_);
    if (!thread_.joinable() && !stop_) thread_ = std::thread([this] { refill(); });
    if (keys_.empty()) {
      lk.unlock();
      cv_.notify_one();
      return X25519KeyPair::generate();
    }
    X25519KeyPair kp = std::move(keys_.back());
    keys_.pop_back();
    lk.unlock();
    cv_.notify_one();
    return kp;
  }

  // Stops the refill thread for good; later takes generate on the spot.
  void stop() {
    if (::getpid() != owner_pid_) return;  // a forked child: the thread and its lock are not ours
    std::thread t;
    std::vector<X25519KeyPair> keys;
    {
      std::lock_guard lk(mu_);
      stop_ = true;
      t = std::move(thread_);
      keys.swap(keys_);
    }
    cv_.notify_all();
    if (t.joinable()) t.join();
  }

 private:
  void refill() {
    // Only spare CPU time: the stock must never delay the handshakes it serves (an empty stock only
    // means the caller generates its key itself). SCHED_IDLE, because any waking thread preempts it at
    // once, where a nice-19 thread keeps its CPU for the rest of its time slice (up to milliseconds)
    // after a handshake thread wakes up; nice 19 where SCHED_IDLE is refused. Best effort.
    const sched_param idle{};
    if (::sched_setscheduler(0, SCHED_IDLE, &idle) != 0) {
      (void)::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), 19);
    }
    name_this_thread("x25519-refill");
    std::unique_lock lk(mu_);
    for (;;) {
      cv_.wait(lk, [&] { return stop_ || keys_.size() < kTarget; });
      if (stop_) return;
      lk.unlock();
      // Not generate(), which aborts on failure: at exit OpenSSL refuses work from the moment its cleanup
      // starts until the handler stopping this thread has run. A failure just ends the refills.
      auto kp = fresh_pair();
      if (!kp.is_ok()) return;
      lk.lock();
      if (stop_) return;
      keys_.push_back(std::move(kp).value());
    }
  }

  const pid_t owner_pid_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<X25519KeyPair> keys_;
  bool stop_ = false;
  std::thread thread_;
};

EphemeralStock* g_stock = nullptr;

void stop_stock() {
  g_stock->stop();
}

EphemeralStock& stock() {
  static EphemeralStock* const s = [] {
    g_stock = new EphemeralStock();
    if (OPENSSL_atexit(stop_stock) != 1) g_stock->stop();  // no safe way to stop it later: never start
    return g_stock;
  }();
  return *s;
}

}  // namespace

X25519KeyPair X25519KeyPair::take_ephemeral() {
  return stock().take();
}

Result<SecretBytes> X25519KeyPair::derive(ByteSpan peer_public) const {
  if (peer_public.size() != 32) return invalid_argument("X25519 public key must be 32 bytes");
  if (!key_) return invalid_argument("X25519 key pair is empty (moved from)");
  PkeyPtr peer(EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, nullptr, peer_public.data(), peer_public.size()));
  if (!peer) return openssl_failure(crypto_error("X25519 peer key import failed"));
  std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree> ctx(EVP_PKEY_CTX_new(key_.get(), nullptr));
  if (!ctx || EVP_PKEY_derive_init(ctx.get()) != 1 || EVP_PKEY_derive_set_peer(ctx.get(), peer.get()) != 1)
    return openssl_failure(crypto_error("X25519 derive setup failed"));
  SecretBytes shared(32);
  size_t len = shared.size();
  // OpenSSL fails the derivation when the result is all-zero (low-order peer point); the explicit
  // check below keeps that rule whatever the library does.
  if (EVP_PKEY_derive(ctx.get(), shared.data(), &len) != 1 || len != 32)
    return openssl_failure(crypto_error("X25519 shared secret is non-contributory (low-order peer key)"));
  uint8_t acc = 0;
  for (size_t i = 0; i < 32; ++i) acc |= shared.data()[i];
  if (acc == 0) return crypto_error("X25519 shared secret is non-contributory (low-order peer key)");
  return shared;
}

}  // namespace cml::crypto
