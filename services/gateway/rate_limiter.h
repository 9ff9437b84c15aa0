// Edge protection at the gateway, per replica and in memory (bounded): token-bucket rate
// limits per key (their rates a security setting, changed at run time), and a lockout for
// keys (source addresses) that keep failing authentication. Refusals are RESOURCE_EXHAUSTED
// with a RetryInfo delay. Thread-safe.
#pragma once

#include <array>
#include <mutex>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "prometheus/gauge.h"
#include "prometheus/registry.h"
#include "redflag/v1/agents.pb.h"

namespace redflag::gateway {

struct RateLimit {
  double per_second;
  double burst;
  static RateLimit From(const v1::RateLimitSetting& s) { return {s.per_second(), s.burst()}; }
  bool operator==(const RateLimit& o) const {
    return per_second == o.per_second && burst == o.burst;
  }
};

class RateLimiter {
 public:
  RateLimiter(std::string group, RateLimit limit, size_t max_keys = 100000)
      : group_(std::move(group)), max_keys_(max_keys), limit_(limit) {}
  // Takes one token for `key`, or RESOURCE_EXHAUSTED with the wait until the next one.
  absl::Status Acquire(const std::string& key, absl::Time now = absl::Now());
  // Applies a new rate and burst from now on: each bucket keeps the tokens it has, capped at
  // the new burst when it next refills. Returns whether it differed from the one in force.
  bool SetLimit(RateLimit limit);
  RateLimit limit() const;
  // Publishes the limit in force on these gauges (now and at every change); both must
  // outlive this limiter. Call once, before other threads use it.
  void ExportTo(prometheus::Gauge& per_second, prometheus::Gauge& burst);
  const std::string& group() const { return group_; }

 private:
  struct Bucket {
    double tokens;
    absl::Time updated;
  };
  void SweepLocked(absl::Time now);
  const std::string group_;
  const size_t max_keys_;
  mutable std::mutex mu_;
  RateLimit limit_;  // guarded by mu_
  prometheus::Gauge* per_second_gauge_ = nullptr;
  prometheus::Gauge* burst_gauge_ = nullptr;
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

// The gateway's limits: the rate limits from the security settings (`initial` until the
// first fetch, then whatever Apply() is given) and the bad-token lockout from
// REDFLAG_BAD_TOKEN_{THRESHOLD,WINDOW_SECONDS,LOCKOUT_SECONDS}.
struct EdgeLimits {
  RateLimiter registration;
  RateLimiter login;
  RateLimiter check_in;
  RateLimiter operator_writes;
  FailureLockout bad_tokens;
  static absl::StatusOr<std::unique_ptr<EdgeLimits>> Create(const v1::SecuritySettings& initial);
  // Sets every rate limit to the settings' values; logs each one that changed and returns
  // whether any did.
  bool Apply(const v1::SecuritySettings& settings);
  // Publishes the limits in force as redflag_gateway_rate_limit_per_second{group} and
  // redflag_gateway_rate_limit_burst{group}, now and at every change. Call once, at start.
  void ExportTo(prometheus::Registry& registry);

 private:
  // Each rate limiter with its metric label and the setting it follows.
  struct Group {
    const char* label;
    RateLimiter* limiter;
    const v1::RateLimitSetting& (v1::SecuritySettings::*setting)() const;
  };
  std::array<Group, 4> Groups();
};

}  // namespace redflag::gateway
