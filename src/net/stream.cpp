// Streams: fd-backed TCP/VSock streams (blocking model, poll for deadlines), the in-memory pipe, endpoint
// parsing and retry.
#include "net/stream.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
// clang-format off
#include <linux/vm_sockets.h>
// clang-format on

#include <algorithm>
#include <asio.hpp>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "base/spin.h"
#include "crypto/random.h"

namespace cml::net {

// ---------------------------------------------------------------------------------------------------
// Stream helpers

Status Stream::read_exact(MutableByteSpan buf, Deadline deadline) {
  size_t got = 0;
  while (got < buf.size()) {
    CML_ASSIGN_OR_RETURN(size_t n, read_some(buf.subspan(got), deadline));
    if (n == 0) {
      return unavailable("peer " + peer() + " closed the stream after " + std::to_string(got) + " of " +
                         std::to_string(buf.size()) + " bytes");
    }
    got += n;
  }
  return Status::ok();
}

Status Stream::write_all(ByteSpan data, Deadline deadline) {
  const ByteSpan parts[1] = {data};
  return write_all(std::span<const ByteSpan>(parts), deadline);
}

Result<MutableByteSpan> Stream::reserve_write(size_t /*n*/, Deadline /*deadline*/) {
  return MutableByteSpan{};
}
void Stream::commit_write(size_t /*n*/) {
  CML_CHECK_MSG(false, "commit_write without a reservation");
}
Result<ByteSpan> Stream::peek_read(size_t /*n*/, Deadline /*deadline*/) {
  return ByteSpan{};
}
void Stream::release_read(size_t /*n*/) {
  CML_CHECK_MSG(false, "release_read without a peek");
}
void Stream::set_read_spin(std::chrono::nanoseconds /*max*/) {}

namespace {

std::string errno_text(int err) {
  return std::strerror(err);
}

// Waits for `events` on fd (and optionally a wake fd) until the deadline. Returns OK when ready.
Status wait_fd(int fd, short events, Deadline deadline, int wake_fd = -1) {
  for (;;) {
    pollfd fds[2] = {{fd, events, 0}, {wake_fd, POLLIN, 0}};
    const nfds_t nfds = wake_fd >= 0 ? 2 : 1;
    timespec ts{};
    timespec* tsp = nullptr;
    if (!deadline.is_never()) {
      const auto rem = deadline.remaining();
      if (rem.count() <= 0) return timeout_error("deadline passed");
      ts.tv_sec = static_cast<time_t>(rem.count() / 1'000'000'000);
      ts.tv_nsec = static_cast<long>(rem.count() % 1'000'000'000);
      tsp = &ts;
    }
    const int rc = ::ppoll(fds, nfds, tsp, nullptr);
    if (rc < 0) {
      if (errno == EINTR) continue;
      return internal_error("poll: " + errno_text(errno));
    }
    if (rc == 0) return timeout_error("deadline passed");
    if (nfds == 2 && fds[1].revents != 0) return aborted("closed");
    if (fds[0].revents != 0) return Status::ok();
  }
}

// Non-blocking, and closed on exec: a socket must not leak into child processes (a child holding a
// listening socket would keep its port busy after the parent closes it).
void set_nonblocking(int fd) {
  const int fl = ::fcntl(fd, F_GETFL, 0);
  ::fcntl(fd, F_SETFL, fl | O_NONBLOCK);
  ::fcntl(fd, F_SETFD, ::fcntl(fd, F_GETFD) | FD_CLOEXEC);
}

// A connected socket (TCP or VSock) in non-blocking mode; deadlines through ppoll.
class FdStream final : public Stream {
 public:
  FdStream(int fd, std::string peer) : fd_(fd), peer_(std::move(peer)) { set_nonblocking(fd_); }
  ~FdStream() override { ::close(fd_); }

  // Reads go through a small user-space buffer: a record's header read also brings its body (and any
  // records behind it) in the same recv. Reads of at least the buffer's size go straight into the
  // caller's memory once the buffer is drained (no extra copy for large tensors).
  Result<size_t> read_some(MutableByteSpan buf, Deadline deadline) override {
    if (buf.empty()) return size_t{0};
    if (aborted_.load(std::memory_order_relaxed)) return unavailable("stream to " + peer_ + " aborted");
    if (rpos_ < rend_) return take_buffered(buf);
    const bool direct = buf.size() >= kRecvBuffer;
    if (!direct && !rbuf_) rbuf_ = std::make_unique<uint8_t[]>(kRecvBuffer);
    uint8_t* const dst = direct ? buf.data() : rbuf_.get();
    const size_t cap = direct ? buf.size() : kRecvBuffer;
    auto receive = [&] { return ::recv(fd_, dst, cap, 0); };
    bool spun = false;
    bool tried = false;  // a recv ran in this call
    std::chrono::steady_clock::time_point t0;
    // No spin budget left means recent waits were long: the data is most likely not there yet, so wait in
    // ppoll at once instead of paying for a recv (and the spin's one poll) that would fail.
    bool poll_first = read_spin_.budget().count() == 0 && !deadline.expired();
    for (;;) {
      if (aborted_.load(std::memory_order_relaxed)) return unavailable("stream to " + peer_ + " aborted");
      ssize_t n = -1;
      int err = EAGAIN;
      if (poll_first) {
        poll_first = false;
        spun = true;
        t0 = std::chrono::steady_clock::now();
      } else {
        n = receive();
        err = errno;
        tried = true;
        if (n < 0 && (err == EAGAIN || err == EWOULDBLOCK) && !spun) {
          // Nothing buffered: poll the socket briefly before sleeping in ppoll (see base/spin.h).
          spun = true;
          t0 = std::chrono::steady_clock::now();
          if (read_spin_.spin([&] {
                n = receive();
                err = errno;
                return n >= 0 || (err != EAGAIN && err != EWOULDBLOCK);
              })) {
            spun = false;  // data came while spinning: nothing to learn from a blocking wait
          }
        }
      }
      if (n > 0) {
        if (spun) read_spin_.record_wait(std::chrono::steady_clock::now() - t0);
        if (direct) return static_cast<size_t>(n);
        rpos_ = 0;
        rend_ = static_cast<size_t>(n);
        return take_buffered(buf);
      }
      if (n == 0) {
        if (aborted_.load(std::memory_order_relaxed)) return unavailable("stream to " + peer_ + " aborted");
        return size_t{0};
      }
      if (err == EINTR) continue;
      if (err != EAGAIN && err != EWOULDBLOCK) return unavailable("read from " + peer_ + ": " + errno_text(err));
      Status st = wait_fd(fd_, POLLIN, deadline);
      if (!st.is_ok()) {
        if (st.code() != StatusCode::kTimeout) return st;
        // As with recv first: bytes that are already there are returned even at the deadline.
        if (!tried) continue;
        return timeout_error("read from " + peer_ + ": deadline passed");
      }
    }
  }

  Status write_all(std::span<const ByteSpan> parts, Deadline deadline) override {
    constexpr size_t kMaxIov = 16;
    iovec iov[kMaxIov];
    size_t n_iov = 0;
    for (const ByteSpan& p : parts) {
      if (p.empty()) continue;
      CML_CHECK_MSG(n_iov < kMaxIov, "too many parts in one write");
      iov[n_iov++] = {const_cast<uint8_t*>(p.data()), p.size()};
    }
    size_t first = 0;
    while (first < n_iov) {
      if (aborted_.load(std::memory_order_relaxed)) return unavailable("stream to " + peer_ + " aborted");
      msghdr msg{};
      msg.msg_iov = iov + first;
      msg.msg_iovlen = n_iov - first;
      const ssize_t n = ::sendmsg(fd_, &msg, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) return unavailable("write to " + peer_ + ": " + errno_text(errno));
        Status st = wait_fd(fd_, POLLOUT, deadline);
        if (!st.is_ok())
          return st.code() == StatusCode::kTimeout ? timeout_error("write to " + peer_ + ": deadline passed") : st;
        continue;
      }
      size_t left = static_cast<size_t>(n);
      while (first < n_iov && left >= iov[first].iov_len) left -= iov[first++].iov_len;
      if (first < n_iov) {
        iov[first].iov_base = static_cast<uint8_t*>(iov[first].iov_base) + left;
        iov[first].iov_len -= left;
      }
    }
    return Status::ok();
  }

  Status shutdown_write() override {
    if (::shutdown(fd_, SHUT_WR) != 0 && errno != ENOTCONN) return unavailable("shutdown: " + errno_text(errno));
    return Status::ok();
  }
  void abort() override {
    aborted_ = true;
    ::shutdown(fd_, SHUT_RDWR);
  }
  std::string peer() const override { return peer_; }

 private:
  int fd_;
  std::string peer_;
  static constexpr size_t kRecvBuffer = 64 * 1024;

  // Copies buffered bytes (there are some) to `buf`.
  size_t take_buffered(MutableByteSpan buf) {
    const size_t n = std::min(buf.size(), rend_ - rpos_);
    std::memcpy(buf.data(), rbuf_.get() + rpos_, n);
    rpos_ += n;
    return n;
  }

  void set_read_spin(std::chrono::nanoseconds max) override { read_spin_.set_max(max); }

  std::atomic<bool> aborted_{false};
  AdaptiveSpin read_spin_;  // the reading thread's
  // Receive buffer (the reading thread's): bytes [rpos_, rend_) are received and not yet read.
  std::unique_ptr<uint8_t[]> rbuf_;
  size_t rpos_ = 0, rend_ = 0;
};

// Accepts on a listening fd (TCP or VSock) with a wake eventfd for close().
class FdListener final : public Listener {
 public:
  using Describe = std::function<std::string(const sockaddr_storage&)>;
  FdListener(int fd, std::string local, Describe describe, bool tcp)
      : fd_(fd),
        wake_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)),
        local_(std::move(local)),
        describe_(std::move(describe)),
        tcp_(tcp) {
    set_nonblocking(fd_);
  }
  ~FdListener() override {
    ::close(fd_);
    if (wake_ >= 0) ::close(wake_);
  }

