// Internal to the crypto module: turning a failed OpenSSL call into a Status.
#pragma once

#include <openssl/err.h>

#include "base/status.h"

namespace cml::crypto::internal {

// A failed OpenSSL call leaves entries on the calling thread's error queue; drop them so they cannot
// surface in an unrelated later call, and return `s`.
inline Status openssl_failure(Status s) {
  ERR_clear_error();
  return s;
}

}  // namespace cml::crypto::internal
