// Control and data protocol between the orchestrator and the stages (docs/protocol.md §10).
//
// Control: versioned JSON objects {"v":2,"type":"...", ...} carried in Data records on the control
// channel. decode_control() checks the size before parsing, the version, the type and every field, and
// refuses unknown fields; it never throws and never allocates more than the bounded input.
//
// Data: one pipeline step = a "step" tensor (I64: step id, sequence count, then per sequence its id, its
// first position and its token count), one payload tensor ("tokens" U32 [T], "hidden" F32 [T, H], or
// "sampled" U32 [n] from the last stage); nothing follows it. A failed step is replaced by
// ERR:<step id>:<reason>. Version 2 of the control protocol goes with this two-record step (version 1
// closed each step with an END sentinel), so stages of the two versions refuse each other at init.
//
// Thread safety: pure functions on values.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "base/bytes.h"
#include "base/status.h"

namespace cml::pipeline {

constexpr uint32_t kControlVersion = 2;
constexpr size_t kDefaultMaxControlBytes = 64 * 1024;
// First message of a return connection (orchestrator → the last stage's control endpoint).
constexpr std::string_view kReturnHello = "RETURN";

struct Sampling {
  float temperature = 0;  // 0 = greedy
  uint32_t top_k = 0;     // 0 = all
  float top_p = 1;        // 1 = no limit
  uint64_t seed = 0;
  bool operator==(const Sampling&) const = default;
};

namespace ctl {
// Orchestrator → stage.
struct Init {
  std::string manifest_sha256;  // the stage refuses a manifest other than its own
  uint32_t stage = 0;
  uint64_t session = 0;  // orchestrator session id, echoed in Ready
};
struct Link {
  std::string downstream;                   // endpoint the stage connects its data-out link to
  bool downstream_is_orchestrator = false;  // verify it as the orchestrator, else as stage+1
};
struct SeqStart {
  uint64_t seq = 0;
  Sampling sampling;
};
struct Start {
  std::vector<SeqStart> seqs;  // allocate KV caches (and samplers, on the last stage)
};
struct Abort {
  std::vector<uint64_t> seqs;  // drop their state; unknown ids are ignored
  std::string reason;
};
struct Ping {
  uint64_t nonce = 0;
};
struct Shutdown {};
// Stage → orchestrator.
struct Ready {
  uint32_t stage = 0;
  uint64_t session = 0;
  uint32_t tensors_verified = 0;
};
struct Linked {
  uint32_t stage = 0;
};
struct Started {  // reply to Start and Abort: the stage's sequence state is updated
  uint32_t stage = 0;
};
struct Pong {
  uint64_t nonce = 0;
  uint32_t stage = 0;
  uint64_t steps = 0;       // forward passes executed
  uint64_t compute_us = 0;  // time spent in the executor
  uint32_t live_sequences = 0;
  uint64_t in_frames = 0, in_bytes = 0;    // data-in link counters
  uint64_t out_frames = 0, out_bytes = 0;  // data-out link counters
};
struct Error {
  uint32_t stage = 0;
  uint64_t step = 0;  // 0 when not tied to a step
  std::string code;   // status code name
  std::string message;
};
struct Bye {
  uint32_t stage = 0;
};
}  // namespace ctl

using ControlMessage = std::variant<ctl::Init, ctl::Link, ctl::Start, ctl::Abort, ctl::Ping, ctl::Shutdown, ctl::Ready,
                                    ctl::Linked, ctl::Started, ctl::Pong, ctl::Error, ctl::Bye>;
std::string_view control_type(const ControlMessage& m);

Bytes encode_control(const ControlMessage& m);
// RESOURCE_EXHAUSTED above max_bytes (checked first); PROTOCOL for a wrong version; INVALID_ARGUMENT for
// anything malformed, naming the field.
Result<ControlMessage> decode_control(ByteSpan bytes, size_t max_bytes = kDefaultMaxControlBytes);

// Bounds on one step.
constexpr uint32_t kMaxStepSequences = 4096;

struct StepSeq {
  uint64_t seq = 0;
  uint32_t pos = 0;  // position of the first token of this step in the sequence
  uint32_t len = 0;  // tokens of this sequence in the step (prompt length for prefill, 1 for decode)
  bool operator==(const StepSeq&) const = default;
};
struct StepHeader {
  uint64_t step = 0;
  std::vector<StepSeq> seqs;
  uint64_t total_tokens() const;
  bool operator==(const StepHeader&) const = default;
};
// As I64 elements (the "step" tensor). Values stay below 2^63.
std::vector<int64_t> encode_step_header(const StepHeader& h);
// INVALID_ARGUMENT for a malformed header (count, negative or oversized values, too many sequences,
// duplicate sequence ids, len 0, pos + len above max_seq_len).
Result<StepHeader> decode_step_header(std::span<const int64_t> v, uint32_t max_seq_len);

// "ERR:<step>:<reason>" payload text and its parse (step 0 if absent or malformed).
std::string make_step_error(uint64_t step, std::string_view reason);
uint64_t step_of_error(std::string_view reason);

}  // namespace cml::pipeline