  Result<std::unique_ptr<Stream>> accept(Deadline deadline) override {
    for (;;) {
      if (closed_) return aborted("listener " + local_ + " closed");
      sockaddr_storage ss{};
      socklen_t len = sizeof(ss);
      const int c = ::accept4(fd_, reinterpret_cast<sockaddr*>(&ss), &len, SOCK_CLOEXEC);
      if (c >= 0) {
        if (tcp_) {
          int one = 1;
          ::setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        }
        return std::unique_ptr<Stream>(std::make_unique<FdStream>(c, describe_(ss)));
      }
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) return unavailable("accept on " + local_ + ": " + errno_text(errno));
      Status st = wait_fd(fd_, POLLIN, deadline, wake_);
      if (!st.is_ok()) {
        if (st.code() == StatusCode::kTimeout) return timeout_error("accept on " + local_ + ": deadline passed");
        return aborted("listener " + local_ + " closed");
      }
    }
  }
  std::string local_endpoint() const override { return local_; }
  void close() override {
    closed_ = true;
    const uint64_t one = 1;
    if (wake_ >= 0) (void)!::write(wake_, &one, sizeof(one));
  }

 private:
  int fd_;
  int wake_;
  std::string local_;
  Describe describe_;
  bool tcp_;
  std::atomic<bool> closed_{false};
};

