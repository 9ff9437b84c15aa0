// The login throttle against PostgreSQL: delays grow from the threshold on, are capped,
// a quiet window forgets, and keys are independent.
#include <catch2/catch.hpp>

#include "absl/time/clock.h"
#include "common/crypto.h"
#include "common/encoding.h"
#include "services/auth/store.h"
#include "tests/support/test_env.h"

using namespace redflag;
using namespace redflag::auth;
using namespace redflag::testing;

TEST_CASE("the login delay doubles from the threshold and is capped", "[pg][auth][throttle]") {
  LockoutPolicy p{3, absl::Minutes(15), absl::Seconds(15), absl::Seconds(100)};
  CHECK(p.DelayAfter(1) == absl::ZeroDuration());
  CHECK(p.DelayAfter(2) == absl::ZeroDuration());
  CHECK(p.DelayAfter(3) == absl::Seconds(15));
  CHECK(p.DelayAfter(4) == absl::Seconds(30));
  CHECK(p.DelayAfter(5) == absl::Seconds(60));
  CHECK(p.DelayAfter(6) == absl::Seconds(100));
  CHECK(p.DelayAfter(1000000) == absl::Seconds(100));
}

TEST_CASE("failures close a key for growing delays; other keys stay open", "[pg][auth][throttle]") {
  REQUIRE(InitCrypto().ok());
  auto pool = TestPool();
  AuthStore store(*pool);
  REQUIRE(store.Migrate().ok());
  std::string key = "login:pgtest-" + HexEncode(RandomBytes(4)) + "@198.51.100.7";
  std::string neighbour = "login:admin@198.51.100.8";
  LockoutPolicy p{2, absl::Minutes(15), absl::Seconds(10), absl::Seconds(40)};
  absl::Time start = absl::Now();
  auto fail = [&]() {
    absl::StatusOr<std::optional<absl::Time>> r = store.RecordFailure(key, p);
    REQUIRE(r.ok());
    return *r;
  };
  CHECK_FALSE(fail().has_value());
  std::vector<absl::Duration> delays;
  for (int i = 0; i < 4; ++i) {
    std::optional<absl::Time> until = fail();
    REQUIRE(until.has_value());
    delays.push_back(*until - start);
  }
  // 10 s, 20 s, 40 s, 40 s (within the test's own run time).
  CHECK(delays[0] >= absl::Seconds(10));
  CHECK(delays[0] < absl::Seconds(15));
  CHECK(delays[1] >= absl::Seconds(20));
  CHECK(delays[1] < absl::Seconds(25));
  CHECK(delays[2] >= absl::Seconds(40));
  CHECK(delays[3] < absl::Seconds(45));
  absl::StatusOr<std::optional<absl::Time>> locked = store.LockedUntil({key});
  REQUIRE(locked.ok());
  CHECK(locked->has_value());
  absl::StatusOr<std::optional<absl::Time>> other = store.LockedUntil({neighbour});
  REQUIRE(other.ok());
  CHECK_FALSE(other->has_value());
  // A success clears it.
  REQUIRE(store.ClearFailures(key).ok());
  locked = store.LockedUntil({key});
  REQUIRE(locked.ok());
  CHECK_FALSE(locked->has_value());
}

TEST_CASE("a quiet window forgets earlier failures", "[pg][auth][throttle]") {
  REQUIRE(InitCrypto().ok());
  auto pool = TestPool();
  AuthStore store(*pool);
  REQUIRE(store.Migrate().ok());
  std::string key = "source:pgtest-" + HexEncode(RandomBytes(4));
  LockoutPolicy p{2, absl::Milliseconds(300), absl::Seconds(10), absl::Seconds(40)};
  REQUIRE(store.RecordFailure(key, p).ok());
  absl::SleepFor(absl::Milliseconds(400));
  absl::StatusOr<std::optional<absl::Time>> second = store.RecordFailure(key, p);
  REQUIRE(second.ok());
  CHECK_FALSE(second->has_value());  // counted as the first again
}
