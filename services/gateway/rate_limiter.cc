#include "services/gateway/rate_limiter.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "common/config.h"
#include "common/log.h"
#include "common/security_settings.h"
#include "common/status.h"

namespace redflag::gateway {

bool RateLimiter::SetLimit(RateLimit limit) {
  std::lock_guard<std::mutex> lock(mu_);
  if (limit == limit_) return false;
  limit_ = limit;
  if (per_second_gauge_ != nullptr) {
    per_second_gauge_->Set(limit.per_second);
    burst_gauge_->Set(limit.burst);
  }
  return true;
}

void RateLimiter::ExportTo(prometheus::Gauge& per_second, prometheus::Gauge& burst) {
  std::lock_guard<std::mutex> lock(mu_);
  per_second_gauge_ = &per_second;
  burst_gauge_ = &burst;
  per_second.Set(limit_.per_second);
  burst.Set(limit_.burst);
}

RateLimit RateLimiter::limit() const {
  std::lock_guard<std::mutex> lock(mu_);
  return limit_;
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

absl::StatusOr<std::unique_ptr<EdgeLimits>> EdgeLimits::Create(
    const v1::SecuritySettings& initial) {
  REDFLAG_ASSIGN_OR_RETURN(int64_t threshold,
                           Env::Int("REDFLAG_BAD_TOKEN_THRESHOLD", 20, 1, 100000));
  REDFLAG_ASSIGN_OR_RETURN(int64_t window,
                           Env::Int("REDFLAG_BAD_TOKEN_WINDOW_SECONDS", 60, 1, 86400));
  REDFLAG_ASSIGN_OR_RETURN(int64_t lock_for,
                           Env::Int("REDFLAG_BAD_TOKEN_LOCKOUT_SECONDS", 300, 1, 86400));
  // Aggregate of non-movable members: make_unique cannot brace-initialise it in C++17.
  // NOLINTNEXTLINE(modernize-make-unique)
  return std::unique_ptr<EdgeLimits>(new EdgeLimits{
      RateLimiter("registration", RateLimit::From(initial.registration_rate_limit())),
      RateLimiter("login", RateLimit::From(initial.login_rate_limit())),
      RateLimiter("check-in", RateLimit::From(initial.check_in_rate_limit())),
      RateLimiter("operator writes", RateLimit::From(initial.operator_write_rate_limit())),
      FailureLockout(static_cast<int>(threshold), absl::Seconds(window), absl::Seconds(lock_for))});
}

std::array<EdgeLimits::Group, 4> EdgeLimits::Groups() {
  return {
      {{"registration", &registration, &v1::SecuritySettings::registration_rate_limit},
       {"login", &login, &v1::SecuritySettings::login_rate_limit},
       {"check_in", &check_in, &v1::SecuritySettings::check_in_rate_limit},
       {"operator_writes", &operator_writes, &v1::SecuritySettings::operator_write_rate_limit}}};
}

bool EdgeLimits::Apply(const v1::SecuritySettings& settings) {
  bool changed = false;
  for (const Group& g : Groups()) {
    const v1::RateLimitSetting& setting = (settings.*g.setting)();
    if (g.limiter->SetLimit(RateLimit::From(setting))) {
      changed = true;
      LogInfo(absl::StrCat("rate limit for ", g.limiter->group(), " is now ",
                           RateLimitText(setting), " (per second:burst)"));
    }
  }
  return changed;
}

void EdgeLimits::ExportTo(prometheus::Registry& registry) {
  auto& per_second = prometheus::BuildGauge()
                         .Name("redflag_gateway_rate_limit_per_second")
                         .Help(
                             "Tokens per second each key of a rate-limited group gets back "
                             "(the security setting in force on this gateway)")
                         .Register(registry);
  auto& burst = prometheus::BuildGauge()
                    .Name("redflag_gateway_rate_limit_burst")
                    .Help(
                        "Tokens each key of a rate-limited group can hold (the security "
                        "setting in force on this gateway)")
                    .Register(registry);
  for (const Group& g : Groups()) {
    g.limiter->ExportTo(per_second.Add({{"group", g.label}}), burst.Add({{"group", g.label}}));
  }
}

}  // namespace redflag::gateway