std::string describe_inet(const sockaddr_storage& ss) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (ss.ss_family == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
    ::inet_ntop(AF_INET, &a->sin_addr, buf, sizeof(buf));
    return "tcp://" + std::string(buf) + ":" + std::to_string(ntohs(a->sin_port));
  }
  if (ss.ss_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
    ::inet_ntop(AF_INET6, &a->sin6_addr, buf, sizeof(buf));
    return "tcp://[" + std::string(buf) + "]:" + std::to_string(ntohs(a->sin6_port));
  }
  return "tcp://?";
}

std::string describe_vsock(const sockaddr_storage& ss) {
  const auto* a = reinterpret_cast<const sockaddr_vm*>(&ss);
  return "vsock://" + std::to_string(a->svm_cid) + ":" + std::to_string(a->svm_port);
}

// Completes a non-blocking connect on fd.
Status finish_connect(int fd, int rc, Deadline deadline, const std::string& what) {
  if (rc != 0) {
    if (errno != EINPROGRESS && errno != EAGAIN) return unavailable("connect to " + what + ": " + errno_text(errno));
    Status st = wait_fd(fd, POLLOUT, deadline);
    if (!st.is_ok()) return timeout_error("connect to " + what + ": deadline passed");
    int err = 0;
    socklen_t len = sizeof(err);
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) return unavailable("connect to " + what + ": " + errno_text(err));
  }
  return Status::ok();
}

