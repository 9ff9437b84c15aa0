// Registration seats against a real PostgreSQL: N concurrent consumers on K seats.
#include <atomic>
#include <catch2/catch.hpp>
#include <thread>

#include "absl/time/clock.h"
#include "common/crypto.h"
#include "common/encoding.h"
#include "services/auth/store.h"
#include "tests/support/test_env.h"

using namespace redflag;

TEST_CASE("20 concurrent seat consumptions on a 5-seat token: exactly 5 succeed",
          "[auth][seats][pg]") {
  REQUIRE(InitCrypto().ok());
  auto pool = redflag::testing::TestPool(8);
  auth::AuthStore store(*pool);
  REQUIRE(store.Migrate().ok());
  std::string hash = Sha256Hex(RandomBytes(32));
  REQUIRE(store
              .CreateRegistrationToken(hash, "rf_reg_test", "seats", 5,
                                       absl::Now() + absl::Hours(1), "test", {1000, 50})
              .ok());
  std::atomic<int> ok{0}, exhausted{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 20; ++i) {
    threads.emplace_back([&] {
      auto seat = store.ConsumeSeat(hash, HexEncode(RandomBytes(32)));
      if (seat.ok())
        ++ok;
      else if (seat.status().code() == absl::StatusCode::kResourceExhausted)
        ++exhausted;
    });
  }
  for (auto& t : threads) t.join();
  CHECK(ok == 5);
  CHECK(exhausted == 15);
}

TEST_CASE("revoked, expired and unknown tokens are refused with their reason", "[auth][pg]") {
  REQUIRE(InitCrypto().ok());
  auto pool = redflag::testing::TestPool(2);
  auth::AuthStore store(*pool);
  REQUIRE(store.Migrate().ok());
  std::string hash = Sha256Hex(RandomBytes(32));
  auto t = store.CreateRegistrationToken(hash, "rf_reg_x", "revoke-me", 3,
                                         absl::Now() + absl::Hours(1), "test", {1000, 50});
  REQUIRE(t.ok());
  REQUIRE(store.RevokeRegistrationToken(t->id()).ok());
  CHECK_THAT(std::string(store.ConsumeSeat(hash, "m").status().message()),
             Catch::Contains("revoked"));
  std::string expired = Sha256Hex(RandomBytes(32));
  REQUIRE(store
              .CreateRegistrationToken(expired, "rf_reg_y", "old", 3,
                                       absl::Now() - absl::Seconds(1), "test", {1000, 50})
              .ok());
  CHECK_THAT(std::string(store.ConsumeSeat(expired, "m").status().message()),
             Catch::Contains("expired"));
  CHECK(store.ConsumeSeat(Sha256Hex("unknown"), "m").status().code() ==
        absl::StatusCode::kUnauthenticated);
}

TEST_CASE("the number of active registration tokens is capped (REDFLAG_MAX_TOKENS)", "[auth][pg]") {
  REQUIRE(InitCrypto().ok());
  auto pool = redflag::testing::TestPool(1);
  auth::AuthStore store(*pool);
  REQUIRE(store.Migrate().ok());
  // A cap of zero admits nothing, whatever else the shared database holds.
  auto t = store.CreateRegistrationToken(Sha256Hex(RandomBytes(32)), "rf_reg_cap", "cap", 1,
                                         absl::Now() + absl::Hours(1), "test", {0, 50});
  CHECK(t.status().code() == absl::StatusCode::kResourceExhausted);
  CHECK_THAT(std::string(t.status().message()), Catch::Contains("REDFLAG_MAX_TOKENS"));
}
