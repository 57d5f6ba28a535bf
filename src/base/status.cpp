#include "base/status.h"

#include <cstdio>

namespace cml {

std::string_view status_code_name(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return "OK";
    case StatusCode::kInvalidArgument: return "INVALID_ARGUMENT";
    case StatusCode::kProtocol: return "PROTOCOL";
    case StatusCode::kCrypto: return "CRYPTO";
    case StatusCode::kAttestation: return "ATTESTATION";
    case StatusCode::kPolicy: return "POLICY";
    case StatusCode::kTimeout: return "TIMEOUT";
    case StatusCode::kUnavailable: return "UNAVAILABLE";
    case StatusCode::kAborted: return "ABORTED";
    case StatusCode::kNotFound: return "NOT_FOUND";
    case StatusCode::kResourceExhausted: return "RESOURCE_EXHAUSTED";
    case StatusCode::kInternal: return "INTERNAL";
    case StatusCode::kUnimplemented: return "UNIMPLEMENTED";
  }
  return "UNKNOWN";
}

Status::Status(StatusCode code, std::string message) {
  if (code != StatusCode::kOk) rep_ = std::make_shared<const Rep>(Rep{code, std::move(message)});
}

const std::string& Status::message() const {
  static const std::string kEmpty;
  return rep_ ? rep_->message : kEmpty;
}

std::string Status::to_string() const {
  if (is_ok()) return "OK";
  std::string s(status_code_name(rep_->code));
  s += ": ";
  s += rep_->message;
  return s;
}

Status Status::with_context(std::string_view context) const {
  if (is_ok()) return *this;
  std::string m(context);
  m += ": ";
  m += rep_->message;
  return Status(rep_->code, std::move(m));
}

Status invalid_argument(std::string m) { return Status(StatusCode::kInvalidArgument, std::move(m)); }
Status protocol_error(std::string m) { return Status(StatusCode::kProtocol, std::move(m)); }
Status crypto_error(std::string m) { return Status(StatusCode::kCrypto, std::move(m)); }
Status attestation_error(std::string m) { return Status(StatusCode::kAttestation, std::move(m)); }
Status policy_error(std::string m) { return Status(StatusCode::kPolicy, std::move(m)); }
Status timeout_error(std::string m) { return Status(StatusCode::kTimeout, std::move(m)); }
Status unavailable(std::string m) { return Status(StatusCode::kUnavailable, std::move(m)); }
Status aborted(std::string m) { return Status(StatusCode::kAborted, std::move(m)); }
Status not_found(std::string m) { return Status(StatusCode::kNotFound, std::move(m)); }
Status resource_exhausted(std::string m) { return Status(StatusCode::kResourceExhausted, std::move(m)); }
Status internal_error(std::string m) { return Status(StatusCode::kInternal, std::move(m)); }
Status unimplemented(std::string m) { return Status(StatusCode::kUnimplemented, std::move(m)); }

void check_failed(const char* expr, const char* file, int line, std::string_view msg) {
  std::fprintf(stderr, "CML_CHECK failed at %s:%d: %s %.*s\n", file, line, expr, static_cast<int>(msg.size()),
               msg.data());
  std::abort();
}

}  // namespace cml