Result<std::unique_ptr<Stream>> connect_tcp(const Endpoint& ep, Deadline deadline) {
  asio::io_context ctx;
  asio::ip::tcp::resolver resolver(ctx);
  asio::error_code ec;
  auto results = resolver.resolve(ep.host, std::to_string(ep.port), asio::ip::resolver_base::numeric_service, ec);
  if (ec) return unavailable("resolve " + ep.host + ": " + ec.message());
  Status last = unavailable("resolve " + ep.host + ": no addresses");
  for (const auto& entry : results) {
    asio::ip::tcp::socket sock(ctx);
    sock.open(entry.endpoint().protocol(), ec);
    if (ec) {
      last = unavailable("socket: " + ec.message());
      continue;
    }
    sock.set_option(asio::ip::tcp::no_delay(true), ec);
    sock.non_blocking(true, ec);
    const int fd = sock.native_handle();
    const int rc = ::connect(fd, entry.endpoint().data(), static_cast<socklen_t>(entry.endpoint().size()));
    Status st = finish_connect(fd, rc, deadline, ep.to_string());
    if (!st.is_ok()) {
      last = st;
      if (st.code() == StatusCode::kTimeout) return st;
      continue;
    }
    const int owned = sock.release(ec);
    if (ec) return internal_error("release socket: " + ec.message());
    return std::unique_ptr<Stream>(std::make_unique<FdStream>(owned, ep.to_string()));
  }
  return last;
}

Result<std::unique_ptr<Stream>> connect_vsock(const Endpoint& ep, Deadline deadline) {
  const int fd = ::socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return unavailable("vsock socket: " + errno_text(errno) + " (no AF_VSOCK support in this kernel?)");
  sockaddr_vm addr{};
  addr.svm_family = AF_VSOCK;
  addr.svm_cid = ep.cid;
  addr.svm_port = ep.port;
  const int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  Status st = finish_connect(fd, rc, deadline, ep.to_string());
  if (!st.is_ok()) {
    ::close(fd);
    return st;
  }
  return std::unique_ptr<Stream>(std::make_unique<FdStream>(fd, ep.to_string()));
}

Result<std::unique_ptr<Listener>> listen_tcp(const Endpoint& ep, int backlog) {
  asio::io_context ctx;
  asio::error_code ec;
  asio::ip::tcp::resolver resolver(ctx);
  auto results = resolver.resolve(ep.host, std::to_string(ep.port),
                                  asio::ip::resolver_base::numeric_service | asio::ip::resolver_base::passive, ec);
  if (ec || results.empty()) return unavailable("resolve " + ep.host + ": " + (ec ? ec.message() : "no addresses"));
  const auto endpoint = results.begin()->endpoint();
  asio::ip::tcp::acceptor acceptor(ctx);
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(asio::ip::tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(backlog, ec);
  if (ec) return unavailable("listen on " + ep.to_string() + ": " + ec.message());
  const auto local = acceptor.local_endpoint(ec);
  sockaddr_storage ss{};
  std::memcpy(&ss, local.data(), local.size());
  const std::string name = describe_inet(ss);
  const int fd = acceptor.release(ec);
  if (ec) return internal_error("release acceptor: " + ec.message());
  return std::unique_ptr<Listener>(std::make_unique<FdListener>(fd, name, describe_inet, true));
}

Result<std::unique_ptr<Listener>> listen_vsock(const Endpoint& ep, int backlog) {
  const int fd = ::socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return unavailable("vsock socket: " + errno_text(errno) + " (no AF_VSOCK support in this kernel?)");
  sockaddr_vm addr{};
  addr.svm_family = AF_VSOCK;
  addr.svm_cid = ep.cid;
  addr.svm_port = ep.port == 0 ? VMADDR_PORT_ANY : ep.port;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || ::listen(fd, backlog) != 0) {
    const int err = errno;
    ::close(fd);
    return unavailable("listen on " + ep.to_string() + ": " + errno_text(err));
  }
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  return std::unique_ptr<Listener>(std::make_unique<FdListener>(fd, describe_vsock(ss), describe_vsock, false));
}

// ---------------------------------------------------------------------------------------------------
// In-memory pipe: one bounded ring buffer per direction.

