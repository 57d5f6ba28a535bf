// Status and Result<T>: the error currency of confidential-ml.
//
// Every fallible function returns Status or Result<T>. Nothing that arrives from outside (a frame, a
// document, a file, a flag) may throw past a module boundary; it becomes a Status with a code the caller
// can branch on and a message a user can act on. Broken invariants are programming errors: CML_CHECK.
//
// Thread safety: Status and Result are values; distinct objects may be used from distinct threads.
#pragma once

#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace cml {

enum class StatusCode : int {
  kOk = 0,
  kInvalidArgument,  // malformed input from outside: a bad frame, file, flag, document
  kProtocol,         // peer violated the wire protocol (sequence, message type, handshake)
  kCrypto,           // authentication or cryptographic failure (tag, signature, key)
  kAttestation,      // evidence did not verify (chain, signature, format, validity)
  kPolicy,           // evidence verified but was refused by policy (measurement, debug, TCB)
  kTimeout,          // a deadline passed
  kUnavailable,      // peer or resource unreachable, connection closed; retry may help
  kAborted,          // operation cancelled or aborted by the other side
  kNotFound,         // a named thing does not exist (file, tensor, key)
  kResourceExhausted,  // a bound was hit (size limit, nonce limit, queue full)
  kInternal,         // a bug or an unexpected library failure
  kUnimplemented,    // a feature not available in this build or on this platform
};

std::string_view status_code_name(StatusCode code);

// A compact status: success costs one null pointer; errors carry a code and a message.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message);

  static Status ok() { return Status(); }

  bool is_ok() const { return rep_ == nullptr; }
  explicit operator bool() const { return is_ok(); }
  StatusCode code() const { return rep_ ? rep_->code : StatusCode::kOk; }
  const std::string& message() const;
  // "CODE: message", or "OK".
  std::string to_string() const;

  // Returns a copy whose message is prefixed with `context: `.
  Status with_context(std::string_view context) const;

  void ignore_error() const {}

 private:
  struct Rep {
    StatusCode code;
    std::string message;
  };
  std::shared_ptr<const Rep> rep_;
};

inline Status ok_status() { return Status(); }
Status invalid_argument(std::string msg);
Status protocol_error(std::string msg);
Status crypto_error(std::string msg);
Status attestation_error(std::string msg);
Status policy_error(std::string msg);
Status timeout_error(std::string msg);
Status unavailable(std::string msg);
Status aborted(std::string msg);
Status not_found(std::string msg);
Status resource_exhausted(std::string msg);
Status internal_error(std::string msg);
Status unimplemented(std::string msg);

[[noreturn]] void check_failed(const char* expr, const char* file, int line, std::string_view msg);

// Result<T>: a T or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  Result(Status status) : v_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    if (std::get<Status>(v_).is_ok()) check_failed("!status.is_ok()", __FILE__, __LINE__, "Result from OK status");
  }

  bool is_ok() const { return v_.index() == 0; }
  explicit operator bool() const { return is_ok(); }

  const Status& status() const {
    static const Status kOk;
    return is_ok() ? kOk : std::get<Status>(v_);
  }

  T& value() & {
    if (!is_ok()) check_failed("is_ok()", __FILE__, __LINE__, std::get<Status>(v_).to_string());
    return std::get<T>(v_);
  }
  const T& value() const& {
    if (!is_ok()) check_failed("is_ok()", __FILE__, __LINE__, std::get<Status>(v_).to_string());
    return std::get<T>(v_);
  }
  T&& value() && {
    if (!is_ok()) check_failed("is_ok()", __FILE__, __LINE__, std::get<Status>(v_).to_string());
    return std::get<T>(std::move(v_));
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  T value_or(T fallback) const& { return is_ok() ? std::get<T>(v_) : std::move(fallback); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace cml

#define CML_CONCAT_INNER_(a, b) a##b
#define CML_CONCAT_(a, b) CML_CONCAT_INNER_(a, b)

// Returns the status from the enclosing function if `expr` (a Status) is not OK.
#define CML_RETURN_IF_ERROR(expr)                  \
  do {                                             \
    ::cml::Status cml_status_ = (expr);            \
    if (!cml_status_.is_ok()) return cml_status_;  \
  } while (0)

// `lhs = value of expr` (a Result<T>), or return its status.
#define CML_ASSIGN_OR_RETURN(lhs, expr) CML_ASSIGN_OR_RETURN_IMPL_(CML_CONCAT_(cml_result_, __LINE__), lhs, expr)
#define CML_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                               \
  if (!tmp.is_ok()) return tmp.status();           \
  lhs = std::move(tmp).value()

// Invariant checks: abort loudly with file and line. Never for input from outside.
#define CML_CHECK(cond)                                                       \
  do {                                                                        \
    if (!(cond)) ::cml::check_failed(#cond, __FILE__, __LINE__, {});          \
  } while (0)
#define CML_CHECK_MSG(cond, msg)                                              \
  do {                                                                        \
    if (!(cond)) ::cml::check_failed(#cond, __FILE__, __LINE__, (msg));       \
  } while (0)
