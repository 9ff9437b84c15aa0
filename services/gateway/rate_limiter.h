// Edge protection at the gateway, per replica and in memory (bounded): token-bucket rate
// limits per key, and a lockout for keys (source addresses) that keep failing
// authentication. Refusals are RESOURCE_EXHAUSTED with a RetryInfo delay. Thread-safe.
#pragma once

#include <mutex>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace redflag::gateway {

struct RateLimit {
  double per_second;
  double burst;
  // "RATE:BURST", e.g. "5:20"; errors name the variable.
  static absl::StatusOr<RateLimit> Parse(const std::string& variable, const std::string& text);
};

class RateLimiter {
 public:
  RateLimiter(std::string group, RateLimit limit, size_t max_keys = 100000)
      : group_(std::move(group)), limit_(limit), max_keys_(max_keys) {}
  // Takes one token for `key`, or RESOURCE_EXHAUSTED with the wait until the next one.
  absl::Status Acquire(const std::string& key, absl::Time now = absl::Now());

 private:
  struct Bucket {
    double tokens;
    absl::Time updated;
  };
  void SweepLocked(absl::Time now);
  const std::string group_;
  const RateLimit limit_;
  const size_t max_keys_;
  std::mutex mu_;
  absl::flat_hash_map<std::string, Bucket> buckets_;
};

class FailureLockout {
 public:
  FailureLockout(int threshold, absl::Duration window, absl::Duration lock_for,
                 size_t max_keys = 100000)
      : threshold_(threshold), window_(window), lock_for_(lock_for), max_keys_(max_keys) {}
  // RESOURCE_EXHAUSTED while `key` is locked out.
  absl::Status Check(const std::string& key, absl::Time now = absl::Now());
  // Counts a failure; true when this failure locked the key.
  bool RecordFailure(const std::string& key, absl::Time now = absl::Now());

 private:
  struct Entry {
    int failures = 0;
    absl::Time window_start;
    absl::Time locked_until = absl::InfinitePast();
  };
  const int threshold_;
  const absl::Duration window_, lock_for_;
  const size_t max_keys_;
  std::mutex mu_;
  absl::flat_hash_map<std::string, Entry> entries_;
};

// The gateway's limits, from REDFLAG_RATE_LIMIT_{REGISTRATION,LOGIN,CHECK_IN,OPERATOR_WRITES}
// ("RATE:BURST") and REDFLAG_BAD_TOKEN_{THRESHOLD,WINDOW_SECONDS,LOCKOUT_SECONDS}.
struct EdgeLimits {
  RateLimiter registration;
  RateLimiter login;
  RateLimiter check_in;
  RateLimiter operator_writes;
  FailureLockout bad_tokens;
  static absl::StatusOr<std::unique_ptr<EdgeLimits>> FromEnv();
};

}  // namespace redflag::gateway