struct PipeBuffer {
  // Every byte of the ring is written before it is read, but the ring is filled once here all the same:
  // each of its pages would otherwise fault on first use, inside a sender's record (a fault costs about
  // 2 µs on the VMs measured, and a stream of 1 KiB records reaches a new page every fourth record until
  // the ring has wrapped once).
  explicit PipeBuffer(size_t capacity) : ring(std::make_unique_for_overwrite<uint8_t[]>(capacity)), cap(capacity) {
    std::memset(ring.get(), 0, capacity);
  }
  std::mutex mu;
  std::condition_variable readable;
  std::condition_variable writable;
  std::unique_ptr<uint8_t[]> ring;
  size_t cap;
  size_t head = 0;  // read position
  size_t size = 0;  // buffered bytes
  bool writer_closed = false;
  bool reader_closed = false;
  bool aborted = false;
  // Bumped under `mu` whenever bytes are published or the buffer is closed or aborted, so that a
  // spinning reader can watch for news without taking the lock.
  std::atomic<uint64_t> events{0};
};

template <typename Pred>
bool wait_until(std::condition_variable& cv, std::unique_lock<std::mutex>& lk, Deadline d, Pred pred) {
  if (d.is_never()) {
    cv.wait(lk, pred);
    return true;
  }
  return cv.wait_until(lk, d.at(), pred);
}

constexpr size_t kPipeSlice = 256 * 1024;

class PipeStream final : public Stream {
 public:
  PipeStream(std::shared_ptr<PipeBuffer> in, std::shared_ptr<PipeBuffer> out, std::string name)
      : in_(std::move(in)), out_(std::move(out)), name_(std::move(name)) {}
  ~PipeStream() override {
    {
      std::lock_guard lk(out_->mu);
      out_->writer_closed = true;
      out_->events.fetch_add(1, std::memory_order_release);
    }
    out_->readable.notify_all();
    {
      std::lock_guard lk(in_->mu);
      in_->reader_closed = true;
    }
    in_->writable.notify_all();
  }

  Result<size_t> read_some(MutableByteSpan buf, Deadline deadline) override {
    if (buf.empty()) return size_t{0};
    PipeBuffer& b = *in_;
    std::unique_lock lk(b.mu);
    // Spin briefly for the writer before sleeping on the condition variable.
    if (!read_spin_.wait(lk, b.readable, b.events, deadline,
                         [&] { return b.size > 0 || b.writer_closed || b.aborted; })) {
      return timeout_error("read from " + name_ + ": deadline passed");
    }
    if (b.aborted) return unavailable("pipe " + name_ + " aborted");
    if (b.size == 0) return size_t{0};  // writer closed
    // Copy outside the lock (one reader per direction): the region stays counted in `size`, so the
    // writer cannot reuse it, and the writer can fill free space concurrently.
    const size_t cap = b.cap;
    const size_t head = b.head;
    const size_t n = std::min(buf.size(), b.size);
    lk.unlock();
    const size_t first = std::min(n, cap - head);
    std::memcpy(buf.data(), b.ring.get() + head, first);
    if (n > first) std::memcpy(buf.data() + first, b.ring.get(), n - first);
    lk.lock();
    b.head = (head + n) % cap;
    b.size -= n;
    lk.unlock();
    b.writable.notify_one();
    return n;
  }

  Status write_all(std::span<const ByteSpan> parts, Deadline deadline) override {
    PipeBuffer& b = *out_;
    const size_t cap = b.cap;
    for (ByteSpan part : parts) {
      while (!part.empty()) {
        std::unique_lock lk(b.mu);
        if (!wait_until(b.writable, lk, deadline,
                        [&] { return b.size < cap || b.reader_closed || b.aborted || b.writer_closed; })) {
          return timeout_error("write to " + name_ + ": deadline passed");
        }
        if (b.aborted) return unavailable("pipe " + name_ + " aborted");
        if (b.writer_closed) return unavailable("write to " + name_ + " after shutdown");
        if (b.reader_closed) return unavailable("pipe " + name_ + ": peer closed");
        // Reserve free space, copy outside the lock (one writer per direction), then publish. Slices
        // of at most 256 KiB let the reader start copying out while the rest is copied in.
        const size_t n = std::min({part.size(), cap - b.size, kPipeSlice});
        const size_t tail = (b.head + b.size) % cap;
        lk.unlock();
        const size_t first = std::min(n, cap - tail);
        std::memcpy(b.ring.get() + tail, part.data(), first);
        if (n > first) std::memcpy(b.ring.get(), part.data() + first, n - first);
        lk.lock();
        b.size += n;
        b.events.fetch_add(1, std::memory_order_release);
        lk.unlock();
        b.readable.notify_one();
        part = part.subspan(n);
      }
    }
    return Status::ok();
  }

