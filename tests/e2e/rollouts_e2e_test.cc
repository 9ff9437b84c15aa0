// Staged rollouts on real processes: a fleet of simulated agents (tools/fleet, each on its
// own TLS connection) receives publications that carry a rollout plan. A canary whose
// installs fail halts the rollout before anyone else is offered it; an operator resumes it
// and it completes stage by stage; abort withdraws what was held; the emergency stop pauses
// and resumes. Operators act through the gateway with their roles enforced.
#include <atomic>
#include <catch2/catch.hpp>
#include <fstream>
#include <functional>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/crypto.h"
#include "common/encoding.h"
#include "tests/support/cluster.h"
#include "tests/support/ctl.h"
#include "tests/support/test_env.h"
#include "tools/fleet/fleet.h"
#include "tools/fleet/operator_client.h"

using namespace redflag;
using namespace redflag::testing;

namespace {

// Large enough that a 10 % stage is never empty (0.9^80: 2 in 10,000).
constexpr int kFleet = 80;

v1::RolloutStage* AddStage(v1::RolloutPlan& p, const std::string& name, int percent,
                           int success_percent, int halt_after_failures) {
  v1::RolloutStage* s = p.add_stages();
  s->set_name(name);
  s->set_percent(percent);
  s->set_success_percent(success_percent);
  s->set_halt_after_failures(halt_after_failures);
  return s;
}

// A fleet of kFleet simulated agents following its own channel.
struct RolloutFleet {
  explicit RolloutFleet(std::function<bool(const v1::Manifest&, int)> install_fails) {
    auto& c = Cluster::Get();
    options.target = c.gateway_address();
    options.ca_pem = ReadFile(PkiFile("public-ca.crt"));
    options.run_id = HexEncode(RandomBytes(6));
    options.channel = "rollout-" + options.run_id;
    options.install_fails = std::move(install_fails);
    for (int have = 0; have < kFleet; have += options.seats_per_token) {
      options.registration_tokens.push_back(c.NewRegistrationToken(options.seats_per_token));
    }
    fleet = std::make_unique<fleet::Fleet>(options);
    fleet->Start(kFleet, absl::Seconds(1));
    REQUIRE(fleet->WaitConnected(kFleet, absl::Seconds(90)));
  }
  fleet::FleetOptions options;
  std::unique_ptr<fleet::Fleet> fleet;
};

absl::StatusOr<v1::Rollout> Call(
    const std::string& token,
    const std::function<grpc::Status(v1::OperatorService::Stub&, grpc::ClientContext&,
                                     v1::Rollout*)>& rpc) {
  grpc::ClientContext ctx;
  Cluster::Authorize(ctx, token);
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  v1::Rollout out;
  grpc::Status s = rpc(*Cluster::Get().Operator(), ctx, &out);
  if (!s.ok())
    return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
  return out;
}

absl::StatusOr<v1::Rollout> GetRollout(const std::string& token, const std::string& id) {
  v1::GetRolloutRequest req;
  req.set_update_id(id);
  return Call(token, [&](auto& stub, auto& ctx, v1::Rollout* out) {
    return stub.GetRollout(&ctx, req, out);
  });
}

using Action = grpc::Status (v1::OperatorService::Stub::*)(grpc::ClientContext*,
                                                           const v1::RolloutActionRequest&,
                                                           v1::Rollout*);
absl::StatusOr<v1::Rollout> Act(const std::string& token, Action action, const std::string& id,
                                const std::string& reason) {
  v1::RolloutActionRequest req;
  req.set_update_id(id);
  req.set_reason(reason);
  return Call(token, [&](auto& stub, auto& ctx, v1::Rollout* out) {
    return (stub.*action)(&ctx, req, out);
  });
}

// Polls GetRollout until it is in `state`; the last reading either way.
v1::Rollout WaitFor(const std::string& token, const std::string& id, v1::RolloutState state,
                    absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  v1::Rollout last;
  while (absl::Now() < deadline) {
    absl::StatusOr<v1::Rollout> r = GetRollout(token, id);
    REQUIRE(r.ok());
    last = *r;
    if (last.state() == state) break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  return last;
}

// Members of stages after `stage` in any state but `allowed`.
int64_t LaterMembersNotIn(const v1::Rollout& r, int stage, const std::string& allowed) {
  int64_t n = 0;
  for (const v1::RolloutStageStatus& s : r.stages()) {
    if (s.index() <= stage) continue;
    for (const auto& [state, count] : s.counts()) n += state == allowed ? 0 : count;
  }
  return n;
}

int64_t AllMembers(const v1::Rollout& r) {
  int64_t n = 0;
  for (const v1::RolloutStageStatus& s : r.stages()) n += s.members();
  return n;
}

// Security events of `type` whose detail names update `id`.
int EventsFor(const std::string& type, const std::string& id, std::string* detail = nullptr) {
  auto& c = Cluster::Get();
  grpc::ClientContext ctx;
  Cluster::Authorize(ctx, c.AdminToken());
  v1::ListSecurityEventsRequest req;
  req.set_type(type);
  req.set_page_size(1000);
  v1::ListSecurityEventsResponse resp;
  REQUIRE(c.Operator()->ListSecurityEvents(&ctx, req, &resp).ok());
  int n = 0;
  for (const v1::SecurityEvent& e : resp.events()) {
    if (!absl::StrContains(e.detail_json(), id)) continue;
    ++n;
    if (detail != nullptr) *detail = e.detail_json();
  }
  return n;
}

}  // namespace

// ... and, once an operator resumes it, completes stage by stage.
TEST_CASE("a failing canary halts its rollout before anyone else is offered it", "[rollout][e2e]") {
  auto& c = Cluster::Get();
  const std::string admin = c.AdminToken();
  std::atomic<bool> broken{true};  // the package's install breaks until the "fix"
  RolloutFleet rf(
      [&broken](const v1::Manifest& m, int) { return m.name() == "rollout-pkg" && broken.load(); });
  fleet::OperatorClient op(c.gateway_address(), rf.options.ca_pem);
  op.UseToken(admin);

  // A plan the service refuses says what was wrong, and nothing is published.
  v1::RolloutPlan bad;
  AddStage(bad, "canary", 10, 100, 1);
  AddStage(bad, "half", 5, 100, 1);
  AddStage(bad, "all", 100, 100, 1);
  absl::StatusOr<v1::Update> refused = op.Publish("rollout-pkg", "1.0.0", "Linux-x86_64",
                                                  rf.options.channel, "x", v1::PACKAGE, &bad);
  REQUIRE(refused.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(refused.status().message()),
             Catch::Contains("stage 2 (half): percent must rise"));

  v1::RolloutPlan plan;
  AddStage(plan, "canary", 10, 100, 1);  // any failure halts
  AddStage(plan, "half", 50, 100, 1);
  AddStage(plan, "all", 100, 100, 1);
  absl::StatusOr<v1::Update> update =
      op.Publish("rollout-pkg", "1.0.0", "Linux-x86_64", rf.options.channel, RandomBytes(4096),
                 v1::PACKAGE, &plan);
  REQUIRE(update.ok());
  const std::string id = update->manifest().update_id();

  v1::Rollout halted = WaitFor(admin, id, v1::ROLLOUT_HALTED, absl::Seconds(60));
  INFO("rollout: " << halted.ShortDebugString());
  REQUIRE(halted.state() == v1::ROLLOUT_HALTED);
  CHECK(halted.current_stage() == 0);
  CHECK_THAT(halted.reason(), Catch::Contains("members failed"));
  const int64_t canary = halted.stages(0).members();
  CHECK(canary > 0);
  CHECK(halted.stages(0).counts().at("FAILED") > 0);

  // Ten more judgements later nothing has moved: every connected agent is a member, those
  // of later stages all HELD, and only canary agents were ever offered the package.
  absl::SleepFor(absl::Seconds(2));
  v1::Rollout still = *GetRollout(admin, id);
  INFO("after 2 s: " << still.ShortDebugString());
  CHECK(still.state() == v1::ROLLOUT_HALTED);
  CHECK(AllMembers(still) == kFleet);
  CHECK(still.stages(0).members() == canary);
  CHECK(LaterMembersNotIn(still, 0, "HELD") == 0);
  const auto offered = rf.fleet->stats().Deliveries(id);
  CHECK(static_cast<int64_t>(offered.size()) <= canary);
  for (const auto& [agent, t] : offered) CHECK(!t.failure.empty());

  std::string detail;
  CHECK(EventsFor("ROLLOUT_HALTED", id, &detail) == 1);
  CHECK_THAT(detail, Catch::Contains("members failed"));

  // A viewer reads the rollout but cannot resume it; a resume without a reason is refused.
  const std::string viewer = c.NewUser("rollout-viewer-" + rf.options.run_id, v1::VIEWER);
  CHECK(GetRollout(viewer, id).ok());
  CHECK(Act(viewer, &v1::OperatorService::Stub::ResumeRollout, id, "let it go").status().code() ==
        absl::StatusCode::kPermissionDenied);
  absl::StatusOr<v1::Rollout> no_reason =
      Act(admin, &v1::OperatorService::Stub::ResumeRollout, id, "");
  CHECK(no_reason.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(GetRollout(admin, id)->state() == v1::ROLLOUT_HALTED);

  // The cause is fixed on the machines; the operator resumes, accepting the canary's
  // failures, and the rollout goes through every stage by itself.
  broken = false;
  absl::StatusOr<v1::Rollout> resumed =
      Act(admin, &v1::OperatorService::Stub::ResumeRollout, id, "canary machines fixed (INC-42)");
  REQUIRE(resumed.ok());
  CHECK(resumed->state() == v1::ROLLOUT_ACTIVE);
  CHECK(resumed->stages(0).forgiven_failures() == resumed->stages(0).counts().at("FAILED"));

  v1::Rollout done = WaitFor(admin, id, v1::ROLLOUT_COMPLETED, absl::Seconds(90));
  INFO("final: " << done.ShortDebugString());
  REQUIRE(done.state() == v1::ROLLOUT_COMPLETED);
  CHECK(done.current_stage() == 2);
  for (int s = 1; s < 3; ++s) {
    CHECK(done.stages(s).members() == done.stages(s).counts().at("INSTALLED"));
  }
  CHECK(EventsFor("ROLLOUT_STAGE_STARTED", id) == 3);  // publication, "half", "all"
  CHECK(EventsFor("ROLLOUT_RESUMED", id) == 1);
  CHECK(EventsFor("ROLLOUT_COMPLETED", id) == 1);
  // Each agent outside the canary installed it exactly once.
  int installed = 0;
  for (const auto& [agent, t] : rf.fleet->stats().Deliveries(id)) {
    installed += t.failure.empty() && t.installed_reported != absl::InfinitePast();
  }
  CHECK(installed == kFleet - done.stages(0).counts().at("FAILED"));
  rf.fleet->StopAll();
}

TEST_CASE("abort withdraws held members and the emergency stop pauses and resumes rollouts",
          "[rollout][e2e]") {
  auto& c = Cluster::Get();
  const std::string admin = c.AdminToken();
  RolloutFleet rf(nullptr);
  fleet::OperatorClient op(c.gateway_address(), rf.options.ca_pem);
  op.UseToken(admin);

  // The canary soaks for an hour: the second stage cannot start during the test.
  v1::RolloutPlan plan;
  AddStage(plan, "canary", 10, 100, 1)->set_soak_seconds(3600);
  AddStage(plan, "all", 100, 100, 1);
  absl::StatusOr<v1::Update> update =
      op.Publish("abort-pkg", "1.0.0", "Linux-x86_64", rf.options.channel, RandomBytes(2048),
                 v1::PACKAGE, &plan);
  REQUIRE(update.ok());
  const std::string id = update->manifest().update_id();
  absl::Time deadline = absl::Now() + absl::Seconds(60);
  v1::Rollout r;
  while (absl::Now() < deadline) {
    r = *GetRollout(admin, id);
    const auto& counts = r.stages(0).counts();
    if (AllMembers(r) == kFleet && r.stages(0).members() > 0 && counts.count("INSTALLED") &&
        counts.at("INSTALLED") == r.stages(0).members()) {
      break;
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
  INFO("before the stop: " << r.ShortDebugString());
  REQUIRE(AllMembers(r) == kFleet);
  CHECK(r.state() == v1::ROLLOUT_ACTIVE);

  // Emergency stop: this rollout (and any other running) pauses; lifting it resumes it.
  auto stop = [&](bool pause, v1::EmergencyStopResponse* out) {
    grpc::ClientContext ctx;
    Cluster::Authorize(ctx, admin);
    v1::EmergencyStopRequest req;
    req.set_reason("vendor advisory, checking every package");
    return pause ? c.Operator()->PauseAllRollouts(&ctx, req, out)
                 : c.Operator()->ResumeAllRollouts(&ctx, req, out);
  };
  v1::EmergencyStopResponse paused;
  REQUIRE(stop(true, &paused).ok());
  CHECK(std::count(paused.update_ids().begin(), paused.update_ids().end(), id) == 1);
  v1::Rollout during = *GetRollout(admin, id);
  CHECK(during.state() == v1::ROLLOUT_PAUSED);
  CHECK(during.paused_by_emergency_stop());
  v1::EmergencyStopResponse lifted;
  REQUIRE(stop(false, &lifted).ok());
  CHECK(std::count(lifted.update_ids().begin(), lifted.update_ids().end(), id) == 1);
  CHECK(GetRollout(admin, id)->state() == v1::ROLLOUT_ACTIVE);

  // An operator without the role cannot abort; the admin can, once.
  const std::string viewer = c.NewUser("abort-viewer-" + rf.options.run_id, v1::VIEWER);
  CHECK(Act(viewer, &v1::OperatorService::Stub::AbortRollout, id, "no").status().code() ==
        absl::StatusCode::kPermissionDenied);
  absl::StatusOr<v1::Rollout> aborted =
      Act(admin, &v1::OperatorService::Stub::AbortRollout, id, "wrong build number");
  REQUIRE(aborted.ok());
  CHECK(aborted->state() == v1::ROLLOUT_ABORTED);
  CHECK(LaterMembersNotIn(*aborted, 0, "WITHDRAWN") == 0);
  CHECK(aborted->stages(1).members() == kFleet - aborted->stages(0).members());
  absl::StatusOr<v1::Rollout> again =
      Act(admin, &v1::OperatorService::Stub::AbortRollout, id, "twice");
  CHECK(again.status().code() == absl::StatusCode::kFailedPrecondition);
  CHECK_THAT(std::string(again.status().message()), Catch::Contains("ABORTED"));
  CHECK(EventsFor("ROLLOUT_ABORTED", id) == 1);

  // Agents joining after the abort are not offered it either.
  rf.fleet->Start(5);
  REQUIRE(rf.fleet->WaitConnected(kFleet + 5, absl::Seconds(60)));
  absl::SleepFor(absl::Seconds(1));
  CHECK(static_cast<int64_t>(rf.fleet->stats().Deliveries(id).size()) ==
        aborted->stages(0).members());
  rf.fleet->StopAll();
}

TEST_CASE("an operator stages, watches, resumes and completes a rollout with redflagctl",
          "[rollout][e2e][redflagctl]") {
  std::atomic<bool> broken{true};
  RolloutFleet rf(
      [&broken](const v1::Manifest& m, int) { return m.name() == "cli-pkg" && broken.load(); });
  Ctl ctl;
  {
    auto [out, rc] =
        ctl.Run("login", "REDFLAG_PASSWORD='" + TestVar("REDFLAG_ADMIN_PASSWORD") + "'");
    REQUIRE(rc == 0);
  }
  const std::string dir = TestVar("REDFLAG_TEST_ROOT") + "/rollout-" + rf.options.run_id;
  REQUIRE(
      RunCommand("mkdir -p " + dir + " && head -c 3000 /dev/urandom > " + dir + "/pkg").second ==
      0);
  auto write = [&](const std::string& name, const std::string& text) {
    std::ofstream(dir + "/" + name) << text;
    return dir + "/" + name;
  };
  const std::string publish = "publish-update --file " + dir + "/pkg" +
                              " --name cli-pkg --version 1.0.0 --platform Linux-x86_64 --channel " +
                              rf.options.channel + " --rollout-plan ";

  // A file that is not a plan, and a plan the service refuses: exit 2 and why.
  auto [junk, junk_rc] = ctl.Run(publish + write("junk.json", "{\"stages\": 3}"));
  CHECK(junk_rc == 2);
  CHECK_THAT(junk, Catch::Contains("is not a RolloutPlan in JSON"));
  auto [bad, bad_rc] = ctl.Run(
      publish + write("bad.json",
                      R"({"stages": [{"name": "canary", "percent": 10, "success_percent": 100,
                          "halt_after_failures": 1},
                         {"name": "rest", "percent": 90, "success_percent": 95,
                          "halt_failure_percent": 5}]})"));
  CHECK(bad_rc == 2);
  CHECK_THAT(bad, Catch::Contains("last stage must be a percentage stage of 100"));

  const std::string plan =
      write("plan.json", R"({"stages": [{"name": "canary", "percent": 10, "success_percent": 100,
                                       "halt_after_failures": 1},
                                      {"name": "rest", "percent": 100, "success_percent": 95,
                                       "halt_failure_percent": 5}]})");
  auto [id_out, id_rc] = ctl.Run("--ids " + publish + plan);
  INFO(id_out);
  REQUIRE(id_rc == 0);
  const std::string id(absl::StripAsciiWhitespace(id_out));
  REQUIRE(id.size() == 36);

  auto wait_for = [&](const std::string& state) {
    absl::Time deadline = absl::Now() + absl::Seconds(60);
    std::string out;
    while (absl::Now() < deadline) {
      out = ctl.Run("get-rollout --update_id " + id).first;
      if (absl::StrContains(out, state)) break;
      absl::SleepFor(absl::Milliseconds(200));
    }
    return out;
  };
  std::string halted = wait_for("state:  HALTED");
  INFO(halted);
  CHECK_THAT(halted, Catch::Contains("state:  HALTED at stage 1 of 2 (canary"));
  CHECK_THAT(halted, Catch::Contains("members failed"));
  auto [events, ev_rc] = ctl.Run("--json list-security-events --type ROLLOUT_HALTED");
  CHECK(ev_rc == 0);
  CHECK_THAT(events, Catch::Contains(id));

  broken = false;
  auto [resumed, res_rc] =
      ctl.Run("resume-rollout --update_id " + id + " --reason 'canary hosts fixed, INC-7'");
  INFO(resumed);
  CHECK(res_rc == 0);
  std::string completed = wait_for("state:  COMPLETED");
  INFO(completed);
  CHECK_THAT(completed, Catch::Contains("state:  COMPLETED at stage 2 of 2 (rest"));
  auto [json, json_rc] = ctl.Run("--json get-rollout --update_id " + id);
  CHECK(json_rc == 0);
  CHECK_THAT(json, Catch::Contains("\"state\": \"ROLLOUT_COMPLETED\""));
  if (const char* t = std::getenv("REDFLAG_ROLLOUT_TRANSCRIPT")) {
    std::ofstream(t) << halted << "\n----\n" << resumed << "\n----\n" << completed << "\n";
  }
  rf.fleet->StopAll();
}
