#include "agent/backoff.h"

#include <sodium.h>

#include <cstdint>

namespace redflag::agent {

absl::Duration BackoffDelay(int attempt, absl::Duration base, absl::Duration cap) {
  absl::Duration ceiling = base;
  for (int i = 0; i < attempt && ceiling < cap; ++i) ceiling *= 2;
  if (ceiling > cap) ceiling = cap;
  int64_t ms = absl::ToInt64Milliseconds(ceiling);
  if (ms <= 0) return absl::ZeroDuration();
  return absl::Milliseconds(randombytes_uniform(static_cast<uint32_t>(ms) + 1));
}

}  // namespace redflag::agent