  Result<MutableByteSpan> reserve_write(size_t n, Deadline deadline) override {
    PipeBuffer& b = *out_;
    std::unique_lock lk(b.mu);
    // Only the writer moves the tail, so whether these n bytes lie in one piece is known now.
    const size_t tail = (b.head + b.size) % b.cap;
    if (n == 0 || tail + n > b.cap) return MutableByteSpan{};
    if (!wait_until(b.writable, lk, deadline,
                    [&] { return b.cap - b.size >= n || b.reader_closed || b.aborted || b.writer_closed; })) {
      return timeout_error("write to " + name_ + ": deadline passed");
    }
    if (b.aborted) return unavailable("pipe " + name_ + " aborted");
    if (b.writer_closed) return unavailable("write to " + name_ + " after shutdown");
    if (b.reader_closed) return unavailable("pipe " + name_ + ": peer closed");
    reserved_ = n;
    return MutableByteSpan(b.ring.get() + tail, n);
  }

  void commit_write(size_t n) override {
    CML_CHECK_MSG(n == reserved_ && n > 0, "commit_write: not the reserved size");
    reserved_ = 0;
    PipeBuffer& b = *out_;
    {
      std::lock_guard lk(b.mu);
      b.size += n;
      b.events.fetch_add(1, std::memory_order_release);
    }
    b.readable.notify_one();
  }

  Result<ByteSpan> peek_read(size_t n, Deadline deadline) override {
    PipeBuffer& b = *in_;
    std::unique_lock lk(b.mu);
    // Only the reader moves the head, so whether the next n bytes lie in one piece is known now.
    if (n == 0 || b.head + n > b.cap) return ByteSpan{};
    if (!read_spin_.wait(lk, b.readable, b.events, deadline,
                         [&] { return b.size >= n || b.writer_closed || b.aborted; })) {
      return timeout_error("read from " + name_ + ": deadline passed");
    }
    if (b.aborted) return unavailable("pipe " + name_ + " aborted");
    if (b.size < n) {
      return unavailable("peer " + name_ + " closed the stream after " + std::to_string(b.size) + " of " +
                         std::to_string(n) + " bytes");
    }
    peeked_ = n;
    return ByteSpan(b.ring.get() + b.head, n);
  }

  void release_read(size_t n) override {
    CML_CHECK_MSG(n == peeked_ && n > 0, "release_read: not the peeked size");
    peeked_ = 0;
    PipeBuffer& b = *in_;
    {
      std::lock_guard lk(b.mu);
      b.head = (b.head + n) % b.cap;
      b.size -= n;
    }
    b.writable.notify_one();
  }

  Status shutdown_write() override {
    {
      std::lock_guard lk(out_->mu);
      out_->writer_closed = true;
      out_->events.fetch_add(1, std::memory_order_release);
    }
    out_->readable.notify_all();
    out_->writable.notify_all();
    return Status::ok();
  }

  void abort() override {
    for (auto* b : {in_.get(), out_.get()}) {
      {
        std::lock_guard lk(b->mu);
        b->aborted = true;
        b->events.fetch_add(1, std::memory_order_release);
      }
      b->readable.notify_all();
      b->writable.notify_all();
    }
  }
  std::string peer() const override { return name_; }
  void set_read_spin(std::chrono::nanoseconds max) override { read_spin_.set_max(max); }

 private:
  std::shared_ptr<PipeBuffer> in_;
  std::shared_ptr<PipeBuffer> out_;
  std::string name_;
  AdaptiveSpin read_spin_;  // the reading thread's (one reader per direction)
  size_t reserved_ = 0;     // the writer's outstanding reserve_write
  size_t peeked_ = 0;       // the reader's outstanding peek_read
};

std::pair<std::unique_ptr<Stream>, std::unique_ptr<Stream>> make_named_pipe(size_t capacity, const std::string& name) {
  CML_CHECK(capacity > 0);
  auto a2b = std::make_shared<PipeBuffer>(capacity);
  auto b2a = std::make_shared<PipeBuffer>(capacity);
  return {std::make_unique<PipeStream>(b2a, a2b, name), std::make_unique<PipeStream>(a2b, b2a, name)};
}

