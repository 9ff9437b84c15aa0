// Security settings through the gateway on the real services: only admins read or change
// them, unsafe values are refused with the allowed range, every change is a security event
// naming old and new value and the operator, and a change reaches the services that apply
// it within seconds — the updates service signs the new freshness window into instructions,
// the agents service refuses agents below a raised minimum version, every gateway applies new
// edge rate limits.
#include <catch2/catch.hpp>
#include <cmath>
#include <functional>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/crypto.h"
#include "common/encoding.h"
#include "common/security_settings.h"
#include "common/status.h"
#include "common/tls.h"
#include "redflag/v1/updates.grpc.pb.h"
#include "tests/support/cluster.h"
#include "tests/support/rate_limits.h"
#include "tests/support/test_env.h"
#include "tools/fleet/fleet.h"

using namespace redflag;
using namespace redflag::testing;

namespace {

grpc::Status Get(const std::string& token, v1::SecuritySettings* out) {
  grpc::ClientContext ctx;
  Cluster::Authorize(ctx, token);
  return Cluster::Get().Operator()->GetSecuritySettings(&ctx, {}, out);
}

grpc::Status Update(const std::string& token, const v1::UpdateSecuritySettingsRequest& req,
                    v1::SecuritySettings* out) {
  grpc::ClientContext ctx;
  Cluster::Authorize(ctx, token);
  return Cluster::Get().Operator()->UpdateSecuritySettings(&ctx, req, out);
}

// The window the updates service signs into an instruction now (asked as the gateway).
int SignedWindow() {
  TlsMaterial gw{ReadFile(PkiFile("internal-ca.crt")), ReadFile(PkiFile("gateway.crt")),
                 ReadFile(PkiFile("gateway.key"))};
  auto stub = v1::UpdatesService::NewStub(
      Cluster::Get().InternalChannel("updates", MutualTlsChannelCredentials(gw)));
  grpc::ClientContext ctx;
  v1::SignInstructionRequest req;
  req.mutable_instruction()->set_agent_id(RandomUuid());
  req.mutable_instruction()->mutable_warning()->set_message("window probe");
  v1::SignedEnvelope env;
  REQUIRE(stub->SignInstruction(&ctx, req, &env).ok());
  v1::Instruction in;
  REQUIRE(in.ParseFromString(env.payload()));
  return in.valid_for_seconds();
}

grpc::Status RegisterAt(const std::string& version) {
  auto& c = Cluster::Get();
  grpc::ClientContext ctx;
  v1::RegisterRequest req;
  req.set_registration_token(c.NewRegistrationToken(1));
  req.set_machine_id(HexEncode(RandomBytes(32)));
  req.set_hostname("settings-probe");
  req.set_platform("Linux-x86_64");
  req.set_version(version);
  v1::RegisterResponse resp;
  return c.AgentGateway()->Register(&ctx, req, &resp);
}

}  // namespace

