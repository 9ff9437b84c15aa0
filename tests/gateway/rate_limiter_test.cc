#include "services/gateway/rate_limiter.h"

#include <catch2/catch.hpp>

#include "common/security_settings.h"
#include "common/status.h"

using namespace redflag;
using namespace redflag::gateway;

namespace {
const absl::Time kT0 = absl::FromUnixSeconds(1'800'000'000);
}

TEST_CASE("a bucket allows its burst, then refuses with the wait until the next token",
          "[ratelimit]") {
  RateLimiter l("login", {2, 3});
  for (int i = 0; i < 3; ++i) CHECK(l.Acquire("10.0.0.1", kT0).ok());
  absl::Status refused = l.Acquire("10.0.0.1", kT0);
  CHECK(refused.code() == absl::StatusCode::kResourceExhausted);
  std::optional<absl::Duration> delay = RetryDelayOf(refused);
  REQUIRE(delay.has_value());
  CHECK(*delay == absl::Milliseconds(500));
  // Other keys have their own buckets; tokens come back at the configured rate.
  CHECK(l.Acquire("10.0.0.2", kT0).ok());
  CHECK(l.Acquire("10.0.0.1", kT0 + absl::Milliseconds(500)).ok());
  CHECK_FALSE(l.Acquire("10.0.0.1", kT0 + absl::Milliseconds(500)).ok());
}

TEST_CASE("memory stays bounded by dropping idle buckets", "[ratelimit]") {
  RateLimiter l("x", {1, 1}, 4);
  for (int i = 0; i < 4; ++i) CHECK(l.Acquire("k" + std::to_string(i), kT0).ok());
  // All four are refilled a minute later and get swept; the newcomer is admitted.
  CHECK(l.Acquire("new", kT0 + absl::Minutes(1)).ok());
}

TEST_CASE("rate limits are parsed strictly, with their ranges in the message", "[ratelimit]") {
  absl::StatusOr<v1::RateLimitSetting> ok = ParseRateLimit("V", "0.5:20");
  REQUIRE(ok.ok());
  CHECK(ok->per_second() == 0.5);
  CHECK(ok->burst() == 20);
  CHECK(RateLimitText(*ok) == "0.5:20");
  for (const char* bad : {"5", "a:b", "5:20:1", ""}) {
    INFO(bad);
    CHECK_THAT(std::string(ParseRateLimit("V", bad).status().message()),
               Catch::Contains("V must be RATE:BURST"));
  }
  for (const char* bad : {"0:5", "5:0", "-1:3", "0.001:3", "2000000:5", "5:2000000", "nan:5"}) {
    INFO(bad);
    CHECK_THAT(
        std::string(ParseRateLimit("V", bad).status().message()),
        Catch::Contains("V must have a rate of 0.01..1e+06 per second and a burst of 1..1e+06"));
  }
}

TEST_CASE("a new limit applies at once and buckets keep at most the new burst", "[ratelimit]") {
  RateLimiter l("login", {1, 5});
  for (int i = 0; i < 5; ++i) CHECK(l.Acquire("10.0.0.1", kT0).ok());
  CHECK_FALSE(l.Acquire("10.0.0.1", kT0).ok());
  CHECK(l.Acquire("10.0.0.2", kT0).ok());  // four left in its bucket
  CHECK_FALSE(l.SetLimit({1, 5}));         // the same: nothing to apply
  CHECK(l.SetLimit({100, 2}));
  // Refilled at the new rate: 10 ms gives the first key one token.
  CHECK(l.Acquire("10.0.0.1", kT0 + absl::Milliseconds(10)).ok());
  // The second key's four tokens are capped at the new burst of two.
  CHECK(l.Acquire("10.0.0.2", kT0 + absl::Milliseconds(10)).ok());
  CHECK(l.Acquire("10.0.0.2", kT0 + absl::Milliseconds(10)).ok());
  CHECK_FALSE(l.Acquire("10.0.0.2", kT0 + absl::Milliseconds(10)).ok());
}

TEST_CASE("a source is locked out after repeated failures and recovers after the period",
          "[lockout]") {
  FailureLockout lock(3, absl::Minutes(1), absl::Seconds(30));
  CHECK_FALSE(lock.RecordFailure("1.2.3.4", kT0));
  CHECK_FALSE(lock.RecordFailure("1.2.3.4", kT0));
  CHECK(lock.Check("1.2.3.4", kT0).ok());
  CHECK(lock.RecordFailure("1.2.3.4", kT0));
  absl::Status locked = lock.Check("1.2.3.4", kT0 + absl::Seconds(10));
  CHECK(locked.code() == absl::StatusCode::kResourceExhausted);
  CHECK(*RetryDelayOf(locked) == absl::Seconds(20));
  CHECK(lock.Check("5.6.7.8", kT0).ok());
  CHECK(lock.Check("1.2.3.4", kT0 + absl::Seconds(31)).ok());
}

TEST_CASE("failures outside the window do not accumulate", "[lockout]") {
  FailureLockout lock(2, absl::Seconds(10), absl::Seconds(30));
  CHECK_FALSE(lock.RecordFailure("k", kT0));
  CHECK_FALSE(lock.RecordFailure("k", kT0 + absl::Seconds(11)));
  CHECK(lock.RecordFailure("k", kT0 + absl::Seconds(12)));
}

TEST_CASE("a retry delay survives the trip to gRPC and back", "[status]") {
  absl::Status s = WithRetryDelay(absl::ResourceExhaustedError("slow down"), absl::Seconds(3));
  grpc::Status g = ToGrpcStatus(s);
  CHECK(g.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
  CHECK(g.error_message() == "slow down");
  CHECK(*RetryDelayOf(g) == absl::Seconds(3));
  CHECK(*RetryDelayOf(FromGrpcStatus(g)) == absl::Seconds(3));
  CHECK_FALSE(RetryDelayOf(ToGrpcStatus(absl::InternalError("x"))).has_value());
}
