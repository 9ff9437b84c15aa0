// Retry delays for the agent (reconnects, downloads): full jitter, so a fleet that failed
// together does not retry together.
#pragma once

#include "absl/time/time.h"

namespace redflag::agent {

// Uniform in [0, min(cap, base * 2^attempt)]. Thread-safe (libsodium's generator).
absl::Duration BackoffDelay(int attempt, absl::Duration base, absl::Duration cap);

}  // namespace redflag::agent