bool parse_u32(std::string_view s, uint32_t max, uint32_t& out) {
  if (s.empty() || s.size() > 10) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + uint64_t(c - '0');
  }
  if (v > max) return false;
  out = static_cast<uint32_t>(v);
  return true;
}

}  // namespace

std::pair<std::unique_ptr<Stream>, std::unique_ptr<Stream>> make_pipe(size_t capacity) {
  return make_named_pipe(capacity, "pipe");
}

// ---------------------------------------------------------------------------------------------------
// PipeListener

struct PipeListener::State {
  std::string name;
  size_t capacity;
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::unique_ptr<Stream>> pending;
  bool closed = false;
  // Bumped under `mu` by connect() and close(), so that an accepting thread can spin on it.
  std::atomic<uint64_t> events{0};
};

PipeListener::PipeListener(std::string name, size_t capacity) : state_(std::make_shared<State>()) {
  state_->name = std::move(name);
  state_->capacity = capacity;
}
PipeListener::~PipeListener() {
  close();
}

Result<std::unique_ptr<Stream>> PipeListener::connect() {
  auto [client, server] = make_named_pipe(state_->capacity, "pipe://" + state_->name);
  {
    std::lock_guard lk(state_->mu);
    if (state_->closed) return unavailable("pipe listener " + state_->name + " closed");
    state_->pending.push_back(std::move(server));
    state_->events.fetch_add(1, std::memory_order_release);
  }
  state_->cv.notify_one();
  return std::move(client);
}

Result<std::unique_ptr<Stream>> PipeListener::accept(Deadline deadline) {
  // Like a pipe's reader, an accepting thread spins briefly before it sleeps (per thread: a stage's
  // accept loop learns how far apart its connections come).
  thread_local AdaptiveSpin spin;
  std::unique_lock lk(state_->mu);
  if (!spin.wait(lk, state_->cv, state_->events, deadline,
                 [&] { return !state_->pending.empty() || state_->closed; })) {
    return timeout_error("accept on pipe://" + state_->name + ": deadline passed");
  }
  if (state_->closed) return aborted("pipe listener " + state_->name + " closed");
  auto s = std::move(state_->pending.front());
  state_->pending.pop_front();
  return s;
}

std::string PipeListener::local_endpoint() const {
  return "pipe://" + state_->name;
}

void PipeListener::close() {
  {
    std::lock_guard lk(state_->mu);
    state_->closed = true;
    state_->pending.clear();
    state_->events.fetch_add(1, std::memory_order_release);
  }
  state_->cv.notify_all();
}

// ---------------------------------------------------------------------------------------------------
// Endpoints

Result<std::string> free_loopback_endpoint() {
  static std::mutex mu;
  static std::set<std::string> given;
  CML_ASSIGN_OR_RETURN(auto ep, parse_endpoint("tcp://127.0.0.1:0"));
  for (int attempt = 0; attempt < 64; ++attempt) {
    CML_ASSIGN_OR_RETURN(auto l, listen(ep));
    std::string s = l->local_endpoint();
    l->close();
    std::lock_guard lk(mu);
    if (given.insert(s).second) return s;
  }
  return unavailable("no free TCP port on 127.0.0.1 that this process has not been given before");
}

std::string Endpoint::to_string() const {
  if (kind == Kind::kVsock) return "vsock://" + std::to_string(cid) + ":" + std::to_string(port);
  if (host.find(':') != std::string::npos) return "tcp://[" + host + "]:" + std::to_string(port);
  return "tcp://" + host + ":" + std::to_string(port);
}

