// Fault scenario 2: the gateway killed with SIGKILL and restarted on the same port while a
// fleet checks in and downloads a publication. Every agent must come back within its own
// backoff, install the update exactly once, and the rollout's recorded status must be
// exact — including deliveries whose INSTALLED report and ack died with the gateway before
// it forwarded them (the agents report again when the offer is re-delivered).
#include <catch2/catch.hpp>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "agent/fingerprint.h"
#include "common/crypto.h"
#include "common/encoding.h"
#include "tests/faults/fault_support.h"
#include "tests/support/cluster.h"
#include "tests/support/test_env.h"
#include "tools/fleet/fleet.h"
#include "tools/fleet/operator_client.h"

using namespace redflag;
using namespace redflag::testing;

namespace {

constexpr int kAgents = 20;

}  // namespace

TEST_CASE("gateway killed with -9 mid-download: every agent back, installed once, status exact",
          "[faults][gateway]") {
  REQUIRE(InitCrypto().ok());
  auto& c = Cluster::Get();
  int port = 0;
  std::unique_ptr<Process> gateway = c.StartGateway({}, &port);
  fleet::FleetOptions o = FaultFleetOptions(kAgents, "faults-gw", absl::StrCat("localhost:", port));
  o.backoff_base = absl::Seconds(1);  // the agent's default policy: 1 s base, full jitter
  fleet::Fleet f(o);
  f.Start(kAgents, absl::Seconds(1));
  REQUIRE(f.WaitConnected(kAgents, absl::Seconds(60)));

  fleet::OperatorClient op(c.gateway_address(), o.ca_pem);
  op.UseToken(c.AdminToken());
  absl::StatusOr<v1::Update> update =
      op.Publish("faults-gw-pkg", "1.0.0", "Linux-x86_64", o.channel, RandomBytes(4 << 20));
  REQUIRE(update.ok());
  const std::string id = update->manifest().update_id();

  // Kill once downloads are under way (some offers verified, not all installed).
  absl::Time deadline = absl::Now() + absl::Seconds(30);
  int verified = 0, installed = 0;
  while (absl::Now() < deadline) {
    verified = installed = 0;
    for (const auto& [agent, t] : f.stats().Deliveries(id)) {
      if (t.offer_verified != absl::InfinitePast()) ++verified;
      if (t.installed_reported != absl::InfinitePast()) ++installed;
    }
    if (verified > 0) break;
    absl::SleepFor(absl::Milliseconds(10));
  }
  REQUIRE(verified > 0);
  const int installed_before_kill = installed;
  const int64_t acks_before = f.stats().Counted("check_in_acks");
  gateway->Kill();
  gateway = c.StartGatewayOn(port, {});
  const absl::Time restarted = absl::Now();

  // Every agent back within its backoff.
  REQUIRE(f.WaitConnected(kAgents, absl::Seconds(30)));
  absl::Time all_back = absl::InfinitePast();
  for (int i = 0; i < f.size(); ++i) all_back = std::max(all_back, f.agent(i).connected_at());
  const absl::Duration back_after = all_back - restarted;

  // Every agent installs, once, and the server records exactly that.
  deadline = absl::Now() + absl::Seconds(120);
  std::string states;
  const std::string exact = absl::StrCat("INSTALLED=", kAgents);
  while (absl::Now() < deadline) {
    installed = 0;
    for (const auto& [agent, t] : f.stats().Deliveries(id)) {
      if (t.installed_reported != absl::InfinitePast()) ++installed;
    }
    states = RecordedStates(id);
    if (installed == kAgents && states == exact) break;
    absl::SleepFor(absl::Milliseconds(200));
  }
  const absl::Duration settled = absl::Now() - restarted;
  // Check-ins flow again through the new gateway (each agent checks in every second).
  int64_t acks_after = 0;
  for (absl::Time until = absl::Now() + absl::Seconds(15); absl::Now() < until;
       absl::SleepFor(absl::Milliseconds(100))) {
    acks_after = f.stats().Counted("check_in_acks") - acks_before;
    if (acks_after >= 2 * kAgents) break;
  }

  std::cout << "faults/gateway kill -9: " << verified << " offers verified and "
            << installed_before_kill << " installed before the kill; all " << kAgents
            << " agents back " << absl::FormatDuration(back_after)
            << " after the restart; installs reported " << installed << "/" << kAgents
            << " (offers finished " << f.stats().Counted("offers_finished")
            << ", outcomes reported again on re-delivery "
            << f.stats().Counted("offers_reported_again") << "); recorded: " << states << " ("
            << absl::FormatDuration(settled) << " after the restart); check-ins acknowledged "
            << "since the kill " << acks_after << "\n";
  for (const auto& [what, n] : f.stats().Errors()) {
    std::cout << "faults/gateway agent-side error " << what << " x" << n << "\n";
  }
  CHECK(back_after <= absl::Seconds(10));
  CHECK(installed == kAgents);
  CHECK(f.stats().Counted("offers_finished") == kAgents);  // each installed exactly once
  CHECK(states == exact);
  CHECK(acks_after >= 2 * kAgents);
  std::string dead;
  CHECK(c.AllRunning(&dead));
  INFO(dead);
}

