// Fault scenario 1: PostgreSQL restarted — at once, and down for 20 s — while a fleet checks
// in, a publication is in flight and security events happen. Runs on its own PostgreSQL and
// cluster (the faults fixture), so stopping the database disturbs no other test. Asserts
// counts: every check-in an agent sent on a stream that stayed up is acknowledged and
// recorded, every security event of the outage is in the audit trail, the publication is
// installed once on every agent; prints the figures.
#include <catch2/catch.hpp>
#include <iostream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
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

std::string PgCommand(const std::string& verb) {
  const std::string root = TestVar("REDFLAG_TEST_ROOT");
  std::string cmd =
      absl::StrCat("bash ", REDFLAG_SOURCE_DIR, "/scripts/pg.sh ", verb, " ", root, "/pg");
  if (verb == "start") {
    absl::StrAppend(&cmd, " ", TestVar("REDFLAG_DB_PORT"), " ", root, "/pki/redflag.env");
  }
  return cmd + " 2>&1";
}

void StopPostgres() {
  auto [out, rc] = RunCommand(PgCommand("stop"));
  INFO(out);
  REQUIRE(rc == 0);
}

void StartPostgres() {
  auto [out, rc] = RunCommand(PgCommand("start"));
  INFO(out);
  REQUIRE(rc == 0);
}

int64_t AuthFailuresSince(absl::Time t) {
  auto rows = QueryColumn(
      "SELECT count(*)::text FROM audit.security_events WHERE type = 'AUTH_FAILURE' "
      "AND at_micros >= $1::bigint",
      {absl::StrCat(absl::ToUnixMicros(t))});
  int64_t n = 0;
  if (!rows.empty()) (void)absl::SimpleAtoi(rows[0], &n);
  return n;
}

// Calls the gateway with a forged access token: refused, and an AUTH_FAILURE event.
void ForgedTokenCall(Cluster& c) {
  auto op = c.Operator();
  grpc::ClientContext ctx;
  Cluster::Authorize(ctx, "forged." + HexEncode(RandomBytes(16)) + ".token");
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  v1::ListAgentsRequest req;
  v1::ListAgentsResponse resp;
  grpc::Status s = op->ListAgents(&ctx, req, &resp);
  CHECK(s.error_code() == grpc::StatusCode::UNAUTHENTICATED);
}

// Waits until every check-in sent so far is acknowledged (sent - acked <= slack, the ones
// just sent); returns how long that took.
absl::Duration SettleCheckIns(fleet::Fleet& f, int slack, absl::Duration timeout) {
  absl::Time start = absl::Now();
  while (absl::Now() - start < timeout) {
    int64_t sent = f.stats().Counted("check_ins_sent");
    int64_t acked = f.stats().Counted("check_in_acks");
    if (sent - acked <= slack) return absl::Now() - start;
    absl::SleepFor(absl::Milliseconds(100));
  }
  return absl::InfiniteDuration();
}

}  // namespace

