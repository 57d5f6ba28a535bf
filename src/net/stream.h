// Byte streams and listeners: TCP, VSock (AF_VSOCK) and an in-memory duplex pipe.
//
// Networking model (for the whole code base): blocking I/O with explicit deadlines, one thread per
// connection or peer. Every operation that can wait takes a Deadline; when it passes the operation
// returns TIMEOUT and the stream stays usable (a partial read or write leaves it in an undefined
// position, so callers treat TIMEOUT mid-frame as fatal for that connection). There are no callbacks and
// no event loop. On TCP, Asio resolves names, opens and binds sockets and listens; connect, accept and
// every read and write then run on the native handle in non-blocking mode with ppoll(2) enforcing the
// deadline, so no call can block past it (name resolution itself is not deadline-bounded).
//
// Thread safety of a Stream: at most one thread reading and at most one thread writing at a time (they
// may be different threads, so a connection can be full duplex). abort() may be called from any thread
// at any time and wakes blocked readers and writers (they return UNAVAILABLE or ABORTED).
// A Listener: one thread calling accept(); close() may be called from any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "base/bytes.h"
#include "base/clock.h"
#include "base/status.h"

namespace cml::net {

class Stream {
 public:
  virtual ~Stream() = default;

  // Reads at least 1 and at most buf.size() bytes. Returns 0 at end of stream (the peer shut down its
  // write side or closed). TIMEOUT when the deadline passes first, UNAVAILABLE on a reset or abort.
  virtual Result<size_t> read_some(MutableByteSpan buf, Deadline deadline) = 0;
  // Writes every byte of every part, in order, gathering them into as few system calls as possible
  // (one writev for a frame header and its payload). TIMEOUT / UNAVAILABLE as above.
  virtual Status write_all(std::span<const ByteSpan> parts, Deadline deadline) = 0;
  // Half-close: the peer reads end of stream after the bytes already written. Idempotent.
  virtual Status shutdown_write() = 0;
  // Unblocks any reader or writer and makes further I/O fail. Thread-safe; idempotent.
  virtual void abort() = 0;
  // "tcp://127.0.0.1:40000", "vsock://3:5000", "pipe" — for messages and logs.
  virtual std::string peer() const = 0;

  // The longest a reading thread polls before it sleeps (base/spin.h; default
  // AdaptiveSpin::default_max()). Streams that do not spin ignore it. Called by the reading thread.
  virtual void set_read_spin(std::chrono::nanoseconds max);

  // Reads exactly buf.size() bytes. UNAVAILABLE ("peer closed after k of n bytes") on early end of stream.
  Status read_exact(MutableByteSpan buf, Deadline deadline);
  Status write_all(ByteSpan data, Deadline deadline);

  // ---- Optional direct access to the stream's own buffer (in-memory pipes offer it) ----
  // A SecureChannel seals a record straight into it and opens one straight out of it, saving a copy on
  // each side. An empty span means "not here": the stream has no such buffer, or these n bytes would
  // not lie in one piece of it; the caller then uses write_all / read_exact, which always work.
  //
  // A span of exactly n writable bytes, once there is room; the caller fills it and publishes it with
  // commit_write(n) (or drops it by not committing: nothing was written). Same errors as write_all.
  virtual Result<MutableByteSpan> reserve_write(size_t n, Deadline deadline);
  virtual void commit_write(size_t n);
  // A span of exactly the next n bytes, once all are buffered; release_read(n) consumes them. Same
  // errors as read_exact, including UNAVAILABLE when the stream ends before n bytes.
  virtual Result<ByteSpan> peek_read(size_t n, Deadline deadline);
  virtual void release_read(size_t n);
};

class Listener {
 public:
  virtual ~Listener() = default;
  // Waits for the next connection. TIMEOUT when the deadline passes, ABORTED after close().
  virtual Result<std::unique_ptr<Stream>> accept(Deadline deadline) = 0;
  // The bound endpoint with the real port (after binding port 0), e.g. "tcp://127.0.0.1:40000".
  virtual std::string local_endpoint() const = 0;
  // Stops accepting and wakes a blocked accept(). Thread-safe; idempotent.
  virtual void close() = 0;
};

// "tcp://host:port" (host: name, IPv4, or [IPv6]) or "vsock://cid:port" (cid: a number, or "any",
// "host" = 2, "local" = 1).
struct Endpoint {
  enum class Kind { kTcp, kVsock };
  Kind kind = Kind::kTcp;
  std::string host;   // tcp only
  uint32_t cid = 0;   // vsock only
  uint32_t port = 0;  // tcp: 0..65535; vsock: 32-bit

