// Fault scenario 6: a service that stops answering without closing its connections (SIGSTOP
// for 30 s, as a network cut or a frozen host would look), then resumes (SIGCONT). Calls to
// it end at their deadlines instead of hanging, agents keep their streams, and everything
// sent meanwhile is recorded once it answers again.
#include <signal.h>

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
constexpr int kAgents = 10;
}  // namespace

TEST_CASE("a service frozen for 30 s: calls end at their deadlines, nothing hangs, all resumes",
          "[faults][freeze]") {
  REQUIRE(InitCrypto().ok());
  auto& c = Cluster::Get();
  (void)c.AdminToken();
  fleet::FleetOptions o = FaultFleetOptions(kAgents, "faults-stop");
  fleet::Fleet f(o);
  f.Start(kAgents, absl::Seconds(1));
  REQUIRE(f.WaitConnected(kAgents, absl::Seconds(60)));
  const absl::Time connected = absl::Now();
  absl::SleepFor(absl::Seconds(2));

  const int64_t sent_before = f.stats().Counted("check_ins_sent");
  c.SignalService("agents", SIGSTOP);
  const absl::Time frozen = absl::Now();
  // An operator's call that needs the frozen service ends at the gateway's deadline.
  auto op = c.Operator();
  grpc::ClientContext ctx;
  Cluster::Authorize(ctx, c.AdminToken());
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
  v1::ListAgentsRequest req;
  v1::ListAgentsResponse resp;
  const absl::Time asked = absl::Now();
  grpc::Status s = op->ListAgents(&ctx, req, &resp);
  const absl::Duration answered = absl::Now() - asked;
  absl::SleepFor(absl::Seconds(30) - (absl::Now() - frozen));
  const int64_t sent_during = f.stats().Counted("check_ins_sent") - sent_before;
  c.SignalService("agents", SIGCONT);
  const absl::Time resumed = absl::Now();
  absl::Duration settled = absl::InfiniteDuration();
  for (absl::Time until = absl::Now() + absl::Seconds(30); absl::Now() < until;
       absl::SleepFor(absl::Milliseconds(100))) {
    if (f.stats().Counted("check_ins_sent") - f.stats().Counted("check_in_acks") <= kAgents) {
      settled = absl::Now() - resumed;
      break;
    }
  }
  std::cout << "faults/freeze agents service stopped 30 s: an operator's ListAgents ended "
            << s.error_code() << " after " << absl::FormatDuration(answered)
            << "; check-ins sent meanwhile " << sent_during << ", all acknowledged "
            << absl::FormatDuration(settled) << " after SIGCONT; agents that reconnected "
            << f.ConnectedSince(connected + absl::Seconds(1)) << "/" << kAgents << "\n";
  CHECK_FALSE(s.ok());
  CHECK(answered <= absl::Seconds(20));  // a deadline, not the caller's 60 s
  CHECK(sent_during >= kAgents * 20);
  CHECK(settled <= absl::Seconds(10));
  CHECK(f.ConnectedSince(connected + absl::Seconds(1)) == 0);
  std::string dead;
  CHECK(c.AllRunning(&dead));
  INFO(dead);
}
