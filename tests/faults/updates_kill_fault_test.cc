// Fault scenario 3: the updates service killed with SIGKILL during a publication and during
// downloads. A publication cut off is not half there (its transaction dies with the
// connection); one made again reaches every agent, which installs it exactly once through
// the restarted service, and the rollout's recorded status is exact.
#include <catch2/catch.hpp>
#include <iostream>
#include <thread>

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

std::string Count(const std::string& sql, const std::vector<std::string>& params) {
  auto rows = QueryColumn(sql, params);
  return rows.empty() ? "" : rows[0];
}

}  // namespace

TEST_CASE(
    "updates service killed with -9 mid-publication and mid-download: nothing half "
    "published, installed once, status exact",
    "[faults][updates]") {
  REQUIRE(InitCrypto().ok());
  auto& c = Cluster::Get();
  fleet::FleetOptions o = FaultFleetOptions(kAgents, "faults-up");
  fleet::Fleet f(o);
  f.Start(kAgents, absl::Seconds(1));
  REQUIRE(f.WaitConnected(kAgents, absl::Seconds(60)));
  fleet::OperatorClient op(c.gateway_address(), o.ca_pem);
  op.UseToken(c.AdminToken());

  // 1. Killed while a 64 MiB package streams in.
  absl::StatusOr<v1::Update> cut = absl::UnknownError("not run");
  std::thread publisher([&] {
    cut = op.Publish("faults-up-pkg", "1.0.0", "Linux-x86_64", o.channel, RandomBytes(64 << 20));
  });
  absl::SleepFor(absl::Milliseconds(500));
  c.KillService("updates");
  publisher.join();
  INFO("the cut publication: " << cut.status());
  CHECK_FALSE(cut.ok());
  c.RestartService("updates");
  const std::string packages = Count(
      "SELECT count(*)::text FROM updates.packages WHERE name = 'faults-up-pkg' AND channel = $1",
      {o.channel});
  const std::string orphans = Count(
      "SELECT count(*)::text FROM updates.package_chunks k WHERE NOT EXISTS "
      "(SELECT 1 FROM updates.packages p WHERE p.id = k.update_id)",
      {});
  CHECK(packages == "0");
  CHECK(orphans == "0");

  // 2. Published again, and killed while the agents download it; back after 1 s.
  absl::StatusOr<v1::Update> update = absl::UnknownError("not published");
  for (absl::Time until = absl::Now() + absl::Seconds(20); absl::Now() < until;
       absl::SleepFor(absl::Milliseconds(500))) {
    update = op.Publish("faults-up-pkg", "1.0.0", "Linux-x86_64", o.channel, RandomBytes(4 << 20));
    if (update.ok()) break;  // the gateway's channel to the new process may still be waking
  }
  REQUIRE(update.ok());
  const std::string id = update->manifest().update_id();
  int verified = 0;
  for (absl::Time until = absl::Now() + absl::Seconds(30); absl::Now() < until && verified == 0;
       absl::SleepFor(absl::Milliseconds(10))) {
    for (const auto& [agent, t] : f.stats().Deliveries(id)) {
      if (t.offer_verified != absl::InfinitePast()) ++verified;
    }
  }
  REQUIRE(verified > 0);
  c.KillService("updates");
  absl::SleepFor(absl::Seconds(1));
  c.RestartService("updates");
  const absl::Time restarted = absl::Now();

  const std::string exact = absl::StrCat("INSTALLED=", kAgents);
  std::string states;
  int installed = 0;
  for (absl::Time until = absl::Now() + absl::Seconds(120); absl::Now() < until;
       absl::SleepFor(absl::Milliseconds(200))) {
    installed = 0;
    for (const auto& [agent, t] : f.stats().Deliveries(id)) {
      if (t.installed_reported != absl::InfinitePast()) ++installed;
    }
    states = Count(
        "SELECT string_agg(state || '=' || n, ' ' ORDER BY state) FROM (SELECT state, count(*) "
        "AS n FROM updates.deliveries WHERE update_id = $1::uuid GROUP BY state) s",
        {id});
    if (installed == kAgents && states == exact) break;
  }
  std::cout << "faults/updates kill -9: the cut publication ended " << cut.status().code()
            << ", packages left " << packages << ", orphan chunks " << orphans << "; then "
            << verified << " offers verified at the kill; installs " << installed << "/" << kAgents
            << " (offers finished " << f.stats().Counted("offers_finished") << "), recorded "
            << states << " " << absl::FormatDuration(absl::Now() - restarted)
            << " after the restart\n";
  for (const auto& [what, n] : f.stats().Errors()) {
    std::cout << "faults/updates agent-side error " << what << " x" << n << "\n";
    CHECK((what.find("UNAVAILABLE") != std::string::npos ||
           what.find("DEADLINE_EXCEEDED") != std::string::npos));
  }
  CHECK(installed == kAgents);
  CHECK(f.stats().Counted("offers_finished") == kAgents);
  CHECK(states == exact);
  std::string dead;
  CHECK(c.AllRunning(&dead));
  INFO(dead);
}
