// The gateway's revoked-session set: refuses until the tokens' expiry, then forgets; bounded,
// and failing closed (every older token refused) rather than forgetting a live revocation.
#include "services/gateway/revoked_sessions.h"

#include <catch2/catch.hpp>

using redflag::gateway::RevokedSessions;

namespace {
const absl::Time kT0 = absl::FromUnixSeconds(1'800'000'000);
}

TEST_CASE("a revoked session's tokens are refused until they have all expired", "[revoked]") {
  RevokedSessions set;
  set.Add("s1", kT0 + absl::Hours(24), kT0);
  CHECK(absl::IsUnauthenticated(set.Check("s1", kT0 - absl::Hours(1), kT0 + absl::Seconds(1))));
  CHECK(set.Check("s2", kT0, kT0 + absl::Seconds(1)).ok());
  CHECK(set.Check("s1", kT0, kT0 + absl::Hours(25)).ok());  // forgotten after forget_after
  set.Add("old", kT0 - absl::Seconds(1), kT0);              // already irrelevant: not kept
  CHECK(set.size() == 1);
}

TEST_CASE("when full, expired entries go first, then the set fails closed", "[revoked]") {
  RevokedSessions set(3);
  set.Add("a", kT0 + absl::Seconds(10), kT0);
  set.Add("b", kT0 + absl::Hours(1), kT0);
  set.Add("c", kT0 + absl::Hours(1), kT0);
  // "a" has expired by now: room is made without losing anything live.
  set.Add("d", kT0 + absl::Hours(1), kT0 + absl::Seconds(20));
  CHECK(set.size() == 3);
  CHECK(set.watermark() == absl::InfinitePast());
  CHECK_FALSE(set.Check("b", kT0, kT0 + absl::Seconds(21)).ok());
  // Full of live entries: forget them all but refuse every token issued until now.
  absl::Time overflow = kT0 + absl::Seconds(30);
  set.Add("e", kT0 + absl::Hours(1), overflow);
  CHECK(set.watermark() == overflow);
  CHECK_FALSE(set.Check("b", kT0, overflow + absl::Seconds(1)).ok());   // still refused
  CHECK_FALSE(set.Check("zz", kT0, overflow + absl::Seconds(1)).ok());  // older: refused
  CHECK(set.Check("zz", overflow + absl::Seconds(1), overflow + absl::Seconds(2)).ok());
  CHECK_FALSE(set.Check("e", overflow + absl::Seconds(1), overflow + absl::Seconds(2)).ok());
}
