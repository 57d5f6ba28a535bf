// Sending and receiving pipeline steps on a Link (protocol.h describes the layout).
// Thread safety: one sender and one receiver per link, like Link.
#pragma once

#include <string>

#include "pipeline/link.h"
#include "pipeline/protocol.h"

namespace cml::pipeline {

struct StepMessage {
  enum class Kind { kStep, kErr, kClosed };
  Kind kind = Kind::kClosed;
  StepHeader header;
  net::Tensor payload;     // "tokens" U32 [T], "hidden" F32 [T, H], or "sampled" U32 [n]
  uint64_t err_step = 0;   // kErr: the failed step (0 if unknown)
  std::string err_reason;  // kErr
};

// Step tensor, then payload tensor (a step has exactly one payload, so nothing closes it).
Status send_step(Link& link, const StepHeader& h, const net::TensorView& payload, Deadline deadline);
// ERR:<step>:<reason>.
Status send_step_error(Link& link, uint64_t step, std::string_view reason, Deadline deadline);
// Receives one step. INVALID_ARGUMENT for anything out of order or malformed (the caller drops the
// link); other codes come from the link itself (UNAVAILABLE, TIMEOUT, PROTOCOL for a truncated stream). The payload's
// dtype and shape are checked against the header: tokens/sampled U32 with T (or n) elements, hidden F32 [T,
// hidden_size].
Status recv_step(Link& link, StepMessage& out, Deadline deadline, uint32_t max_seq_len, uint32_t hidden_size);

}  // namespace cml::pipeline