TEST_CASE("PostgreSQL restarted and down for 20 s: no check-in, event or install is lost",
          "[faults][pg]") {
  REQUIRE(InitCrypto().ok());
  auto& c = Cluster::Get();
  fleet::FleetOptions o = FaultFleetOptions(kAgents, "faults");
  o.backoff_base = absl::Seconds(1);
  o.backoff_cap = absl::Seconds(5);
  fleet::Fleet f(o);
  f.Start(kAgents, absl::Seconds(1));
  REQUIRE(f.WaitConnected(kAgents, absl::Seconds(60)));
  fleet::OperatorClient op(c.gateway_address(), o.ca_pem);
  op.UseToken(c.AdminToken());
  const int agents_metrics = c.metrics_port("agents");
  const std::string recorded_series = "redflag_agent_check_ins_total";
  absl::SleepFor(absl::Seconds(2));

  // 1. A fast restart right after a publication: its fan-out and downloads are in flight.
  absl::StatusOr<v1::Update> update =
      op.Publish("faults-pkg", "1.0.0", "Linux-x86_64", o.channel, RandomBytes(300 * 1024));
  REQUIRE(update.ok());
  const std::string update_id = update->manifest().update_id();
  StopPostgres();
  StartPostgres();
  absl::Time back = absl::Now();
  absl::Duration settle_fast = SettleCheckIns(f, kAgents, absl::Seconds(30));
  std::cout << "faults/pg fast restart: check-ins acknowledged again "
            << absl::FormatDuration(settle_fast) << " after PostgreSQL was back\n";
  CHECK(settle_fast <= absl::Seconds(5));

  // 2. Down for 20 s: check-ins keep coming, forged tokens make AUTH_FAILURE events.
  const int64_t sent_before = f.stats().Counted("check_ins_sent");
  const double recorded_before = Metric(agents_metrics, recorded_series);
  absl::Time outage = absl::Now();
  const int64_t events_before = AuthFailuresSince(outage);
  StopPostgres();
  constexpr int kForged = 5;
  for (int i = 0; i < kForged; ++i) {
    ForgedTokenCall(c);
    absl::SleepFor(absl::Seconds(4));
  }
  const int64_t sent_during = f.stats().Counted("check_ins_sent") - sent_before;
  StartPostgres();
  back = absl::Now();
  absl::Duration settle = SettleCheckIns(f, kAgents, absl::Seconds(30));
  const int64_t sent = f.stats().Counted("check_ins_sent");
  const int64_t acked = f.stats().Counted("check_in_acks");
  // Every check-in sent since the outage began was recorded by the agents service.
  const double recorded = Metric(agents_metrics, recorded_series) - recorded_before;

  // The events of the outage reach the audit trail once the database is back.
  int64_t events = 0;
  absl::Time deadline = absl::Now() + absl::Seconds(15);
  while (absl::Now() < deadline && (events = AuthFailuresSince(outage) - events_before) < kForged) {
    absl::SleepFor(absl::Milliseconds(200));
  }

  // The publication reaches every agent, once, and the server records every install.
  deadline = absl::Now() + absl::Seconds(120);
  int installed = 0, failed = 0;
  std::vector<std::string> server = {"?"};
  while (absl::Now() < deadline) {
    installed = failed = 0;
    for (const auto& [agent, t] : f.stats().Deliveries(update_id)) {
      if (!t.failure.empty()) ++failed;
      if (t.installed_reported != absl::InfinitePast()) ++installed;
    }
    server = QueryColumn(
        "SELECT count(*)::text FROM updates.deliveries WHERE update_id = $1::uuid AND "
        "state = 'INSTALLED'",
        {update_id});
    if (installed + failed == kAgents && server.at(0) == std::to_string(installed)) break;
    absl::SleepFor(absl::Milliseconds(200));
  }
  const absl::Duration reports_settled = absl::Now() - back;

  std::cout << "faults/pg 20 s outage: check-ins sent during it " << sent_during
            << "; after PostgreSQL was back all acknowledged in " << absl::FormatDuration(settle)
            << "; sent " << sent << ", acknowledged " << acked << " (the difference is in flight)"
            << "; recorded since the outage " << recorded << "; AUTH_FAILURE events " << events
            << "/" << kForged << "; installs reported " << installed << "/" << kAgents
            << ", failed " << failed << ", recorded INSTALLED " << server.at(0) << " (all "
            << absl::FormatDuration(reports_settled) << " after PostgreSQL was back)\n";
  CHECK(sent_during >= kAgents * 10);  // the outage really was under load
  CHECK(settle <= absl::Seconds(5));
  CHECK(sent - acked <= kAgents);
  CHECK(recorded >= static_cast<double>(sent_during));
  CHECK(events == kForged);
  CHECK(installed == kAgents);
  CHECK(failed == 0);
  CHECK(server.at(0) == std::to_string(kAgents));
  // Errors the simulated agents met: only transient ones (their retries then succeeded).
  for (const auto& [what, n] : f.stats().Errors()) {
    std::cout << "faults/pg agent-side error " << what << " x" << n << "\n";
    CHECK((what.find("UNAVAILABLE") != std::string::npos ||
           what.find("DEADLINE_EXCEEDED") != std::string::npos));
  }
  std::string dead;
  CHECK(c.AllRunning(&dead));
  INFO(dead);
}
