// Fault scenario 4: the agents service, then the auth service, killed with SIGKILL under load.
// Agents keep their streams (the gateway holds them; check-ins wait in its batcher and are
// recorded once the service is back), every check-in sent is acknowledged, and operators
// log in again once auth is back.
#include <catch2/catch.hpp>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/crypto.h"
#include "common/encoding.h"
#include "tests/faults/fault_support.h"
#include "tests/support/cluster.h"
#include "tests/support/test_env.h"
#include "tools/fleet/fleet.h"

using namespace redflag;
using namespace redflag::testing;

namespace {

constexpr int kAgents = 20;

// Waits until every check-in sent is acknowledged but those just sent; how long it took.
absl::Duration Settle(fleet::Fleet& f, absl::Duration timeout) {
  absl::Time start = absl::Now();
  while (absl::Now() - start < timeout) {
    if (f.stats().Counted("check_ins_sent") - f.stats().Counted("check_in_acks") <= kAgents) {
      return absl::Now() - start;
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
  return absl::InfiniteDuration();
}

}  // namespace

TEST_CASE("agents and auth services killed with -9 under load: streams stay, check-ins recorded",
          "[faults][services]") {
  REQUIRE(InitCrypto().ok());
  auto& c = Cluster::Get();
  (void)c.AdminToken();  // logged in before any kill
  fleet::FleetOptions o = FaultFleetOptions(kAgents, "faults-svc");
  fleet::Fleet f(o);
  f.Start(kAgents, absl::Seconds(1));
  REQUIRE(f.WaitConnected(kAgents, absl::Seconds(60)));
  const absl::Time connected = absl::Now();
  absl::SleepFor(absl::Seconds(2));

  for (const std::string service : {"agents", "auth"}) {
    const int64_t sent_before = f.stats().Counted("check_ins_sent");
    c.KillService(service);
    absl::SleepFor(absl::Seconds(3));
    const int64_t sent_during = f.stats().Counted("check_ins_sent") - sent_before;
    c.RestartService(service);
    absl::Duration settled = Settle(f, absl::Seconds(30));
    std::cout << "faults/services " << service << " kill -9, down 3 s: check-ins sent meanwhile "
              << sent_during << ", all acknowledged " << absl::FormatDuration(settled)
              << " after the restart; agents that had to reconnect: "
              << f.ConnectedSince(connected + absl::Seconds(1)) << "/" << kAgents << "\n";
    CHECK(sent_during >= kAgents);
    CHECK(settled <=
          absl::Seconds(10));  // gRPC's reconnect to the new process + the batcher's retry
  }
  // No agent had to reconnect: the gateway kept every stream through both outages.
  CHECK(f.ConnectedSince(connected + absl::Seconds(1)) == 0);
  CHECK(f.ConnectedSince() == kAgents);
  // Operators log in again once auth is back.
  std::string fresh;
  for (absl::Time until = absl::Now() + absl::Seconds(20); absl::Now() < until && fresh.empty();
       absl::SleepFor(absl::Milliseconds(500))) {
    try {
      fresh = c.NewUser("faults-" + HexEncode(RandomBytes(4)), v1::VIEWER);
    } catch (const std::exception&) {
    }
  }
  CHECK_FALSE(fresh.empty());
  for (const auto& [what, n] : f.stats().Errors()) {
    std::cout << "faults/services agent-side error " << what << " x" << n << "\n";
  }
  CHECK(f.stats().Errors().empty());
  std::string dead;
  CHECK(c.AllRunning(&dead));
  INFO(dead);
}