TEST_CASE("security settings: admins only, ranges enforced, audited, applied within seconds",
          "[settings][e2e]") {
  auto& c = Cluster::Get();
  const std::string admin = c.AdminToken();
  v1::SecuritySettings before;
  REQUIRE(Get(admin, &before).ok());
  INFO("before: " << before.ShortDebugString());
  CHECK(before.instruction_freshness_seconds() == 300);  // the environment's (default) values
  CHECK(before.binding_violations_before_block() == 3);
  CHECK(before.min_agent_version() == "0.1.22");
  CHECK(SignedWindow() == 300);

  // Operators and viewers can neither read nor change them.
  for (v1::Role role : {v1::OPERATOR, v1::VIEWER}) {
    const std::string token =
        c.NewUser(absl::StrCat("settings-", role, "-", RandomUuid().substr(0, 6)), role);
    v1::SecuritySettings out;
    CHECK(Get(token, &out).error_code() == grpc::StatusCode::PERMISSION_DENIED);
    v1::UpdateSecuritySettingsRequest req;
    req.set_instruction_freshness_seconds(900);
    req.set_reason("widen it");
    CHECK(Update(token, req, &out).error_code() == grpc::StatusCode::PERMISSION_DENIED);
  }

  // Unsafe values are refused, saying what is allowed; nothing changes.
  struct Bad {
    std::function<void(v1::UpdateSecuritySettingsRequest&)> set;
    std::string says;
  };
  for (const Bad& bad : std::vector<Bad>{
           {[](auto& r) { r.set_instruction_freshness_seconds(30); },
            "instruction_freshness_seconds must be 60..900 (got 30)"},
           {[](auto& r) { r.set_instruction_freshness_seconds(3600); }, "60..900"},
           {[](auto& r) { r.set_binding_violations_before_block(0); },
            "binding_violations_before_block must be 1..1000"},
           {[](auto& r) { r.set_min_agent_version("latest"); }, "min_agent_version must be"},
           {[](auto& r) { r.set_offline_after_seconds(1); }, "offline_after_seconds must be"},
           {[](auto& r) { r.set_check_in_interval_seconds(0); },
            "check_in_interval_seconds must be 1..3600"},
       }) {
    v1::UpdateSecuritySettingsRequest req;
    bad.set(req);
    req.set_reason("try it");
    v1::SecuritySettings out;
    grpc::Status s = Update(admin, req, &out);
    CHECK(s.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
    CHECK_THAT(s.error_message(), Catch::Contains(bad.says));
  }
  {
    v1::UpdateSecuritySettingsRequest no_reason;
    no_reason.set_instruction_freshness_seconds(600);
    v1::SecuritySettings out;
    CHECK(Update(admin, no_reason, &out).error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  }
  v1::SecuritySettings unchanged;
  REQUIRE(Get(admin, &unchanged).ok());
  CHECK(unchanged.instruction_freshness_seconds() == 300);

  // The admin widens the window and raises the minimum version.
  v1::UpdateSecuritySettingsRequest change;
  change.set_instruction_freshness_seconds(600);
  change.set_min_agent_version("9.0.0");
  change.set_reason("slow satellite links (CHG-12)");
  v1::SecuritySettings after;
  REQUIRE(Update(admin, change, &after).ok());
  CHECK(after.instruction_freshness_seconds() == 600);
  CHECK(after.min_agent_version() == "9.0.0");
  CHECK(after.binding_violations_before_block() == 3);  // not named: kept
  CHECK(after.updated_by() != "environment");

  // Audited: one event per changed value, with old, new and the operator.
  grpc::ClientContext ev_ctx;
  Cluster::Authorize(ev_ctx, admin);
  v1::ListSecurityEventsRequest ev_req;
  ev_req.set_type("SECURITY_SETTING_CHANGED");
  v1::ListSecurityEventsResponse events;
  REQUIRE(c.Operator()->ListSecurityEvents(&ev_ctx, ev_req, &events).ok());
  int window_events = 0, version_events = 0;
  for (const v1::SecurityEvent& e : events.events()) {
    if (absl::StrContains(e.detail_json(), "\"old\":\"300\",\"new\":\"600\"")) {
      ++window_events;
      CHECK(e.actor() == after.updated_by());
      CHECK_THAT(e.detail_json(), Catch::Contains("CHG-12"));
    }
    version_events += absl::StrContains(e.detail_json(), "\"new\":\"9.0.0\"");
  }
  CHECK(window_events == 1);
  CHECK(version_events == 1);

  // Applied: the updates service signs the new window (it learns of it by NOTIFY); the
  // agents service refuses a registration below the new minimum, naming the setting.
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  int window = 0;
  while (absl::Now() < deadline && (window = SignedWindow()) != 600) {
    absl::SleepFor(absl::Milliseconds(100));
  }
  CHECK(window == 600);
  grpc::Status old_agent = RegisterAt("1.0.0");
  CHECK(old_agent.error_code() == grpc::StatusCode::FAILED_PRECONDITION);
  CHECK_THAT(old_agent.error_message(), Catch::Contains("min_agent_version"));

  // Put back what the rest of the suite expects; a current agent registers again.
  v1::UpdateSecuritySettingsRequest restore;
  restore.set_instruction_freshness_seconds(before.instruction_freshness_seconds());
  restore.set_min_agent_version(before.min_agent_version());
  restore.set_reason("end of the settings test");
  v1::SecuritySettings restored;
  REQUIRE(Update(admin, restore, &restored).ok());
  CHECK(restored.instruction_freshness_seconds() == 300);
  CHECK(RegisterAt("1.0.0").ok());
  deadline = absl::Now() + absl::Seconds(10);
  while (absl::Now() < deadline && (window = SignedWindow()) != 300) {
    absl::SleepFor(absl::Milliseconds(100));
  }
  CHECK(window == 300);
}

TEST_CASE("a new check-in interval reaches connected agents at their next check-in",
          "[settings][e2e]") {
  auto& c = Cluster::Get();
  const std::string admin = c.AdminToken();
  v1::SecuritySettings before;
  REQUIRE(Get(admin, &before).ok());
  fleet::FleetOptions o;
  o.target = c.gateway_address();
  o.ca_pem = ReadFile(PkiFile("public-ca.crt"));
  o.run_id = HexEncode(RandomBytes(6));
  o.registration_tokens.push_back(c.NewRegistrationToken(2));
  fleet::Fleet f(o);
  f.Start(2);
  REQUIRE(f.WaitConnected(2, absl::Seconds(30)));
  CHECK(f.agent(0).check_in_interval() == before.check_in_interval_seconds());

  auto set_interval = [&](int seconds) {
    v1::UpdateSecuritySettingsRequest req;
    req.set_check_in_interval_seconds(seconds);
    req.set_reason("check-in interval test");
    v1::SecuritySettings out;
    REQUIRE(Update(admin, req, &out).ok());
    CHECK(out.check_in_interval_seconds() == seconds);
  };
  auto wait_all = [&](int seconds, absl::Duration timeout) {
    absl::Time deadline = absl::Now() + timeout;
    while (absl::Now() < deadline) {
      if (f.agent(0).check_in_interval() == seconds && f.agent(1).check_in_interval() == seconds) {
        return true;
      }
      absl::SleepFor(absl::Milliseconds(100));
    }
    return false;
  };
  // Settings -> agents service -> NOTIFY -> its Watch feed -> gateway fetch -> CheckInAck.
  set_interval(7);
  CHECK(wait_all(7, absl::Seconds(10)));
  set_interval(before.check_in_interval_seconds());  // the suite's pace, at the next check-in
  CHECK(wait_all(before.check_in_interval_seconds(), absl::Seconds(15)));
  f.StopAll();
}

TEST_CASE("edge rate limits are security settings: ranged, audited, applied by every gateway",
          "[settings][e2e][ratelimit]") {
  auto& c = Cluster::Get();
  const std::string admin = c.AdminToken();
  v1::SecuritySettings before;
  REQUIRE(Get(admin, &before).ok());
  const std::string suite_login = RateLimitText(before.login_rate_limit());
  CHECK(suite_login == "10000:10000");  // the shared cluster's environment seeded it

  // A gateway whose own environment says otherwise applies the stored value (the variables
  // only seed the first start) and says so in its log.
  int port = 0, metrics = 0;
  auto gateway =
      c.StartGateway({{"REDFLAG_RATE_LIMIT_LOGIN", "1:1"}}, &port, "127.0.0.1", &metrics);
  CHECK(WaitForPublishedRateLimits({metrics}, {{"login", suite_login}}) == "");
  CHECK(
      WaitForLog(*gateway, "the stored values replace this gateway's REDFLAG_RATE_LIMIT_*", 5000));

  // Unsafe values are refused, saying what is allowed; nothing changes. A rate of 0 (or NaN)
  // would lock every caller out for good: there is no "off".
  const double nan = std::nan("");
  for (const auto& [rate, burst] : std::vector<std::pair<double, double>>{
           {0, 5}, {0.001, 5}, {2, 0}, {2e7, 5}, {nan, 5}, {2, nan}}) {
    v1::UpdateSecuritySettingsRequest req;
    req.mutable_login_rate_limit()->set_per_second(rate);
    req.mutable_login_rate_limit()->set_burst(burst);
    req.set_reason("try it");
    v1::SecuritySettings out;
    grpc::Status s = Update(admin, req, &out);
    INFO(rate << ":" << burst);
    CHECK(s.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
    CHECK_THAT(s.error_message(),
               Catch::Contains("login_rate_limit must have a rate of 0.01..1e+06 per second "
                               "and a burst of 1..1e+06"));
  }
  v1::SecuritySettings unchanged;
  REQUIRE(Get(admin, &unchanged).ok());
  CHECK(RateLimitText(unchanged.login_rate_limit()) == suite_login);

  auto login = [](int gateway_port) {
    auto ops = v1::OperatorService::NewStub(
        MakeChannel("localhost:" + std::to_string(gateway_port),
                    TlsChannelCredentials(ReadFile(PkiFile("public-ca.crt")))));
    grpc::ClientContext ctx;
    v1::LoginRequest req;
    req.set_username("admin");
    req.set_password(TestVar("REDFLAG_ADMIN_PASSWORD"));
    v1::TokenPair pair;
    return ops->Login(&ctx, req, &pair);
  };
  {
    // One login per 100 s from a source, on both gateways, once they have applied it.
    ScopedRateLimits tight({{"login", "0.01:1"}}, {metrics});
    // Audited with the old and the new value.
    CHECK(std::stoll(QueryColumn("SELECT count(*) FROM audit.security_events WHERE type = "
                                 "'SECURITY_SETTING_CHANGED' AND detail LIKE $1",
                                 {"%\"old\":\"10000:10000\",\"new\":\"0.01:1\"%"})[0]) >= 1);
    CHECK(login(port).ok());
    grpc::Status refused = login(port);
    CHECK(refused.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
    REQUIRE(RetryDelayOf(refused).has_value());
    CHECK(*RetryDelayOf(refused) > absl::Seconds(60));
    // Other groups keep their own limits: the admin's writes still go through.
    v1::UpdateSecuritySettingsRequest noop;
    noop.set_check_in_interval_seconds(before.check_in_interval_seconds());
    noop.set_reason("writes are not logins");
    v1::SecuritySettings out;
    CHECK(Update(admin, noop, &out).ok());
  }
  // Restored (and applied): the legitimate admin logs in again at once, on both gateways.
  CHECK(PublishedRateLimit(c.metrics_port("gateway"), "login") == suite_login);
  CHECK(WaitForPublishedRateLimits({metrics}, {{"login", suite_login}}) == "");
  CHECK(login(port).ok());
  CHECK(login(port).ok());
}
