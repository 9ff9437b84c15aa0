#include "services/gateway/rate_limiter.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/config.h"
#include "common/status.h"

namespace redflag::gateway {

absl::StatusOr<RateLimit> RateLimit::Parse(const std::string& variable, const std::string& text) {
  std::vector<std::string> parts = absl::StrSplit(text, ':');
  RateLimit l{0, 0};
  if (parts.size() != 2 || !absl::SimpleAtod(parts[0], &l.per_second) ||
      !absl::SimpleAtod(parts[1], &l.burst) || !(l.per_second > 0) || !(l.burst >= 1)) {
    return absl::InvalidArgumentError(absl::StrCat(
        variable, " must be RATE:BURST with RATE > 0 and BURST >= 1, got \"", text, "\""));
  }
  return l;
}

absl::Status RateLimiter::Acquire(const std::string& key, absl::Time now) {
  std::lock_guard<std::mutex> lock(mu_);
  if (buckets_.size() >= max_keys_) SweepLocked(now);
  auto [it, inserted] = buckets_.try_emplace(key, Bucket{limit_.burst, now});
  Bucket& b = it->second;
  if (!inserted) {
    double elapsed = absl::ToDoubleSeconds(now - b.updated);
    b.tokens = std::min(limit_.burst, b.tokens + std::max(0.0, elapsed) * limit_.per_second);
    b.updated = now;
  }
  if (b.tokens >= 1) {
    b.tokens -= 1;
    return absl::OkStatus();
  }
  absl::Duration wait = absl::Seconds((1 - b.tokens) / limit_.per_second);
  return WithRetryDelay(absl::ResourceExhaustedError(absl::StrCat(
                            "rate limit for ", group_, " exceeded; retry in ",
                            absl::FormatDuration(absl::Ceil(wait, absl::Milliseconds(1))))),
                        wait);
}

void RateLimiter::SweepLocked(absl::Time now) {
  // Full buckets carry no information: dropping them forgets nothing.
  for (auto it = buckets_.begin(); it != buckets_.end();) {
    double tokens =
        it->second.tokens + absl::ToDoubleSeconds(now - it->second.updated) * limit_.per_second;
    if (tokens >= limit_.burst) {
      buckets_.erase(it++);
    } else {
      ++it;
    }
  }
  // Still full of active keys: fail open on new keys rather than grow without bound.
  if (buckets_.size() >= max_keys_) buckets_.clear();
}

absl::Status FailureLockout::Check(const std::string& key, absl::Time now) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(key);
  if (it == entries_.end() || it->second.locked_until <= now) return absl::OkStatus();
  absl::Duration left = it->second.locked_until - now;
  return WithRetryDelay(absl::ResourceExhaustedError(absl::StrCat(
                            "too many failed authentication attempts from this address; retry in ",
                            absl::ToInt64Seconds(left) + 1, " s")),
                        left);
}

bool FailureLockout::RecordFailure(const std::string& key, absl::Time now) {
  std::lock_guard<std::mutex> lock(mu_);
  if (entries_.size() >= max_keys_) {
    for (auto it = entries_.begin(); it != entries_.end();) {
      bool stale = it->second.locked_until <= now && now - it->second.window_start > window_;
      if (stale) {
        entries_.erase(it++);
      } else {
        ++it;
      }
    }
  }
  Entry& e = entries_[key];
  if (now - e.window_start > window_) {
    e.failures = 0;
    e.window_start = now;
  }
  if (++e.failures < threshold_) return false;
  e.failures = 0;
  e.window_start = now;
  e.locked_until = now + lock_for_;
  return true;
}

absl::StatusOr<std::unique_ptr<EdgeLimits>> EdgeLimits::FromEnv() {
  auto limit = [](const char* var, const char* fallback) {
    return RateLimit::Parse(var, Env::Optional(var, fallback));
  };
  REDFLAG_ASSIGN_OR_RETURN(RateLimit reg, limit("REDFLAG_RATE_LIMIT_REGISTRATION", "20:100"));
  REDFLAG_ASSIGN_OR_RETURN(RateLimit login, limit("REDFLAG_RATE_LIMIT_LOGIN", "2:20"));
  REDFLAG_ASSIGN_OR_RETURN(RateLimit check_in, limit("REDFLAG_RATE_LIMIT_CHECK_IN", "1:10"));
  REDFLAG_ASSIGN_OR_RETURN(RateLimit writes, limit("REDFLAG_RATE_LIMIT_OPERATOR_WRITES", "10:50"));
  REDFLAG_ASSIGN_OR_RETURN(int64_t threshold,
                           Env::Int("REDFLAG_BAD_TOKEN_THRESHOLD", 20, 1, 100000));
  REDFLAG_ASSIGN_OR_RETURN(int64_t window,
                           Env::Int("REDFLAG_BAD_TOKEN_WINDOW_SECONDS", 60, 1, 86400));
  REDFLAG_ASSIGN_OR_RETURN(int64_t lock_for,
                           Env::Int("REDFLAG_BAD_TOKEN_LOCKOUT_SECONDS", 300, 1, 86400));
  // Aggregate of non-movable members: make_unique cannot brace-initialise it in C++17.
  return std::unique_ptr<EdgeLimits>(new EdgeLimits{
      // NOLINT(modernize-make-unique)
      RateLimiter("registration", reg), RateLimiter("login", login),
      RateLimiter("check-in", check_in), RateLimiter("operator writes", writes),
      FailureLockout(static_cast<int>(threshold), absl::Seconds(window), absl::Seconds(lock_for))});
}

}  // namespace redflag::gateway
