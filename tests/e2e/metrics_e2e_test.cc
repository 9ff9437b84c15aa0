// Every service's live /metrics passes `promtool check metrics` (Prometheus naming and
// exposition conventions) and carries the counters the alert rules use.
#include <catch2/catch.hpp>
#include <cstdio>

#include "tests/support/cluster.h"
#include "tests/support/test_env.h"

using namespace redflag;
using namespace redflag::testing;

namespace {

// Runs promtool check metrics on `text`; returns its exit code and output.
std::pair<int, std::string> PromtoolCheck(const std::string& text) {
  std::string file = TestVar("REDFLAG_TEST_ROOT") + "/scrape.txt";
  {
    FILE* f = fopen(file.c_str(), "w");
    fwrite(text.data(), 1, text.size(), f);
    fclose(f);
  }
  FILE* p = popen(("promtool check metrics < '" + file + "' 2>&1").c_str(), "r");
  std::string out;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof(buf), p)) out.append(buf, n);
  return {pclose(p), out};
}

}  // namespace

TEST_CASE("every service's metrics pass promtool and expose the alerting counters",
          "[e2e][metrics]") {
  auto& c = Cluster::Get();
  c.AdminToken();  // some traffic through every server first
  v1::RegisterResponse reg;
  REQUIRE(RegisterAgent(c.NewRegistrationToken(1), RandomMachineId(), "0.2.0", &reg).ok());
  const std::map<std::string, std::string> must = {
      {"auth", "redflag_auth_failures_total"},
      {"gateway", "redflag_gateway_agent_streams"},
      {"agents", "redflag_machine_binding_violations_total"},
      {"updates", "redflag_updates_published_total"},
  };
  for (const auto& [service, metric] : must) {
    INFO(service);
    std::string text = HttpGet(c.metrics_port(service), "/metrics");
    REQUIRE_FALSE(text.empty());
    CHECK_THAT(text, Catch::Contains(metric));
    // Every server counts and times its RPCs by service, method and code.
    CHECK_THAT(text, Catch::Contains("redflag_grpc_server_handled_total{"));
    CHECK_THAT(text, Catch::Contains("redflag_grpc_server_handling_seconds_bucket{"));
    auto [rc, out] = PromtoolCheck(text);
    INFO(out);
    CHECK(rc == 0);
  }
}