TEST_CASE("a real agent is back within its own backoff after the gateway was down for 12 s",
          "[faults][gateway][reconnect]") {
  // While the gateway is down, gRPC's channel backs off its own connection attempts (up to
  // 10 s between them here); unless the agent resets that before each of its attempts, an
  // attempt made after the port is open again fails at once ("connection refused") until
  // gRPC's timer fires, and the agent waits another backoff of its own.
  auto& c = Cluster::Get();
  int port = 0;
  std::unique_ptr<Process> gateway = c.StartGateway({}, &port);
  std::string root = MakeMachineTree("reconnect");
  auto agent = StartAgent("agent-reconnect", root, absl::StrCat("localhost:", port),
                          c.NewRegistrationToken(1), {"--max_backoff_seconds=2"});
  REQUIRE(WaitForLog(*agent, "acknowledged", 15000));
  const int streams_before = CountInLog(*agent, "connected; checking in every");
  gateway->Kill();
  absl::SleepFor(absl::Seconds(12));
  const int failures_while_down = CountInLog(*agent, "reconnecting in");
  gateway = c.StartGatewayOn(port, {});
  const absl::Time restarted = absl::Now();
  const bool back = WaitForLog(*agent, "connected; checking in every", 30000, streams_before + 1);
  const absl::Duration back_after = absl::Now() - restarted;
  std::cout << "faults/gateway down 12 s: the real agent (backoff cap 2 s) made "
            << failures_while_down << " attempts while it was down and was back "
            << absl::FormatDuration(back_after) << " after the restart\n";
  INFO(ReadFile(agent->log_path()));
  REQUIRE(back);
  CHECK(back_after <= absl::Seconds(4));  // its own cap (2 s) plus the handshake, not gRPC's
}

TEST_CASE("a verify response that died with the gateway is answered again, not just acked",
          "[faults][gateway][verify]") {
  // The gateway is killed (crash point) after it read the agent's verify response and before
  // it forwarded it. The challenge stays pending and is re-delivered on the agent's next
  // stream; the agent must answer it again — an ack alone would close it with no result.
  auto& c = Cluster::Get();
  int port = 0;
  std::unique_ptr<Process> gateway =
      c.StartGateway({{"REDFLAG_CRASH_AT", "forward-verify"}}, &port);
  std::string root = MakeMachineTree("verify-lost");
  auto agent = StartAgent("agent-verify-lost", root, absl::StrCat("localhost:", port),
                          c.NewRegistrationToken(1));
  REQUIRE(WaitForLog(*agent, "acknowledged", 15000));
  std::string prefix =
      agent::MachineFingerprint(agent::ReadFingerprintSources(root))->substr(0, 16);
  std::optional<v1::Agent> found = FindAgentByMachine(prefix);
  REQUIRE(found.has_value());
  const std::string id = found->id();

  // The operator asks through the shared gateway; the agent's gateway delivers it.
  grpc::ClientContext ctx;
  Cluster::Authorize(ctx, c.AdminToken());
  v1::VerifyAgentRequest req;
  req.set_id(id);
  v1::Agent ignored;
  REQUIRE(c.Operator()->VerifyAgent(&ctx, req, &ignored).ok());
  REQUIRE(WaitForLog(*agent, "fingerprint re-sent", 15000));
  REQUIRE(gateway->Wait(10000) == -1);  // killed at the crash point
  v1::Agent a;
  REQUIRE(GetAgentAsAdmin(id, &a).ok());
  CHECK(a.verify_result().empty());  // the answer was lost with the gateway

  gateway = c.StartGatewayOn(port, {});
  const absl::Time restarted = absl::Now();
  std::string result;
  while (absl::Now() - restarted < absl::Seconds(20) && result.empty()) {
    if (GetAgentAsAdmin(id, &a).ok()) result = a.verify_result();
    absl::SleepFor(absl::Milliseconds(100));
  }
  std::cout << "faults/gateway killed before forwarding a verify response: result \"" << result
            << "\" recorded " << absl::FormatDuration(absl::Now() - restarted)
            << " after the restart; answers sent " << CountInLog(*agent, "fingerprint re-sent")
            << "\n";
  INFO(ReadFile(agent->log_path()));
  CHECK(result == "ok");
  CHECK(CountInLog(*agent, "fingerprint re-sent") == 2);
}
