#include "pipeline/data_io.h"

#include <cstring>

namespace cml::pipeline {

namespace {
constexpr std::string_view kErrPrefix = "ERR:";
}

Status send_step(Link& link, const StepHeader& h, const net::TensorView& payload, Deadline deadline) {
  std::vector<int64_t> hv = encode_step_header(h);
  uint32_t n = static_cast<uint32_t>(hv.size());
  net::TensorView hdr{"step", tensor::DType::kI64, std::span<const uint32_t>(&n, 1),
                      ByteSpan(reinterpret_cast<const uint8_t*>(hv.data()), hv.size() * sizeof(int64_t))};
  // Header and payload leave in one write where they fit (one wake-up of the next stage).
  link.cork();
  Status st = link.send_tensor(hdr, deadline);
  if (st.is_ok()) st = link.send_tensor(payload, deadline);
  Status flushed = link.uncork(deadline);
  return st.is_ok() ? flushed : st;
}

Status send_step_error(Link& link, uint64_t step, std::string_view reason, Deadline deadline) {
  std::string text = std::string(kErrPrefix) + make_step_error(step, reason);
  return link.send_data(as_bytes(text), deadline);
}

Status recv_step(Link& link, StepMessage& out, Deadline deadline, uint32_t max_seq_len, uint32_t hidden_size) {
  net::Message m;
  CML_RETURN_IF_ERROR(link.recv(m, deadline));
  if (m.kind == net::Message::Kind::kShutdown) {
    out.kind = StepMessage::Kind::kClosed;
    return ok_status();
  }
  if (m.kind == net::Message::Kind::kData) {
    std::string_view d = as_string_view(m.data);
    if (d == "ERR" || d.starts_with(kErrPrefix)) {
      out.kind = StepMessage::Kind::kErr;
      std::string_view reason = d.size() > kErrPrefix.size() ? d.substr(kErrPrefix.size()) : std::string_view();
      out.err_step = step_of_error(reason);
      out.err_reason = std::string(reason.substr(0, 1024));
      return ok_status();
    }
    return invalid_argument("data link: expected a step tensor or ERR, got a data message");
  }
  if (m.tensor.name != "step" || m.tensor.dtype != tensor::DType::kI64 || m.tensor.shape.size() != 1) {
    return invalid_argument("data link: expected the I64 \"step\" tensor first");
  }
  std::vector<int64_t> hv(m.tensor.shape[0]);
  if (m.tensor.data.size() != hv.size() * sizeof(int64_t)) return invalid_argument("data link: step tensor size");
  std::memcpy(hv.data(), m.tensor.data.data(), m.tensor.data.size());
  auto h = decode_step_header(hv, max_seq_len);
  if (!h) return invalid_argument("data link: " + h.status().message());
  out.header = std::move(*h);
  CML_RETURN_IF_ERROR(link.recv(m, deadline));
  if (m.kind != net::Message::Kind::kTensor) return invalid_argument("data link: expected the payload tensor");
  const uint64_t T = out.header.total_tokens(), n = out.header.seqs.size();
  const auto& t = m.tensor;
  bool ok = false;
  if (t.name == "tokens")
    ok = t.dtype == tensor::DType::kU32 && t.shape.size() == 1 && t.shape[0] == T;
  else if (t.name == "sampled")
    ok = t.dtype == tensor::DType::kU32 && t.shape.size() == 1 && t.shape[0] == n;
  else if (t.name == "hidden")
    ok = t.dtype == tensor::DType::kF32 && t.shape.size() == 2 && t.shape[0] == T && t.shape[1] == hidden_size;
  if (!ok)
    return invalid_argument("data link: payload tensor \"" + t.name.substr(0, 64) + "\" does not match the step");
  out.payload = std::move(m.tensor);
  out.kind = StepMessage::Kind::kStep;
  return ok_status();
}

}  // namespace cml::pipeline
