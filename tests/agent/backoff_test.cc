#include <catch2/catch.hpp>

#include "agent/client.h"
#include "common/crypto.h"

using redflag::agent::BackoffDelay;

TEST_CASE("reconnect delays are full-jitter and capped", "[backoff]") {
  REQUIRE(redflag::InitCrypto().ok());
  absl::Duration base = absl::Seconds(1), cap = absl::Seconds(60);
  absl::Duration max_seen = absl::ZeroDuration();
  bool spread = false;
  for (int i = 0; i < 200; ++i) {
    absl::Duration d0 = BackoffDelay(0, base, cap);
    CHECK(d0 <= base);
    absl::Duration d = BackoffDelay(20, base, cap);
    CHECK(d <= cap);
    CHECK(d >= absl::ZeroDuration());
    if (d > max_seen) max_seen = d;
    if (d < absl::Seconds(30)) spread = true;
  }
  // Jitter spreads agents over the whole window instead of synchronising them.
  CHECK(max_seen > absl::Seconds(30));
  CHECK(spread);
}
