// The foundation's thin path on real processes: admin login → registration token →
// redflag-agent enrolls and streams check-ins → the operator sees it through the gateway.
#include <catch2/catch.hpp>
#include <chrono>
#include <thread>

#include "agent/fingerprint.h"
#include "tests/support/cluster.h"
#include "tests/support/test_env.h"

using namespace redflag;
using namespace redflag::testing;

TEST_CASE("an agent enrolls with a registration token, checks in, and the operator sees it",
          "[e2e][thin-path]") {
  auto& c = Cluster::Get();
  std::string secret = c.NewRegistrationToken(1);
  std::string root = MakeMachineTree("thin");
  std::string fingerprint = *agent::MachineFingerprint(agent::ReadFingerprintSources(root));

  Process agent("agent-thin",
                {BinaryPath("agent/redflag-agent"), "--server=" + c.gateway_address(),
                 "--ca_file=" + PkiFile("public-ca.crt"), "--state_dir=" + root + "/state",
                 "--machine_root=" + root, "--registration_token=" + secret},
                {});

  // Wait until two different check-in times are recorded: the agent keeps checking in.
  std::optional<v1::Agent> first, later;
  for (int i = 0; i < 150 && !later; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    std::optional<v1::Agent> a = FindAgentByMachine(fingerprint.substr(0, 16));
    if (!a || !a->has_last_seen_at()) continue;
    if (!first) {
      first = a;
    } else if (a->last_seen_at().seconds() > first->last_seen_at().seconds() ||
               a->last_seen_at().nanos() != first->last_seen_at().nanos()) {
      later = a;
    }
  }
  INFO("agent log: " << ReadFile(agent.log_path()));
  REQUIRE(first.has_value());
  REQUIRE(later.has_value());
  CHECK(later->status() == v1::ONLINE);
  CHECK(later->version() == "0.2.0");
  CHECK(later->compliant());
  CHECK(later->id() == first->id());

  // The token had one seat, now used: a second machine cannot enroll with it.
  v1::RegisterResponse resp;
  grpc::Status again = RegisterAgent(secret, RandomMachineId(), "0.2.0", &resp);
  CHECK(again.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);

  // A second agent process on the same state directory refuses to run.
  Process second("agent-thin-2",
                 {BinaryPath("agent/redflag-agent"), "--server=" + c.gateway_address(),
                  "--ca_file=" + PkiFile("public-ca.crt"), "--state_dir=" + root + "/state",
                  "--machine_root=" + root},
                 {});
  CHECK(second.Wait(10000) == 1);
  CHECK_THAT(ReadFile(second.log_path()), Catch::Contains("already running"));
}