Result<Endpoint> parse_endpoint(std::string_view text) {
  Endpoint ep;
  std::string_view rest;
  if (text.substr(0, 6) == "tcp://") {
    ep.kind = Endpoint::Kind::kTcp;
    rest = text.substr(6);
  } else if (text.substr(0, 8) == "vsock://") {
    ep.kind = Endpoint::Kind::kVsock;
    rest = text.substr(8);
  } else {
    return invalid_argument("endpoint '" + std::string(text) + "': expected tcp://host:port or vsock://cid:port");
  }
  const size_t colon = rest.rfind(':');
  if (colon == std::string_view::npos) return invalid_argument("endpoint '" + std::string(text) + "': missing :port");
  std::string_view host = rest.substr(0, colon);
  const std::string_view port = rest.substr(colon + 1);
  if (ep.kind == Endpoint::Kind::kTcp) {
    if (!parse_u32(port, 65535, ep.port)) return invalid_argument("endpoint '" + std::string(text) + "': bad port");
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
      host = host.substr(1, host.size() - 2);
      if (host.empty() || host.find_first_not_of("0123456789abcdefABCDEF:.") != std::string_view::npos) {
        return invalid_argument("endpoint '" + std::string(text) + "': bad IPv6 address");
      }
    } else if (host.empty() || host.find_first_of(":[]/ ") != std::string_view::npos) {
      return invalid_argument("endpoint '" + std::string(text) + "': bad host (IPv6 needs [brackets])");
    }
    ep.host = std::string(host);
  } else {
    if (!parse_u32(port, UINT32_MAX, ep.port))
      return invalid_argument("endpoint '" + std::string(text) + "': bad port");
    if (host == "any") {
      ep.cid = kVsockCidAny;
    } else if (host == "local") {
      ep.cid = kVsockCidLocal;
    } else if (host == "host") {
      ep.cid = kVsockCidHost;
    } else if (!parse_u32(host, UINT32_MAX, ep.cid)) {
      return invalid_argument("endpoint '" + std::string(text) + "': bad CID (a number, any, local or host)");
    }
  }
  return ep;
}

Result<std::unique_ptr<Stream>> connect(const Endpoint& endpoint, Deadline deadline) {
  return endpoint.kind == Endpoint::Kind::kTcp ? connect_tcp(endpoint, deadline) : connect_vsock(endpoint, deadline);
}

Result<std::unique_ptr<Listener>> listen(const Endpoint& endpoint, int backlog) {
  return endpoint.kind == Endpoint::Kind::kTcp ? listen_tcp(endpoint, backlog) : listen_vsock(endpoint, backlog);
}

bool vsock_available() {
  const int fd = ::socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  ::close(fd);
  return true;
}

// ---------------------------------------------------------------------------------------------------
// Retry

Duration RetryPolicy::delay_for_retry(int k, double u) const {
  double d = static_cast<double>(initial_delay.count());
  const double cap = static_cast<double>(max_delay.count());
  for (int i = 0; i < k && d < cap; ++i) d *= multiplier;
  d = std::min(d, cap);
  const double j = std::clamp(jitter, 0.0, 1.0);
  d *= 1.0 - j * std::clamp(u, 0.0, 1.0);
  return Duration(static_cast<Duration::rep>(d));
}

Status retry_loop(const RetryPolicy& policy, Deadline deadline, const std::function<Status()>& attempt,
                  const RetryHooks& hooks) {
  const int attempts = std::max(1, policy.max_attempts);
  std::function<double()> uniform = hooks.uniform;
  if (!uniform) {
    auto rng = std::make_shared<std::mt19937_64>(crypto::random_u64());
    uniform = [rng] { return std::uniform_real_distribution<double>(0.0, 1.0)(*rng); };
  }
  Status last;
  int made = 0;
  for (int k = 0; k < attempts; ++k) {
    last = attempt();
    made = k + 1;
    if (last.is_ok()) return last;
    const bool retryable = last.code() == StatusCode::kUnavailable || last.code() == StatusCode::kTimeout;
    if (!retryable || k + 1 == attempts) break;
    const Duration delay = policy.delay_for_retry(k, uniform());
    if (!deadline.is_never() && deadline.remaining() <= delay) {
      return last.with_context("giving up after " + std::to_string(k + 1) + " attempts (deadline)");
    }
    if (hooks.on_retry) hooks.on_retry(k, last, delay);
    if (hooks.sleep) {
      hooks.sleep(delay);
    } else {
      std::this_thread::sleep_for(delay);
    }
  }
  return last.with_context("after " + std::to_string(made) + (made == 1 ? " attempt" : " attempts"));
}

Result<std::unique_ptr<Stream>> connect_with_retry(const Endpoint& endpoint, const RetryPolicy& policy,
                                                   Deadline deadline, const RetryHooks& hooks) {
  return with_retry<std::unique_ptr<Stream>>(
      policy, deadline, [&]() { return connect(endpoint, deadline); }, hooks);
}

}  // namespace cml::net
