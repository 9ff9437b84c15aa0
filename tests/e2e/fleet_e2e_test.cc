// A fleet on real processes: simulated agents (tools/fleet, each on its own TLS
// connection, verifying every instruction with the agent's own code) all receive one
// publication at once. Reproduces the download relay's use-after-free (gateway crash at
// 100+ concurrent downloads) and lost or reordered delivery reports.
#include <catch2/catch.hpp>
#include <cstdlib>
#include <iostream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/crypto.h"
#include "common/encoding.h"
#include "tests/support/cluster.h"
#include "tests/support/test_env.h"
#include "tools/fleet/fleet.h"
#include "tools/fleet/operator_client.h"

using namespace redflag;
using namespace redflag::testing;

namespace {

// REDFLAG_FLEET_TEST_AGENTS overrides the size (the ASan run uses fewer).
int FleetSize() {
  int n = 200;
  if (const char* v = std::getenv("REDFLAG_FLEET_TEST_AGENTS")) (void)absl::SimpleAtoi(v, &n);
  return n;
}

}  // namespace

TEST_CASE("a fleet installs one publication exactly once per agent and every process survives",
          "[fleet][e2e]") {
  auto& c = Cluster::Get();
  const int n = FleetSize();
  fleet::FleetOptions o;
  o.target = c.gateway_address();
  o.ca_pem = ReadFile(PkiFile("public-ca.crt"));
  o.run_id = HexEncode(RandomBytes(6));
  o.channel = "fleet-" + o.run_id;  // only this fleet follows the channel
  o.seats_per_token = 50;           // auth's REDFLAG_MAX_SEATS default
  for (int have = 0; have < n; have += o.seats_per_token) {
    o.registration_tokens.push_back(c.NewRegistrationToken(o.seats_per_token));
  }
  fleet::Fleet f(o);
  f.Start(n, absl::Seconds(2));
  INFO("connected: " << f.ConnectedSince());
  REQUIRE(f.WaitConnected(n, absl::Seconds(120)));

  fleet::OperatorClient op(c.gateway_address(), o.ca_pem);
  op.UseToken(c.AdminToken());
  // The updates service's instruction calls, single (per agent) and batched (per event).
  auto calls = [&](const std::string& kind) {
    std::string body = HttpGet(c.metrics_port("updates"), "/metrics");
    std::string key = "redflag_updates_pending_instruction_calls_total{call=\"" + kind + "\"} ";
    size_t at = body.find(key);
    return at == std::string::npos ? 0.0 : std::stod(body.substr(at + key.size()));
  };
  const double single_before = calls("single"), batch_before = calls("batch");
  // One chunk (the relay's chunk is 256 KiB): the ordering that crashed is most likely.
  std::string bytes = RandomBytes(100 * 1024);
  absl::Time published = absl::Now();
  absl::StatusOr<v1::Update> update =
      op.Publish("fleet-tool", "1.0.0", "Linux-x86_64", o.channel, bytes);
  REQUIRE(update.ok());
  const std::string id = update->manifest().update_id();

  // Every agent reports INSTALLED (or a failure) ...
  absl::Time deadline = absl::Now() + absl::Seconds(180);
  int done = 0;
  while (absl::Now() < deadline) {
    done = static_cast<int>(f.stats().Deliveries(id).size());
    if (done == n) break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  int installed = 0;
  std::vector<double> latency_ms;
  for (const auto& [agent, t] : f.stats().Deliveries(id)) {
    if (t.failure.empty() && t.installed_reported != absl::InfinitePast()) {
      ++installed;
      latency_ms.push_back(absl::ToDoubleMilliseconds(t.installed_reported - published));
    } else {
      UNSCOPED_INFO("agent " << agent << " failed: " << t.failure);
    }
  }
  fleet::Percentiles p = fleet::Summarise(latency_ms);
  std::cout << "fleet: " << n << " agents, publish -> INSTALLED reported p50 " << p.p50
            << " ms, p99 " << p.p99 << " ms, max " << p.max << " ms\n";
  for (const auto& [what, count] : f.stats().Errors()) {
    std::cout << "fleet: error " << what << " x" << count << "\n";
  }
  CHECK(done == n);
  CHECK(installed == n);
  // The publication reached the fleet through batched calls, a handful per event, not two
  // backend calls per stream (before: at least n single calls for this publication).
  const double single = calls("single") - single_before, batch = calls("batch") - batch_before;
  std::cout << "fleet: instruction calls during the publication: " << batch << " batched, "
            << single << " single\n";
  CHECK(batch >= 1);
  CHECK(batch <= 20);
  CHECK(single < n / 10.0);

  // ... and the server recorded exactly that: n INSTALLED, nothing left in another state.
  std::map<std::string, int64_t> counts;
  deadline = absl::Now() + absl::Seconds(60);
  while (absl::Now() < deadline) {
    absl::StatusOr<std::map<std::string, int64_t>> got = op.DeliveryCounts(id);
    REQUIRE(got.ok());
    counts = *got;
    if (counts["INSTALLED"] == n) break;
    absl::SleepFor(absl::Milliseconds(200));
  }
  for (const auto& [state, count] : counts) {
    UNSCOPED_INFO(state << ": " << count);
  }
  CHECK(counts["INSTALLED"] == n);
  int64_t total = 0;
  for (const auto& [state, count] : counts) total += count;
  CHECK(total == n);

  std::string dead;
  CHECK(c.AllRunning(&dead));
  INFO("dead: " << dead);
  f.StopAll();
  CHECK(f.live_reactors() == 0);
}
