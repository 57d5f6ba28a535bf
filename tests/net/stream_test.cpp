#include "net/stream.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <thread>
#include <vector>

#include "net_test_util.h"

namespace cml::net {
namespace {

using std::chrono::milliseconds;

void echo_once(Stream& a, Stream& b) {
  const Bytes header = to_bytes("HDR"), body = to_bytes("payload");
  const ByteSpan parts[2] = {header, body};
  NET_ASSERT_OK(a.write_all(std::span<const ByteSpan>(parts), testing::soon()));
  Bytes got(10);
  NET_ASSERT_OK(b.read_exact(got, testing::soon()));
  EXPECT_EQ(as_string_view(got), "HDRpayload");
}

TEST(Pipe, DuplexAndEndOfStream) {
  auto pipe_a = make_pipe(64);
  auto& a = pipe_a.first;
  auto& b = pipe_a.second;
  echo_once(*a, *b);
  echo_once(*b, *a);
  NET_ASSERT_OK(a->write_all(to_bytes("tail"), testing::soon()));
  NET_ASSERT_OK(a->shutdown_write());
  Bytes got(4);
  NET_ASSERT_OK(b->read_exact(got, testing::soon()));
  uint8_t one;
  auto r = b->read_some(MutableByteSpan(&one, 1), testing::soon());
  NET_ASSERT_OK(r);
  EXPECT_EQ(*r, 0u);  // end of stream after the buffered bytes
  EXPECT_EQ(a->write_all(to_bytes("x"), testing::soon()).code(), StatusCode::kUnavailable);
}

TEST(Pipe, LargeTransferThroughSmallBuffer) {
  auto pipe_a = make_pipe(1000);
  auto& a = pipe_a.first;
  auto& b = pipe_a.second;
  Bytes data(1 << 20);
  for (size_t i = 0; i < data.size(); ++i) data[i] = uint8_t(i * 31);
  std::thread w([&] { EXPECT_TRUE(a->write_all(data, testing::soon()).is_ok()); });
  Bytes got(data.size());
  NET_ASSERT_OK(b->read_exact(got, testing::soon()));
  w.join();
  EXPECT_EQ(got, data);
}

TEST(Pipe, ReadTimeoutLeavesStreamUsable) {
  auto pipe_a = make_pipe();
  auto& a = pipe_a.first;
  auto& b = pipe_a.second;
  uint8_t buf[4];
  NET_EXPECT_ERROR(b->read_some(buf, Deadline::after(milliseconds(20))), StatusCode::kTimeout, "deadline");
  echo_once(*a, *b);
}

TEST(Pipe, WriteTimeoutWhenFull) {
  auto pipe_a = make_pipe(8);
  auto& a = pipe_a.first;
  NET_EXPECT_ERROR(a->write_all(Bytes(9), Deadline::after(milliseconds(20))), StatusCode::kTimeout, "deadline");
}

TEST(Pipe, CloseWakesReaderAndAbortWakesBoth) {
  auto pipe_a = make_pipe();
  auto& a = pipe_a.first;
  auto& b = pipe_a.second;
  std::thread t([&] { a.reset(); });
  Bytes got(4);
  NET_EXPECT_ERROR(b->read_exact(got, testing::soon()), StatusCode::kUnavailable, "closed the stream after 0 of 4");
  t.join();
  auto pipe_c = make_pipe();
  auto& c = pipe_c.first;
  std::thread t2([&] { c->abort(); });
  NET_EXPECT_ERROR(c->read_exact(got, testing::soon()), StatusCode::kUnavailable, "aborted");
  t2.join();
}

TEST(Pipe, DirectAccessInOnePieceElseFallBack) {
  auto pipe_a = make_pipe(100);
  auto& a = pipe_a.first;
  auto& b = pipe_a.second;
  // 60 bytes written in place and read in place.
  auto w = a->reserve_write(60, testing::soon());
  NET_ASSERT_OK(w);
  ASSERT_EQ(w->size(), 60u);
  for (size_t i = 0; i < 60; ++i) (*w)[i] = uint8_t(i);
  a->commit_write(60);
  auto r = b->peek_read(60, testing::soon());
  NET_ASSERT_OK(r);
  ASSERT_EQ(r->size(), 60u);
  for (size_t i = 0; i < 60; ++i) ASSERT_EQ((*r)[i], uint8_t(i));
  b->release_read(60);
  // Head and tail now at 60: 50 more bytes would cross the end of the ring, so neither side offers them
  // in one piece, and the copying calls carry them.
  auto w2 = a->reserve_write(50, testing::soon());
  NET_ASSERT_OK(w2);
  EXPECT_TRUE(w2->empty());
  Bytes data(50);
  for (size_t i = 0; i < data.size(); ++i) data[i] = uint8_t(200 + i);
  NET_ASSERT_OK(a->write_all(data, testing::soon()));
  auto r2 = b->peek_read(50, testing::soon());
  NET_ASSERT_OK(r2);
  EXPECT_TRUE(r2->empty());
  Bytes got(50);
  NET_ASSERT_OK(b->read_exact(got, testing::soon()));
  EXPECT_EQ(got, data);
  // Head and tail at 10: in one piece again, mixed with a copying read of part of it.
  auto w3 = a->reserve_write(30, testing::soon());
  NET_ASSERT_OK(w3);
  ASSERT_EQ(w3->size(), 30u);
  std::fill(w3->begin(), w3->end(), uint8_t(7));
  a->commit_write(30);
  Bytes first(10);
  NET_ASSERT_OK(b->read_exact(first, testing::soon()));
  EXPECT_EQ(first, Bytes(10, 7));
  auto r3 = b->peek_read(20, testing::soon());
  NET_ASSERT_OK(r3);
  EXPECT_EQ(Bytes(r3->begin(), r3->end()), Bytes(20, 7));
  b->release_read(20);
  // More than the ring holds is never offered in one piece.
  auto big = a->reserve_write(101, testing::soon());
  NET_ASSERT_OK(big);
  EXPECT_TRUE(big->empty());
}

TEST(Pipe, DirectAccessWaitsTimesOutAndSeesTheEnd) {
  auto pipe_a = make_pipe(16);
  auto& a = pipe_a.first;
  auto& b = pipe_a.second;
  Bytes ten(10);
  NET_ASSERT_OK(a->write_all(Bytes(10, 0), testing::soon()));
  NET_ASSERT_OK(b->read_exact(ten, testing::soon()));
  NET_ASSERT_OK(a->write_all(Bytes(12, 1), testing::soon()));  // wraps: head 10, tail 6, 4 bytes free
  // Five bytes from the tail are in one piece but not free: the reservation waits, here past its deadline.
  NET_EXPECT_ERROR(a->reserve_write(5, Deadline::after(milliseconds(20))), StatusCode::kTimeout, "deadline");
  Bytes six(6);
  NET_ASSERT_OK(b->read_exact(six, testing::soon()));  // head 0, 6 bytes buffered
  // A peek waits until all its bytes are there.
  NET_EXPECT_ERROR(b->peek_read(8, Deadline::after(milliseconds(20))), StatusCode::kTimeout, "deadline");
  std::thread t([&] {
    std::this_thread::sleep_for(milliseconds(10));
    auto w = a->reserve_write(2, testing::soon());
    if (w.is_ok() && w->size() == 2) {
      (*w)[0] = (*w)[1] = 2;
      a->commit_write(2);
    }
  });
  auto r = b->peek_read(8, testing::soon());
  t.join();
  NET_ASSERT_OK(r);
  EXPECT_EQ(Bytes(r->begin(), r->end()), Bytes({1, 1, 1, 1, 1, 1, 2, 2}));
  b->release_read(8);
  // The writer closes after 3 of the 4 bytes the reader wants.
  NET_ASSERT_OK(a->write_all(Bytes(3, 3), testing::soon()));
  a.reset();
  NET_EXPECT_ERROR(b->peek_read(4, testing::soon()), StatusCode::kUnavailable, "closed the stream after 3 of 4");
  // An aborted pipe refuses both.
  auto pipe_c = make_pipe(64);
  pipe_c.first->abort();
  NET_EXPECT_ERROR(pipe_c.first->reserve_write(8, testing::soon()), StatusCode::kUnavailable, "aborted");
  NET_EXPECT_ERROR(pipe_c.second->peek_read(8, testing::soon()), StatusCode::kUnavailable, "aborted");
}

TEST(PipeListener, ConnectAccept) {
  PipeListener l("stage0");
  EXPECT_EQ(l.local_endpoint(), "pipe://stage0");
  NET_EXPECT_ERROR(l.accept(Deadline::after(milliseconds(10))), StatusCode::kTimeout, "deadline");
  auto c = l.connect();
  NET_ASSERT_OK(c);
  auto s = l.accept(testing::soon());
  NET_ASSERT_OK(s);
  echo_once(**c, **s);
  l.close();
  NET_EXPECT_ERROR(l.accept(testing::soon()), StatusCode::kAborted, "closed");
  EXPECT_EQ(l.connect().status().code(), StatusCode::kUnavailable);
}

TEST(Tcp, LoopbackEcho) {
  auto l = listen(parse_endpoint("tcp://127.0.0.1:0").value());
  NET_ASSERT_OK(l);
  auto ep = parse_endpoint((*l)->local_endpoint());
  NET_ASSERT_OK(ep);
  EXPECT_NE(ep->port, 0u);
  std::unique_ptr<Stream> server;
  std::thread t([&] {
    auto s = (*l)->accept(testing::soon());
    ASSERT_TRUE(s.is_ok()) << s.status().to_string();
    server = std::move(s).value();
  });
  auto c = connect(*ep, testing::soon());
  NET_ASSERT_OK(c);
  t.join();
  ASSERT_TRUE(server);
  echo_once(**c, *server);
  echo_once(*server, **c);
  // Large gathered write, read on the other side concurrently.
  Bytes big(4 << 20, 0x5A);
  std::thread w([&] { EXPECT_TRUE((*c)->write_all(big, testing::soon()).is_ok()); });
  Bytes got(big.size());
  NET_ASSERT_OK(server->read_exact(got, testing::soon()));
  w.join();
  EXPECT_EQ(got, big);
  // Half-close: the server reads end of stream.
  NET_ASSERT_OK((*c)->shutdown_write());
  uint8_t one;
  auto r = server->read_some(MutableByteSpan(&one, 1), testing::soon());
  NET_ASSERT_OK(r);
  EXPECT_EQ(*r, 0u);
}

TEST(Tcp, TimeoutsAndAbort) {
  auto l = listen(parse_endpoint("tcp://127.0.0.1:0").value());
  NET_ASSERT_OK(l);
  NET_EXPECT_ERROR((*l)->accept(Deadline::after(milliseconds(20))), StatusCode::kTimeout, "deadline");
  auto c = connect(parse_endpoint((*l)->local_endpoint()).value(), testing::soon());
  NET_ASSERT_OK(c);
  auto s = (*l)->accept(testing::soon());
  NET_ASSERT_OK(s);
  uint8_t buf[8];
  NET_EXPECT_ERROR((*s)->read_some(buf, Deadline::after(milliseconds(20))), StatusCode::kTimeout, "deadline");
  std::thread t([&] { (*s)->abort(); });
  NET_EXPECT_ERROR((*s)->read_some(buf, testing::soon()), StatusCode::kUnavailable, "aborted");
  t.join();
  std::thread t2([&] { (*l)->close(); });
  NET_EXPECT_ERROR((*l)->accept(testing::soon()), StatusCode::kAborted, "closed");
  t2.join();
}

std::pair<std::unique_ptr<Stream>, std::unique_ptr<Stream>> tcp_pair() {
  auto l = listen(parse_endpoint("tcp://127.0.0.1:0").value());
  EXPECT_TRUE(l.is_ok());
  if (!l.is_ok()) return {};
  auto c = connect(parse_endpoint((*l)->local_endpoint()).value(), testing::soon());
  auto s = (*l)->accept(testing::soon());
  EXPECT_TRUE(c.is_ok() && s.is_ok());
  if (!c.is_ok() || !s.is_ok()) return {};
  return {std::move(*c), std::move(*s)};
}

// A record as the channel frames it: a 13-byte header, then the body.
Bytes record(size_t body, uint8_t seed) {
  Bytes r(13 + body);
  for (size_t i = 0; i < r.size(); ++i) r[i] = static_cast<uint8_t>(seed + i * 31 + (i >> 8));
  return r;
}

void read_record(Stream& s, const Bytes& want) {
  Bytes header(13), body(want.size() - 13);
  NET_ASSERT_OK(s.read_exact(header, testing::soon()));
  NET_ASSERT_OK(s.read_exact(body, testing::soon()));
  EXPECT_TRUE(std::equal(header.begin(), header.end(), want.begin()));
  EXPECT_TRUE(std::equal(body.begin(), body.end(), want.begin() + 13));
}

TEST(Tcp, RecordSplitAcrossManyTinyWrites) {
  auto [c, s] = tcp_pair();
  ASSERT_TRUE(c && s);
  // Small records byte by byte, and one larger than the receive buffer in 7-byte pieces.
  const std::vector<Bytes> records = {record(3000, 1), record(0, 2), record(100000, 3), record(5, 4)};
  std::thread w([&, &c = c] {
    for (const Bytes& r : records) {
      const size_t piece = r.size() > 20000 ? 7 : 1;
      for (size_t i = 0; i < r.size(); i += piece) {
        const size_t n = std::min(piece, r.size() - i);
        ASSERT_TRUE(c->write_all(ByteSpan(r.data() + i, n), testing::soon()).is_ok());
      }
    }
    ASSERT_TRUE(c->shutdown_write().is_ok());
  });
  for (const Bytes& r : records) read_record(*s, r);
  uint8_t one;
  auto eof = s->read_some(MutableByteSpan(&one, 1), testing::soon());
  NET_ASSERT_OK(eof);
  EXPECT_EQ(*eof, 0u);
  w.join();
}

TEST(Tcp, SeveralRecordsInOneSegment) {
  auto [c, s] = tcp_pair();
  ASSERT_TRUE(c && s);
  // Records of every kind back to back in one write: small ones end inside the receive buffer, the
  // 70000-byte body is read partly from the buffer and partly straight into the caller's memory.
  const std::vector<Bytes> records = {record(40, 5), record(0, 6), record(1200, 7), record(70000, 8), record(3, 9)};
  Bytes all;
  for (const Bytes& r : records) all.insert(all.end(), r.begin(), r.end());
  NET_ASSERT_OK(c->write_all(all, testing::soon()));
  NET_ASSERT_OK(c->shutdown_write());
  for (const Bytes& r : records) read_record(*s, r);
  // End of stream only after every buffered byte, and then again.
  uint8_t one;
  for (int i = 0; i < 2; ++i) {
    auto eof = s->read_some(MutableByteSpan(&one, 1), testing::soon());
    NET_ASSERT_OK(eof);
    EXPECT_EQ(*eof, 0u);
  }
}

TEST(Tcp, AbortDiscardsBufferedBytesAndTimeoutKeepsThem) {
  auto [c, s] = tcp_pair();
  ASSERT_TRUE(c && s);
  const Bytes a = record(20, 1), b = record(20, 2);
  Bytes both(a);
  both.insert(both.end(), b.begin(), b.end());
  NET_ASSERT_OK(c->write_all(both, testing::soon()));
  read_record(*s, a);  // b is (most likely) in the receive buffer now
  // A deadline that has passed still returns bytes that are there.
  Bytes header(13);
  NET_ASSERT_OK(s->read_exact(header, Deadline::after(milliseconds(0))));
  EXPECT_TRUE(std::equal(header.begin(), header.end(), b.begin()));
  Bytes body(20);
  NET_ASSERT_OK(s->read_exact(body, testing::soon()));
  uint8_t buf[8];
  NET_EXPECT_ERROR(s->read_some(buf, Deadline::after(milliseconds(20))), StatusCode::kTimeout, "deadline");
  NET_ASSERT_OK(c->write_all(both, testing::soon()));
  read_record(*s, a);
  s->abort();
  NET_EXPECT_ERROR(s->read_some(buf, testing::soon()), StatusCode::kUnavailable, "aborted");
}

TEST(Tcp, FreeLoopbackEndpointsAreNeverRepeatedAndCanBeListenedOn) {
  // The kernel hands just-released ports out again (it did so within a manifest's few picks), so a
  // process must never be given the same one twice.
  std::set<std::string> seen;
  for (int i = 0; i < 300; ++i) {
    auto ep = free_loopback_endpoint();
    NET_ASSERT_OK(ep);
    EXPECT_TRUE(seen.insert(*ep).second) << *ep << " given twice";
    EXPECT_EQ(ep->rfind("tcp://127.0.0.1:", 0), 0u) << *ep;
  }
  auto ep = free_loopback_endpoint();
  NET_ASSERT_OK(ep);
  auto l = listen(parse_endpoint(*ep).value());
  NET_ASSERT_OK(l);
  EXPECT_EQ((*l)->local_endpoint(), *ep);
}

TEST(Tcp, ConnectRefused) {
  // Bind then close to find a port nobody listens on.
  std::string ep;
  {
    auto l = listen(parse_endpoint("tcp://127.0.0.1:0").value());
    NET_ASSERT_OK(l);
    ep = (*l)->local_endpoint();
  }
  NET_EXPECT_ERROR(connect(parse_endpoint(ep).value(), testing::soon()), StatusCode::kUnavailable, "connect to");
  NET_EXPECT_ERROR(connect(parse_endpoint("tcp://no-such-host.invalid:1").value(), testing::soon()),
                   StatusCode::kUnavailable, "resolve");
}

TEST(Endpoint, Parse) {
  auto e = parse_endpoint("tcp://127.0.0.1:8080");
  NET_ASSERT_OK(e);
  EXPECT_EQ(e->kind, Endpoint::Kind::kTcp);
  EXPECT_EQ(e->host, "127.0.0.1");
  EXPECT_EQ(e->port, 8080u);
  EXPECT_EQ(e->to_string(), "tcp://127.0.0.1:8080");
  e = parse_endpoint("tcp://[::1]:0");
  NET_ASSERT_OK(e);
  EXPECT_EQ(e->host, "::1");
  EXPECT_EQ(e->to_string(), "tcp://[::1]:0");
  e = parse_endpoint("tcp://stage-1.local:65535");
  NET_ASSERT_OK(e);
  EXPECT_EQ(e->host, "stage-1.local");
  e = parse_endpoint("vsock://16:5000");
  NET_ASSERT_OK(e);
  EXPECT_EQ(e->kind, Endpoint::Kind::kVsock);
  EXPECT_EQ(e->cid, 16u);
  EXPECT_EQ(e->port, 5000u);
  EXPECT_EQ(e->to_string(), "vsock://16:5000");
  EXPECT_EQ(parse_endpoint("vsock://any:1").value().cid, kVsockCidAny);
  EXPECT_EQ(parse_endpoint("vsock://host:1").value().cid, 2u);
  EXPECT_EQ(parse_endpoint("vsock://local:1").value().cid, 1u);
  EXPECT_EQ(parse_endpoint("vsock://3:4294967295").value().port, 4294967295u);
  for (const char* bad : {"", "tcp://", "tcp://host", "tcp://host:", "tcp://host:65536", "tcp://host:-1", "tcp://:80",
                          "tcp://host:8o", "tcp://::1:80", "tcp://[zz]:80", "udp://host:1", "vsock://x:1",
                          "vsock://3:4294967296", "vsock://3", "vsock://-1:2", "TCP://h:1", "tcp://a b:1"}) {
    EXPECT_EQ(parse_endpoint(bad).status().code(), StatusCode::kInvalidArgument) << bad;
  }
}

TEST(Vsock, LiveLoopbackOrSkip) {
  if (!vsock_available()) GTEST_SKIP() << "AF_VSOCK is not available in this kernel; live VSock test skipped";
  auto l = listen(parse_endpoint("vsock://any:0").value());
  if (!l.is_ok()) GTEST_SKIP() << "cannot listen on VSock here: " << l.status().to_string();
  auto local = parse_endpoint((*l)->local_endpoint());
  NET_ASSERT_OK(local);
  Endpoint target{Endpoint::Kind::kVsock, "", kVsockCidLocal, local->port};
  auto c = connect(target, Deadline::after(std::chrono::seconds(2)));
  if (!c.is_ok()) GTEST_SKIP() << "no VSock loopback (vsock_loopback module?): " << c.status().to_string();
  auto s = (*l)->accept(testing::soon());
  NET_ASSERT_OK(s);
  echo_once(**c, **s);
  echo_once(**s, **c);
}

TEST(Retry, DelaysGrowCapAndJitter) {
  RetryPolicy p;
  p.initial_delay = milliseconds(100);
  p.max_delay = milliseconds(1000);
  p.multiplier = 2.0;
  p.jitter = 0.5;
  EXPECT_EQ(p.delay_for_retry(0, 0.0), milliseconds(100));
  EXPECT_EQ(p.delay_for_retry(1, 0.0), milliseconds(200));
  EXPECT_EQ(p.delay_for_retry(3, 0.0), milliseconds(800));
  EXPECT_EQ(p.delay_for_retry(4, 0.0), milliseconds(1000));  // capped
  EXPECT_EQ(p.delay_for_retry(60, 0.0), milliseconds(1000));
  EXPECT_EQ(p.delay_for_retry(1, 1.0), milliseconds(100));  // full jitter halves it
  EXPECT_EQ(p.delay_for_retry(4, 0.5), milliseconds(750));
}

TEST(Retry, RetriesUnavailableThenSucceeds) {
  RetryPolicy p;
  p.max_attempts = 5;
  p.initial_delay = milliseconds(10);
  p.jitter = 0.0;
  std::vector<Duration> slept;
  RetryHooks hooks;
  hooks.sleep = [&](Duration d) { slept.push_back(d); };
  int calls = 0;
  auto r = with_retry<int>(
      p, Deadline::never(),
      [&]() -> Result<int> {
        if (++calls < 4) return unavailable("not yet");
        return 42;
      },
      hooks);
  NET_ASSERT_OK(r);
  EXPECT_EQ(*r, 42);
  EXPECT_EQ(calls, 4);
  ASSERT_EQ(slept.size(), 3u);
  EXPECT_EQ(slept[0], milliseconds(10));
  EXPECT_EQ(slept[1], milliseconds(20));
  EXPECT_EQ(slept[2], milliseconds(40));
}

TEST(Retry, StopsOnPermanentErrorsAndExhaustion) {
  RetryPolicy p;
  p.max_attempts = 3;
  RetryHooks hooks;
  int sleeps = 0;
  hooks.sleep = [&](Duration) { ++sleeps; };
  hooks.uniform = [] { return 0.25; };
  int calls = 0;
  Status st = retry_loop(
      p, Deadline::never(),
      [&] {
        ++calls;
        return policy_error("bad measurement");
      },
      hooks);
  EXPECT_EQ(st.code(), StatusCode::kPolicy);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(sleeps, 0);
  calls = 0;
  st = retry_loop(
      p, Deadline::never(),
      [&] {
        ++calls;
        return unavailable("refused");
      },
      hooks);
  NET_EXPECT_ERROR(st, StatusCode::kUnavailable, "after 3 attempts");
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(sleeps, 2);
  // A deadline shorter than the next delay stops early without sleeping.
  calls = 0;
  sleeps = 0;
  p.initial_delay = std::chrono::hours(1);
  p.max_delay = std::chrono::hours(2);
  st = retry_loop(
      p, Deadline::after(std::chrono::seconds(5)),
      [&] {
        ++calls;
        return timeout_error("slow");
      },
      hooks);
  NET_EXPECT_ERROR(st, StatusCode::kTimeout, "deadline");
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(sleeps, 0);
}

TEST(Retry, ConnectWithRetryReachesLateListener) {
  // The first attempts are refused; the hook starts the listener before the third attempt.
  std::string ep;
  {
    auto probe = listen(parse_endpoint("tcp://127.0.0.1:0").value());
    NET_ASSERT_OK(probe);
    ep = (*probe)->local_endpoint();
  }
  const Endpoint target = parse_endpoint(ep).value();
  std::unique_ptr<Listener> late;
  RetryPolicy p;
  p.max_attempts = 5;
  RetryHooks hooks;
  int retries = 0;
  hooks.sleep = [](Duration) {};
  hooks.on_retry = [&](int k, const Status& st, Duration) {
    EXPECT_EQ(st.code(), StatusCode::kUnavailable);
    ++retries;
    if (k == 1) late = std::move(listen(target).value());
  };
  auto c = connect_with_retry(target, p, testing::soon(), hooks);
  NET_ASSERT_OK(c);
  EXPECT_EQ(retries, 2);
}

}  // namespace
}  // namespace cml::net
