// A responder SecureChannel reading arbitrary bytes as its peer's handshake and records: it must fail
// with a Status (never crash, hang or over-allocate). The input is fed through an in-memory pipe.
#include "attest/mock.h"
#include "net/secure_channel.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cml::net;
  static cml::attest::MockProvider provider(cml::attest::mock_measurements("server"));
  auto pipe_a = make_pipe(size + 1);
  auto& a = pipe_a.first;
  auto& b = pipe_a.second;
  (void)a->write_all(cml::ByteSpan(data, size), cml::Deadline::never());
  a.reset();  // end of stream after the input
  ChannelConfig cfg;
  cfg.provider = &provider;
  cfg.verifiers = cml::attest::mock_verifier_set();
  cfg.peer_policy.require_measurements = false;
  cfg.mode = HandshakeMode::kOneWay;
  cfg.handshake_timeout = std::chrono::seconds(5);
  auto ch = SecureChannel::accept(std::move(b), cfg);
  if (ch.is_ok()) __builtin_trap();  // no input can complete a handshake without the Finished MAC
  return 0;
}