  std::string to_string() const;
  bool operator==(const Endpoint&) const = default;
};
// INVALID_ARGUMENT with a message naming what is wrong.
Result<Endpoint> parse_endpoint(std::string_view text);

constexpr uint32_t kVsockCidAny = 0xFFFFFFFFu;
constexpr uint32_t kVsockCidLocal = 1;
constexpr uint32_t kVsockCidHost = 2;

// Connects (TCP sets TCP_NODELAY). UNAVAILABLE when refused or unreachable, TIMEOUT at the deadline.
Result<std::unique_ptr<Stream>> connect(const Endpoint& endpoint, Deadline deadline);
// Binds and listens (SO_REUSEADDR for TCP). Port 0 picks a free port (see local_endpoint()).
Result<std::unique_ptr<Listener>> listen(const Endpoint& endpoint, int backlog = 64);

// A free TCP port on the loopback, as "tcp://127.0.0.1:PORT" (bound, then released: racy only against
// other processes picking ports at the same moment). Never one this process was given before, as the
// kernel may hand a just-released port out again and each endpoint of a manifest needs its own.
Result<std::string> free_loopback_endpoint();
// True when this kernel can create AF_VSOCK sockets (the live VSock test skips otherwise).
bool vsock_available();

// An in-memory duplex pipe: bytes written to one end are read from the other. Each direction buffers
// up to `capacity` bytes (writers block beyond it). Closing or destroying one end makes the other read
// end of stream after the buffered bytes, and fail writes with UNAVAILABLE.
std::pair<std::unique_ptr<Stream>, std::unique_ptr<Stream>> make_pipe(size_t capacity = 4u << 20);

// An in-memory listener for in-process peers: connect() creates a pipe, returns one end and queues the
// other for accept(). Thread-safe (any thread may connect; one thread accepts).
class PipeListener final : public Listener {
 public:
  explicit PipeListener(std::string name = "pipe", size_t capacity = 4u << 20);
  ~PipeListener() override;
  Result<std::unique_ptr<Stream>> connect();  // UNAVAILABLE after close()
  Result<std::unique_ptr<Stream>> accept(Deadline deadline) override;
  std::string local_endpoint() const override;
  void close() override;

 private:
  struct State;
  std::shared_ptr<State> state_;
};

// Retry with exponential backoff, jitter and a cap.
//   delay(k) = min(initial_delay × multiplier^k, max_delay) × (1 − jitter × u),  u uniform in [0, 1)
// for the k-th retry (k = 0 after the first failed attempt).
struct RetryPolicy {
  int max_attempts = 5;  // total attempts, ≥ 1
  Duration initial_delay = std::chrono::milliseconds(100);
  Duration max_delay = std::chrono::seconds(5);
  double multiplier = 2.0;
  double jitter = 0.5;  // fraction in [0, 1]

  static RetryPolicy none() { return RetryPolicy{.max_attempts = 1}; }
  // Delay before retry k, given u in [0, 1).
  Duration delay_for_retry(int k, double u) const;
};

// Injectable effects so tests run without real waits.
struct RetryHooks {
  std::function<void(Duration)> sleep;  // default: std::this_thread::sleep_for
  std::function<double()> uniform;      // default: CSPRNG-seeded uniform [0, 1)
  // Observes each failed attempt (attempt index from 0, its status, the delay before the next one).
  std::function<void(int, const Status&, Duration)> on_retry;
};

// Runs `attempt` until it succeeds, max_attempts are used, the deadline would pass during the next
// sleep, or it fails with a status that retrying cannot fix (anything other than UNAVAILABLE or
// TIMEOUT). Returns the last status.
template <typename T>
Result<T> with_retry(const RetryPolicy& policy, Deadline deadline, const std::function<Result<T>()>& attempt,
                     const RetryHooks& hooks = {});
Status retry_loop(const RetryPolicy& policy, Deadline deadline, const std::function<Status()>& attempt,
                  const RetryHooks& hooks);

// connect() under a RetryPolicy (for peers that are still starting).
Result<std::unique_ptr<Stream>> connect_with_retry(const Endpoint& endpoint, const RetryPolicy& policy,
                                                   Deadline deadline, const RetryHooks& hooks = {});

template <typename T>
Result<T> with_retry(const RetryPolicy& policy, Deadline deadline, const std::function<Result<T>()>& attempt,
                     const RetryHooks& hooks) {
  std::optional<T> value;
  Status st = retry_loop(
      policy, deadline,
      [&]() -> Status {
        Result<T> r = attempt();
        if (!r.is_ok()) return r.status();
        value.emplace(std::move(r).value());
        return Status::ok();
      },
      hooks);
  if (!st.is_ok()) return st;
  return std::move(*value);
}

}  // namespace cml::net
