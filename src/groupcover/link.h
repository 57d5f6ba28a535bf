// MessageLink: how the TEE side and the worker exchange protocol messages (protocol.h): a header of at
// most kMaxHeaderBytes and an optional float32 payload. Implementations: an in-memory pair (tests,
// single-process benchmarks) and the encrypted network link (net_link.h).
//
// Thread safety: one sender and one receiver at a time (they may be different threads); abort() from
// any thread unblocks both and makes every later call fail with UNAVAILABLE.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <utility>
#include <vector>

#include "base/bytes.h"
#include "base/clock.h"
#include "base/status.h"

namespace cml::groupcover {

struct LinkMessage {
  Bytes header;
  std::vector<float> payload;
};

class MessageLink {
 public:
  virtual ~MessageLink() = default;
  virtual Status send(ByteSpan header, std::span<const float> payload, Deadline deadline) = 0;
  // Receives the next message. RESOURCE_EXHAUSTED if its payload exceeds max_payload_floats (checked
  // before allocating); TIMEOUT at the deadline; UNAVAILABLE when the peer is gone.
  virtual Status recv(LinkMessage& out, uint64_t max_payload_floats, Deadline deadline) = 0;
  virtual void abort() = 0;
};

// Two connected in-memory ends. Destroying or aborting one end makes the other fail with UNAVAILABLE.
std::pair<std::unique_ptr<MessageLink>, std::unique_ptr<MessageLink>> make_memory_link_pair();

// Opens a fresh link to the worker (used by the TEE backend to connect and to reconnect).
using LinkFactory = std::function<Result<std::unique_ptr<MessageLink>>(Deadline)>;

}  // namespace cml::groupcover
