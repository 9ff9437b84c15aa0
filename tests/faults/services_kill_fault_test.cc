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

constexpr char kAgentResyncs[] = "redflag_gateway_fan_out_calls_total{feed=\"agents\"}";

// Asks the agent to prove its binding; returns its last_verified_at before the request.
std::string AskToVerify(const std::string& agent_id) {
  std::string before =
      QueryColumn("SELECT coalesce(last_verified_at::text, '') FROM agents.agents WHERE id = $1",
                  {agent_id})[0];
  auto& c = Cluster::Get();
  grpc::Status s;
  // The operator call reaches the agents service as soon as the gateway's channel is back.
  for (int i = 0; i < 50; ++i) {
    grpc::ClientContext ctx;
    Cluster::Authorize(ctx, c.AdminToken());
    v1::VerifyAgentRequest req;
    req.set_id(agent_id);
    v1::Agent out;
    s = c.Operator()->VerifyAgent(&ctx, req, &out);
    if (s.ok()) break;
    absl::SleepFor(absl::Milliseconds(200));
  }
  REQUIRE(s.ok());
  return before;
}

// Polls until the agent answered a challenge after `before` (its last_verified_at then) with
// its bound machine ("ok").
bool WaitForVerify(const std::string& agent_id, const std::string& before, absl::Duration timeout) {
  for (absl::Time until = absl::Now() + timeout; absl::Now() < until;
       absl::SleepFor(absl::Milliseconds(200))) {
    auto row = QueryColumn(
        "SELECT verify_result FROM agents.agents WHERE id = $1 AND "
        "coalesce(last_verified_at::text, '') <> $2",
        {agent_id, before});
    if (!row.empty() && row[0] == "ok") return true;
  }
  return false;
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

  const int gw = c.metrics_port("gateway");
  for (const std::string service : {"agents", "auth"}) {
    const int64_t sent_before = f.stats().Counted("check_ins_sent");
    const double rounds_before = Metric(gw, "redflag_gateway_stream_fetch_rounds_total");
    const double resyncs_before = Metric(gw, kAgentResyncs);
    c.KillService(service);
    absl::SleepFor(absl::Seconds(3));
    const int64_t sent_during = f.stats().Counted("check_ins_sent") - sent_before;
    c.RestartService(service);
    if (service == "agents") {
      // A challenge queued now may reach the gateway's agents feed before it is back, or be
      // lost in the feed's gap: either way the agent must answer it.
      std::string verified = AskToVerify(f.agent(0).agent_id());
      // The gap in the agents feed resynchronises every stream in batches, and only agents
      // that are owed something fetch on their own: not one round per stream.
      for (absl::Time until = absl::Now() + absl::Seconds(15);
           absl::Now() < until && Metric(gw, kAgentResyncs) <= resyncs_before;) {
        absl::SleepFor(absl::Milliseconds(100));
      }
      absl::SleepFor(absl::Seconds(1));  // rounds the resync started have ended
      const double rounds = Metric(gw, "redflag_gateway_stream_fetch_rounds_total") - rounds_before;
      const double resyncs = Metric(gw, kAgentResyncs) - resyncs_before;
      std::cout << "faults/services agents feed gap with " << kAgents
                << " streams: batched resync calls " << resyncs << ", per-stream fetch rounds "
                << rounds << "\n";
      CHECK(resyncs >= 1);
      CHECK(rounds <= 2);  // the challenged agent's (event and/or resync), not kAgents
      CHECK(WaitForVerify(f.agent(0).agent_id(), verified, absl::Seconds(15)));
    }
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
